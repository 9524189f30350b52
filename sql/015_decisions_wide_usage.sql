-- A cost quota's usage and limit are nano-dollars: wider than requests.
ALTER TABLE decisions
  MODIFY COLUMN usage_count BIGINT UNSIGNED NOT NULL,
  MODIFY COLUMN limit_count BIGINT UNSIGNED NOT NULL;
