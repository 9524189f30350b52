-- Daily usage summaries (issue 14): the hourly summaries (022) summed by quota day, team and model, for the
-- console's pages over ranges of days. A month of usage_hourly is ~600,000 rows (744 hours x 100 teams x 8
-- models) and summing it took seconds; a month here is ~25,000. Derived from usage_hourly, never from the raw
-- rows: bedrock_usage.usage_hourly.refresh recomputes a day's rows whenever it has refreshed one of its hours.
CREATE TABLE IF NOT EXISTS usage_daily (
  event_date          DATE NOT NULL,
  team                VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  model_ref           SMALLINT UNSIGNED NOT NULL,
  requests            BIGINT UNSIGNED NOT NULL,
  failed              BIGINT UNSIGNED NOT NULL,
  logs                BIGINT UNSIGNED NOT NULL,
  input_tokens        BIGINT UNSIGNED NOT NULL,
  output_tokens       BIGINT UNSIGNED NOT NULL,
  cache_read_tokens   BIGINT UNSIGNED NOT NULL,
  cache_write_tokens  BIGINT UNSIGNED NOT NULL,
  cost_usd            DECIMAL(20,9) NOT NULL,
  PRIMARY KEY (event_date, team, model_ref)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
