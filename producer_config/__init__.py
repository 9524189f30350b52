"""The producer side: the EventBridge rule that feeds the stream, rendered from settings (pure), and a
local stand-in for CloudTrail + EventBridge that delivers generated traffic the way the rule would."""
