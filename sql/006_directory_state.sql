-- The people directory's change sequence and its organisation-wide settings (the quota file's
-- `identity_center` section). Both statements are re-runnable.
--
-- `version` orders every committed change to people and teams: a writer takes the next value with
-- `UPDATE directory_state SET version = LAST_INSERT_ID(version + 1)` inside its transaction, and stamps
-- the rows it changes with it. The row lock is held to commit, so versions commit in order: a consumer
-- that has read every change up to N can never later meet an uncommitted change numbered below N
-- (an `updated_at` watermark can: a transaction stamped before a refresh's NOW() may commit after it).
CREATE TABLE IF NOT EXISTS directory_state (
  id              TINYINT UNSIGNED NOT NULL,
  version         BIGINT UNSIGNED NOT NULL,
  identity_center JSON NULL,
  updated_at      TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT IGNORE INTO directory_state (id, version) VALUES (1, 0);
