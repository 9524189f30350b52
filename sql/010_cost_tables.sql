-- What calls cost: tokens and prices from the model invocation logs, and cost quotas (010-018).
-- Money is exact: DECIMAL dollars here, integer nano-dollars in the code and in Redis (never floats).
-- One statement that changes a table per file: DDL commits as it goes, and a migration interrupted
-- half-way must be safe to run again (CREATE … IF NOT EXISTS is; a second ALTER would not be).
-- One row per invocation log record, idempotent on its requestId. The key is the natural key in time
-- order, like bedrock_calls': a duplicate log or a replay carries the same requestId *and* timestamp.
-- event_date is the log's day in QUOTA_TIMEZONE (what cost quotas count); partitioned by month like
-- bedrock_calls (`bedrockctl db retention` drops both). request_id joins the call's CloudTrail row (the
-- same character set and collation as bedrock_calls.request_id, so that the join uses either index).
-- Its index leads with the day, like the calls': request IDs are random, and an index on them alone would
-- take each insert to a random page of years of history; by day, inserts stay in today's pages.
-- model_ref: the modelId as logged (a profile, an ARN…); price_model_ref: the base model it was priced
-- as (or the fallback model, for an unpriced one). price_status: priced | fallback | provisioned.
-- cache_split: body (the 5-minute/1-hour split of cache writes was read from the bodies) | assumed_5m
-- (bodies off or in S3: every cache write priced as 5-minute). No prompt or completion text, ever.
CREATE TABLE IF NOT EXISTS invocation_logs (
  event_date            DATE NOT NULL,
  event_time            DATETIME(3) NOT NULL,
  request_id            VARCHAR(64) CHARACTER SET ascii NOT NULL,
  principal_id          INT UNSIGNED NOT NULL,
  team                  VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  account_id            VARCHAR(12) CHARACTER SET ascii NOT NULL,
  operation             VARCHAR(64) CHARACTER SET ascii NOT NULL,
  model_ref             SMALLINT UNSIGNED NOT NULL,
  price_model_ref       SMALLINT UNSIGNED NULL,
  region                VARCHAR(32) CHARACTER SET ascii NOT NULL,
  inference_region      VARCHAR(32) CHARACTER SET ascii NULL,
  price_scope           VARCHAR(8) CHARACTER SET ascii NOT NULL,
  tier                  VARCHAR(24) CHARACTER SET ascii NOT NULL,
  error_code            VARCHAR(64) CHARACTER SET ascii NULL,
  input_tokens          INT UNSIGNED NOT NULL,
  output_tokens         INT UNSIGNED NOT NULL,
  cache_read_tokens     INT UNSIGNED NOT NULL,
  cache_write_5m_tokens INT UNSIGNED NOT NULL,
  cache_write_1h_tokens INT UNSIGNED NOT NULL,
  cost_usd              DECIMAL(18,9) NOT NULL,
  price_status          VARCHAR(12) CHARACTER SET ascii NOT NULL,
  cache_split           VARCHAR(12) CHARACTER SET ascii NOT NULL,
  ingested_at           TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (event_date, event_time, request_id),
  KEY ix_logs_day_request (event_date, request_id),
  KEY ix_logs_principal_day (principal_id, event_date),
  KEY ix_logs_team_day (team, event_date)
) ENGINE=InnoDB
  PARTITION BY RANGE COLUMNS (event_date) (
    PARTITION p_future VALUES LESS THAN (MAXVALUE)
  );

-- Prices per million tokens, by base model, region ('*' = any region without a row of its own),
-- scope (regional | global: a `global.` inference profile bills at the global rate) and tier
-- (standard, flex, priority, batch, latency-optimized…), from an effective date on. An import replaces
-- the prices it names from its effective date: older rows stay, so past calls can be re-priced as billed.
CREATE TABLE IF NOT EXISTS prices (
  model           VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  region          VARCHAR(32) CHARACTER SET ascii NOT NULL,
  scope           VARCHAR(8) CHARACTER SET ascii NOT NULL,
  tier            VARCHAR(24) CHARACTER SET ascii NOT NULL,
  effective_from  DATE NOT NULL,
  input           DECIMAL(16,6) NOT NULL,
  output          DECIMAL(16,6) NOT NULL,
  cache_read      DECIMAL(16,6) NOT NULL,
  cache_write_5m  DECIMAL(16,6) NOT NULL,
  cache_write_1h  DECIMAL(16,6) NOT NULL,
  currency        CHAR(3) CHARACTER SET ascii NOT NULL DEFAULT 'USD',
  source          VARCHAR(512) NOT NULL,
  imported_at     TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (model, region, scope, tier, effective_from)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Models charged at the fallback price because the table has none: listed by `bedrockctl prices
-- missing`, alerted to the admins once (notified_at).
CREATE TABLE IF NOT EXISTS unpriced_models (
  model          VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  fallback_model VARCHAR(255) CHARACTER SET ascii NULL,
  first_seen     DATETIME(3) NOT NULL,
  last_seen      DATETIME(3) NOT NULL,
  calls          BIGINT UNSIGNED NOT NULL DEFAULT 0,
  notified_at    DATETIME(3) NULL,
  PRIMARY KEY (model)
) ENGINE=InnoDB;

-- Application inference profiles resolved with bedrock:GetInferenceProfile (shared by every process).
CREATE TABLE IF NOT EXISTS inference_profiles (
  arn          VARCHAR(512) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  model        VARCHAR(255) CHARACTER SET ascii NULL,
  scope        VARCHAR(8) CHARACTER SET ascii NULL,
  error        VARCHAR(255) NULL,
  resolved_at  DATETIME(3) NOT NULL,
  PRIMARY KEY (arn)
) ENGINE=InnoDB;


-- The quota key of a role met in an invocation log, whose assumed-role ARN has no role path though the
-- role's CloudTrail key has it (bedrock_usage.identity): decided once, from the role's CloudTrail events
-- or IAM GetRole, else the path-less ARN, and kept, so that a log replayed later gets the same key.
CREATE TABLE IF NOT EXISTS role_keys (
  pathless_arn  VARCHAR(512) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  quota_key     VARCHAR(512) NOT NULL,
  source        VARCHAR(16) CHARACTER SET ascii NOT NULL,
  decided_at    DATETIME(3) NOT NULL,
  PRIMARY KEY (pathless_arn)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
