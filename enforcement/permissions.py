"""The enforcer task role's IAM permissions, gathered from the modules that make the calls."""

from __future__ import annotations

from enforcement import iam

IAM_PERMISSIONS = list(iam.IAM_PERMISSIONS)
