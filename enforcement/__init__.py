"""The enforcer: decisions → IAM denies scoped to one person, and back.

Read in this order:
- `policies.py`  the product's deny policies: names, documents, the session pool (pure);
- `targets.py`   what a deny names for one person, or why it cannot (pure);
- `model.py`     blocks, audit actions, results, and their states (pure records and enums);
- `ports.py`     what the enforcer needs of its store and of IAM (Protocols);
- `iam.py`       the IAM adapter (owned policies only; throttling retried; idempotent);
- `store.py`     the MySQL adapter (blocks, audit trail, notification outbox);
- `notices.py`   the notifications queued for the notifier, and the wording of quotas (pure);
- `breaker.py`   the circuit breaker on quota denies per hour;
- `blocks.py`    the block/lift state machine: block, unblock, expire, re-apply (and its order of writes);
- `decisions.py` a decision from the stream: a warning, or quota blocks (a team's: each member);
- `status.py`    who is blocked, as bedrockctl shows it;
- `reconcile.py` desired state vs IAM, both ways;
- `metering_watch.py`, `unpriced_alerts.py`  calls without a cost; models without a price (one alert each);
- `stream.py`    the decision stream's consumer group;
- `settings.py`  the enforcer's own settings (EnforcerSettings);
- `assembly.py`, `main.py`, `metrics.py`  wiring, the `bedrockctl enforcer run` loop, its metrics;
- `commands.py`, `permissions.py`  its bedrockctl commands; its task role's IAM permissions.
"""
