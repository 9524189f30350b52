-- Bedrock Usage Control: initial schema. Runs on MySQL 8 and MariaDB 10.11.
-- Applied by `bedrockctl db migrate`; every statement is re-runnable (IF NOT EXISTS), because DDL in
-- MySQL commits as it goes and a migration interrupted half-way must be safe to run again.

-- Teams and their limits. NULL limit = the DEFAULT_TEAM_*_REQUEST_LIMIT setting.
CREATE TABLE IF NOT EXISTS teams (
  name                  VARCHAR(128) NOT NULL,
  daily_request_limit   INT UNSIGNED NULL,
  monthly_request_limit INT UNSIGNED NULL,
  created_at            TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at            TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- People (and shared roles), auto-provisioned on first sight or declared in the quota file.
-- quota_key is the identity every other table and command uses (see README "Who is a person").
-- NULL limits = the DEFAULT_*_REQUEST_LIMIT settings. team NULL = not known yet (DEFAULT_TEAM).
CREATE TABLE IF NOT EXISTS principals (
  id                    INT UNSIGNED NOT NULL AUTO_INCREMENT,
  quota_key             VARCHAR(512) NOT NULL,
  identity_type         VARCHAR(16) CHARACTER SET ascii NOT NULL,
  arn                   VARCHAR(1024) NULL,
  account_id            VARCHAR(12) CHARACTER SET ascii NULL,
  display_name          VARCHAR(255) NULL,
  team                  VARCHAR(128) NULL,
  team_source           VARCHAR(16) CHARACTER SET ascii NOT NULL DEFAULT 'default',
  email                 VARCHAR(320) NULL,
  tags                  JSON NULL,
  daily_request_limit   INT UNSIGNED NULL,
  monthly_request_limit INT UNSIGNED NULL,
  role_arn              VARCHAR(1024) NULL,
  role_id               VARCHAR(64) CHARACTER SET ascii NULL,
  session_name          VARCHAR(128) NULL,
  first_seen_at         DATETIME(3) NULL,
  tags_checked_at       DATETIME(3) NULL,
  created_at            TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at            TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uq_principals_key (quota_key),
  KEY ix_principals_team (team),
  KEY ix_principals_updated (updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Small dimension tables keep the call table narrow over years of history.
CREATE TABLE IF NOT EXISTS models (
  id       SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT,
  model_id VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_models_model (model_id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS user_agents (
  id         INT UNSIGNED NOT NULL AUTO_INCREMENT,
  sha256     BINARY(32) NOT NULL,
  user_agent TEXT NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_user_agents_sha (sha256)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per Bedrock call, idempotent on the CloudTrail eventID.
-- event_date is the call's day in QUOTA_TIMEZONE (what quotas count), event_time is UTC.
-- The primary key is the natural key in time order, (event_date, event_time, event_id): a duplicate
-- delivery or a replay carries the same eventID *and* eventTime, so it collides. No surrogate id: one
-- B-tree fewer to maintain on every insert (the consumer's bottleneck). Time order: calls arrive
-- roughly in time, so inserts append at the tail of the tree, which stays in memory however many years
-- the table holds (keyed by the random UUID alone, every insert would touch a random page).
-- Partitioned by month on event_date: retention drops whole partitions (`bedrockctl db retention`)
-- instead of deleting rows (MySQL requires the partitioning column in every unique key, which the
-- primary key has). Partitioned InnoDB tables cannot have foreign keys.
-- Token and cost columns are filled by invocation-log metering (NULL until then).
CREATE TABLE IF NOT EXISTS bedrock_calls (
  event_date         DATE NOT NULL,
  event_id           VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  event_time         DATETIME(3) NOT NULL,
  principal_id       INT UNSIGNED NOT NULL,
  team               VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  account_id         VARCHAR(12) CHARACTER SET ascii NOT NULL,
  operation          ENUM('InvokeModel','InvokeModelWithResponseStream','Converse','ConverseStream') NOT NULL,
  model_ref          SMALLINT UNSIGNED NOT NULL,
  region             VARCHAR(32) CHARACTER SET ascii NOT NULL,
  inference_region   VARCHAR(32) CHARACTER SET ascii NULL,
  source_ip          VARCHAR(128) CHARACTER SET ascii NULL,
  user_agent_ref     INT UNSIGNED NULL,
  request_id         VARCHAR(64) CHARACTER SET ascii NULL,
  error_code         VARCHAR(64) CHARACTER SET ascii NULL,
  input_tokens       INT UNSIGNED NULL,
  output_tokens      INT UNSIGNED NULL,
  cache_read_tokens  INT UNSIGNED NULL,
  cache_write_tokens INT UNSIGNED NULL,
  cost_usd           DECIMAL(14,8) NULL,
  ingested_at        TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (event_date, event_time, event_id),
  KEY ix_calls_principal_day (principal_id, event_date),
  KEY ix_calls_team_day (team, event_date)
) ENGINE=InnoDB
  PARTITION BY RANGE COLUMNS (event_date) (
    PARTITION p_future VALUES LESS THAN (MAXVALUE)
  );

-- Records that would not decode: kept whole with the reason, never silently dropped.
-- dedupe_key = sha256(source, shard, sequence number, index): replays do not duplicate them.
CREATE TABLE IF NOT EXISTS dead_letters (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  dedupe_key      CHAR(64) CHARACTER SET ascii NOT NULL,
  source          VARCHAR(255) NOT NULL,
  shard_id        VARCHAR(128) CHARACTER SET ascii NULL,
  sequence_number VARCHAR(128) CHARACTER SET ascii NULL,
  sub_index       INT UNSIGNED NOT NULL DEFAULT 0,
  reason          VARCHAR(64) CHARACTER SET ascii NOT NULL,
  detail          VARCHAR(1024) NOT NULL,
  raw             MEDIUMBLOB NOT NULL,
  received_at     DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_dead_letters_dedupe (dedupe_key),
  KEY ix_dead_letters_received (received_at),
  KEY ix_dead_letters_reason (reason, received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Every threshold crossing the consumer decided, idempotent on its deterministic id.
-- The enforcer consumes them from the Redis stream; this is the durable, queryable record.
CREATE TABLE IF NOT EXISTS decisions (
  id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  decision_id  CHAR(32) CHARACTER SET ascii NOT NULL,
  kind         VARCHAR(16) CHARACTER SET ascii NOT NULL,
  scope        VARCHAR(8) CHARACTER SET ascii NOT NULL,
  subject      VARCHAR(512) NOT NULL,
  quota        VARCHAR(32) CHARACTER SET ascii NOT NULL,
  period       VARCHAR(10) CHARACTER SET ascii NOT NULL,
  percent      SMALLINT UNSIGNED NOT NULL,
  usage_count  INT UNSIGNED NOT NULL,
  limit_count  INT UNSIGNED NOT NULL,
  event_id     VARCHAR(64) CHARACTER SET ascii NOT NULL,
  event_time   DATETIME(3) NOT NULL,
  principal    VARCHAR(512) NOT NULL,
  team         VARCHAR(128) NOT NULL,
  decided_at   DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_decisions_id (decision_id),
  KEY ix_decisions_subject (scope, subject, period),
  KEY ix_decisions_time (decided_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
