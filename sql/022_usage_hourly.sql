-- Hourly usage summaries (issue 14): what the console's cost-analysis and hourly pages read, so that a month
-- of ten million calls is summed from a few hundred thousand rows, not scanned. One row per UTC hour of the
-- calls' and logs' event_time, team charged, model and quota day (event_date: the rows' own, in
-- QUOTA_TIMEZONE; an hour can straddle two quota days where the zone's offset is not whole hours).
-- requests / failed: bedrock_calls rows (error_code NULL / NOT NULL); logs, tokens and cost: invocation_logs
-- rows, by the model they were priced as (COALESCE(price_model_ref, model_ref)). cache_write_tokens is 5m + 1h.
-- Derived, never the record: bedrock_usage.usage_hourly recomputes an hour from the raw rows whenever a batch
-- marks it in usage_hourly_dirty (023), replacing its rows; `bedrockctl console rollup --backfill` marks the
-- hours of a database that predates it. The key leads with the hour: a refresh replaces one hour's rows, and
-- the pages read ranges of hours; (event_date, team) serves the pages that ask by quota day.
CREATE TABLE IF NOT EXISTS usage_hourly (
  event_date          DATE NOT NULL,
  hour_utc            DATETIME NOT NULL,
  team                VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  model_ref           SMALLINT UNSIGNED NOT NULL,
  requests            INT UNSIGNED NOT NULL,
  failed              INT UNSIGNED NOT NULL,
  logs                INT UNSIGNED NOT NULL,
  input_tokens        BIGINT UNSIGNED NOT NULL,
  output_tokens       BIGINT UNSIGNED NOT NULL,
  cache_read_tokens   BIGINT UNSIGNED NOT NULL,
  cache_write_tokens  BIGINT UNSIGNED NOT NULL,
  cost_usd            DECIMAL(20,9) NOT NULL,
  PRIMARY KEY (hour_utc, team, model_ref, event_date),
  KEY ix_usage_hourly_day_team (event_date, team)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
