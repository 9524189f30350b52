-- The Redis marker (issue 12): a random epoch id written both here and in Redis (`<prefix>:marker`). The
-- counting scripts refuse to count unless Redis holds the id the consumer expects, so a Redis that lost its
-- data (FLUSHALL, a failover to an empty replica, a restart without persistence) is caught before a single
-- batch is counted on it, and rebuilt from MySQL first. One row: the current marker. `state` is `ready`, or
-- `rebuilding` while a consumer refills Redis under the GET_LOCK named after the key prefix.
CREATE TABLE IF NOT EXISTS redis_marker (
  id          TINYINT UNSIGNED NOT NULL,
  epoch       CHAR(32) CHARACTER SET ascii NOT NULL,
  state       VARCHAR(16) CHARACTER SET ascii NOT NULL,
  written_at  DATETIME(3) NOT NULL,
  written_by  VARCHAR(255) NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per marker written: the first, and each rebuild (why, what it replayed, how long it took), so an
-- operator can see when Redis forgot and what was done about it.
CREATE TABLE IF NOT EXISTS redis_rebuilds (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  reason          VARCHAR(16) CHARACTER SET ascii NOT NULL,
  previous_epoch  CHAR(32) CHARACTER SET ascii NULL,
  found           VARCHAR(64) NULL,
  epoch           CHAR(32) CHARACTER SET ascii NOT NULL,
  started_at      DATETIME(3) NOT NULL,
  finished_at     DATETIME(3) NULL,
  rows_replayed   BIGINT UNSIGNED NOT NULL DEFAULT 0,
  written_by      VARCHAR(255) NOT NULL,
  PRIMARY KEY (id),
  KEY ix_redis_rebuilds_started (started_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
