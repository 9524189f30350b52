"""The enforcer (issue #3): consumes the consumer's decisions from the Redis stream `<prefix>:decisions`
(consumer group, acknowledgements) and applies and lifts IAM denies scoped to one person.

Nothing here yet: the decisions it will consume are produced and documented by `consumer/` (see
`bedrock_usage.quota.Decision` and the README's "Quotas, thresholds and decisions").
"""
