-- Which calls were made with a Bedrock API key (issue 15: usage split by tool). CloudTrail marks them with
-- additionalEventData.callWithBearerToken = true and names the key's IAM user, not the key; the report
-- (`bedrockctl usage --by-tool`) finds the tool among that user's keys in `bedrock_api_keys` that were live
-- at the call. 1: an API key's call; 0: signed with SigV4; NULL: recorded before this column. Added at the
-- end, which MySQL 8 (8.0.29+) and MariaDB do in place without copying the partitions.
ALTER TABLE bedrock_calls ADD COLUMN bearer_token TINYINT(1) NULL;
-- The report's lookup of a user's keys live at a call's time.
ALTER TABLE bedrock_api_keys ADD KEY ix_bedrock_api_keys_quota_key (quota_key, created_at);
