"""The notifier (issue #4): delivers warnings, blocks, restores and admin actions by email (SES or
SMTP), SNS and chat webhooks.

Nothing here yet: it will deliver the rows the enforcer queues in the MySQL outbox `notifications`
(sql/002_enforcement.sql; the record is `enforcement.model.Notification`).
"""
