"""The enforcer: decisions → IAM denies scoped to one person, and back.

Read in this order:
- `policies.py`  the product's deny policies: names, documents, the session pool (pure);
- `targets.py`   what a deny names for one person, or why it cannot (pure);
- `model.py`     blocks, audit actions, notifications (pure records);
- `iam.py`       the IAM adapter (owned policies only; throttling retried; idempotent);
- `store.py`     the MySQL adapter (blocks, audit trail, notification outbox);
- `service.py`   the actions: take a decision, block, unblock, expire, re-apply;
- `reconcile.py` desired state vs IAM, both ways;
- `stream.py`    the decision stream's consumer group;
- `runtime.py`, `main.py`  wiring, and the `bedrockctl enforcer run` loop.
"""
