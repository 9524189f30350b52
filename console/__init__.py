"""The admin console: a web app over MySQL and Redis for usage and cost, people and teams, blocks and the
audit trail (`bedrockctl console run`). Blocks go through the enforcer's own state machine and audit."""
