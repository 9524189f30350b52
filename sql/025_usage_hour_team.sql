-- Hourly usage by team alone (issue 14): the hourly summaries (022) summed over models, for the console's heat
-- map of requests and cost by hour of day. Two weeks of usage_hourly is ~280,000 rows (hours x 100 teams x 8
-- models) and summing it by hour took most of a second; here it is ~34,000. Derived from usage_hourly, in the
-- same transaction as the hour it sums (bedrock_usage.usage_hourly refresh): the two never disagree.
-- requests counts every call, failed the failed ones (as usage_hourly).
CREATE TABLE IF NOT EXISTS usage_hour_team (
  hour_utc   DATETIME NOT NULL,
  team       VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  requests   BIGINT UNSIGNED NOT NULL,
  failed     BIGINT UNSIGNED NOT NULL,
  cost_usd   DECIMAL(20,9) NOT NULL,
  PRIMARY KEY (hour_utc, team)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
