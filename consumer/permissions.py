"""The consumer task role's IAM permissions, gathered from the modules that make the calls."""

from __future__ import annotations

from bedrock_usage.pricing import profiles
from consumer import daemon, lookups

IAM_PERMISSIONS = [*daemon.IAM_PERMISSIONS, *lookups.IAM_PERMISSIONS, *profiles.IAM_PERMISSIONS]
