"""The console task role's IAM permissions: those of blocking and unblocking, which it does through the
enforcer's code (the deny policies and their attachments), and nothing else: it reads MySQL and Redis."""

from __future__ import annotations

from enforcement import iam

IAM_PERMISSIONS = list(iam.IAM_PERMISSIONS)
