-- A cost quota's usage and limit are nano-dollars: wider than requests.
ALTER TABLE enforcement_actions
  MODIFY COLUMN usage_count BIGINT UNSIGNED NULL,
  MODIFY COLUMN limit_count BIGINT UNSIGNED NULL;
