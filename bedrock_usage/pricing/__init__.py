"""Prices of Bedrock models and the cost of a call: shared by the consumer (which charges every
metered call), `bedrockctl prices` and the reports. Money is exact: `Decimal` dollars per million tokens
in the table, integer nano-dollars per call (`bedrock_usage.quota.NANOS_PER_USD`)."""
