"""Every IAM permission the provisioning commands use, gathered from the modules that make the calls.

For an admin's credentials or a provisioning role; bedrockctl/processes.py gives the package no service
task role, so the always-on services are never granted these."""

from __future__ import annotations

from provisioning import iam

IAM_PERMISSIONS = list(iam.IAM_PERMISSIONS)
