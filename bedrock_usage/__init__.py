"""Bedrock Usage Control: the library shared by the consumer, the enforcer, the notifier and bedrockctl.

Everything here is either pure (identities, periods, quota arithmetic, decoded event types) or a thin
adapter shared by several processes (settings, MySQL and Redis connections, migrations, logging).
"""
