"""Provisioning: teams (IAM groups with a Bedrock policy) and people (IAM users with the tags the consumer
reads), created the way an admin onboards them. Run by an admin (`bedrockctl team …`, `bedrockctl user …`),
never as a service: its IAM permissions (permissions.py) are for an admin's or a provisioning role, not the
services' task roles."""
