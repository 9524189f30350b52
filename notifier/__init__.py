"""The notifier (issue #4): delivers warnings, blocks, restores and admin actions by email (SES or
SMTP), SNS and chat webhooks, from a durable outbox in MySQL.

Nothing here yet: it builds on the enforcer's notification records (issue #3).
"""
