-- The enforcer's state, its audit trail and the notification outbox.

-- Who is blocked now (and who was): one row per person, the desired state the reconciler makes IAM
-- match. `blocked_until` NULL while blocked means indefinite. `iam_target` is what the deny names
-- (user:NAME, role:NAME or session:AROA…:name / session:*:name); `iam_state` whether it is in IAM.
CREATE TABLE IF NOT EXISTS blocks (
  principal       VARCHAR(512) NOT NULL,
  blocked         TINYINT(1) NOT NULL,
  origin          VARCHAR(8) CHARACTER SET ascii NOT NULL,
  scope           VARCHAR(8) CHARACTER SET ascii NULL,
  quota           VARCHAR(32) CHARACTER SET ascii NULL,
  period          VARCHAR(10) CHARACTER SET ascii NULL,
  usage_count     INT UNSIGNED NULL,
  limit_count     INT UNSIGNED NULL,
  reason          VARCHAR(512) NOT NULL,
  actor           VARCHAR(128) NOT NULL,
  blocked_at      DATETIME(3) NULL,
  blocked_until   DATETIME(3) NULL,
  protected_until DATETIME(3) NULL,
  iam_target      VARCHAR(640) NULL,
  iam_state       VARCHAR(16) CHARACTER SET ascii NOT NULL DEFAULT 'none',
  iam_detail      VARCHAR(512) NULL,
  shadow          TINYINT(1) NOT NULL DEFAULT 0,
  updated_at      TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (principal),
  KEY ix_blocks_due (blocked, blocked_until)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The audit trail: every action, by whom, why, at what usage and limit, the IAM change and its outcome.
-- action_key makes a replayed action (a re-delivered decision, a retried expiry) one row, not two.
CREATE TABLE IF NOT EXISTS enforcement_actions (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  action_key    CHAR(64) CHARACTER SET ascii NOT NULL,
  at            DATETIME(3) NOT NULL,
  actor         VARCHAR(128) NOT NULL,
  action        VARCHAR(16) CHARACTER SET ascii NOT NULL,
  outcome       VARCHAR(16) CHARACTER SET ascii NOT NULL,
  principal     VARCHAR(512) NOT NULL,
  scope         VARCHAR(8) CHARACTER SET ascii NULL,
  quota         VARCHAR(32) CHARACTER SET ascii NULL,
  period        VARCHAR(10) CHARACTER SET ascii NULL,
  usage_count   INT UNSIGNED NULL,
  limit_count   INT UNSIGNED NULL,
  decision_id   CHAR(32) CHARACTER SET ascii NULL,
  blocked_until DATETIME(3) NULL,
  reason        VARCHAR(512) NOT NULL,
  iam_change    VARCHAR(1024) NULL,
  shadow        TINYINT(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  UNIQUE KEY uq_actions_key (action_key),
  KEY ix_actions_principal (principal, at),
  KEY ix_actions_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The notifier's durable outbox: everything a message needs, written in the same transaction as the
-- action it reports. dedupe_key: one message per kind, person and quota period (or per admin action).
CREATE TABLE IF NOT EXISTS notifications (
  id                BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  dedupe_key        CHAR(64) CHARACTER SET ascii NOT NULL,
  kind              VARCHAR(24) CHARACTER SET ascii NOT NULL,
  scope             VARCHAR(8) CHARACTER SET ascii NOT NULL,
  principal         VARCHAR(512) NOT NULL,
  display_name      VARCHAR(255) NULL,
  email             VARCHAR(320) NULL,
  team              VARCHAR(128) NULL,
  quota             VARCHAR(32) CHARACTER SET ascii NULL,
  quota_scope       VARCHAR(8) CHARACTER SET ascii NULL,
  period            VARCHAR(10) CHARACTER SET ascii NULL,
  percent           SMALLINT UNSIGNED NULL,
  usage_count       INT UNSIGNED NULL,
  limit_count       INT UNSIGNED NULL,
  access_returns_at DATETIME(3) NULL,
  protected_until   DATETIME(3) NULL,
  actor             VARCHAR(128) NULL,
  reason            VARCHAR(512) NULL,
  action_key        CHAR(64) CHARACTER SET ascii NULL,
  shadow            TINYINT(1) NOT NULL DEFAULT 0,
  payload           JSON NULL,
  created_at        DATETIME(3) NOT NULL,
  status            VARCHAR(8) CHARACTER SET ascii NOT NULL DEFAULT 'pending',
  attempts          SMALLINT UNSIGNED NOT NULL DEFAULT 0,
  next_attempt_at   DATETIME(3) NOT NULL,
  sent_at           DATETIME(3) NULL,
  last_error        VARCHAR(1024) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_notifications_dedupe (dedupe_key),
  KEY ix_notifications_due (status, next_attempt_at),
  KEY ix_notifications_principal (principal, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
