-- Bedrock API keys made by `bedrockctl user create-key` (issue 15, part 3): IAM service-specific
-- credentials for bedrock.amazonaws.com, and the tool each is for, which IAM has no field for.
-- The secret is never here: IAM shows it once, to the admin's terminal. One row per key, kept after
-- the key is revoked (revoked_at, how: deleted | deactivated, by whom), so `user keys` can tell a key
-- deleted here from one deleted elsewhere. quota_key: the user's ARN as the consumer counts it (calls
-- made with a key are the user's: CloudTrail names the IAM user, not the key; see the README).
CREATE TABLE IF NOT EXISTS bedrock_api_keys (
  credential_id  VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_name      VARCHAR(64) NOT NULL,
  quota_key      VARCHAR(512) NOT NULL,
  tool           VARCHAR(128) NOT NULL,
  created_at     DATETIME(3) NOT NULL,
  expires_at     DATETIME(3) NULL,
  created_by     VARCHAR(255) NOT NULL,
  revoked_at     DATETIME(3) NULL,
  revoked_how    VARCHAR(12) CHARACTER SET ascii NULL,
  revoked_by     VARCHAR(255) NULL,
  PRIMARY KEY (credential_id),
  KEY ix_bedrock_api_keys_user (user_name, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
