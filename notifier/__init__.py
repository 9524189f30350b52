"""The notifier: the enforcer's outbox → email (SES or SMTP), SNS, Slack and Teams; the daily summary.

Read in this order:
- `render.py`      a notification → subject, text and HTML in the person's language and time zone (pure;
                   templates in `templates/`, words in `i18n/`);
- `recipients.py`  who hears of what, on which channel (pure);
- `outbox.py`      notifications → deliveries, leased, sent, retried, dead (MySQL);
- `channels/`      one small module per channel;
- `summary.py`     the admins' daily summary;
- `service.py`, `assembly.py`, `main.py`  the work, its wiring, and the `bedrockctl notifier run` loop;
- `preview.py`     `bedrockctl notify preview`.
"""
