-- The UTC hours whose summary (022) is out of date. A consumer batch marks the hours it wrote calls or logs
-- into (or moved between teams) in the same transaction as those rows: INSERT … ON DUPLICATE KEY UPDATE
-- version = version + 1, a handful of rows per batch. A refresh recomputes an hour, then deletes its mark only
-- if the version is the one it read: a batch that committed meanwhile leaves the hour dirty for the next pass.
CREATE TABLE IF NOT EXISTS usage_hourly_dirty (
  hour_utc   DATETIME NOT NULL,
  version    BIGINT UNSIGNED NOT NULL,
  marked_at  DATETIME(3) NOT NULL,
  PRIMARY KEY (hour_utc)
) ENGINE=InnoDB;
