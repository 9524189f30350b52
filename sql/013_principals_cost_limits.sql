-- Cost quotas in dollars (NULL = the DEFAULT_*_COST_LIMIT_USD settings).
ALTER TABLE principals
  ADD COLUMN daily_cost_limit_usd   DECIMAL(14,4) NULL,
  ADD COLUMN monthly_cost_limit_usd DECIMAL(14,4) NULL;
