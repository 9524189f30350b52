"""The producer side: the EventBridge rule that feeds the stream, rendered from settings (pure). Its local
stand-in for CloudTrail + EventBridge, which delivers generated traffic the way the rule would, is
development tooling: devtools/simulate.py."""
