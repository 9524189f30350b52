-- The call ↔ log join looks calls up by request ID (built online, in place).
ALTER TABLE bedrock_calls ADD KEY ix_calls_request (request_id);
