"""The notifier task role's IAM permissions, gathered from the channels that make the calls."""

from __future__ import annotations

from notifier.channels import ses, sns

IAM_PERMISSIONS = [*ses.IAM_PERMISSIONS, *sns.IAM_PERMISSIONS]
