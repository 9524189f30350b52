-- The call's row holds its log's tokens and cost once both are in (joined on the request ID, in either
-- order), cache writes by duration, the cost to the nano-dollar as the log row has it. The old cost column
-- was never filled: dropped and added again at its new precision, which MySQL 8 (8.0.29+) and MariaDB do
-- in place without copying the table (changing a DECIMAL's precision would copy it).
ALTER TABLE bedrock_calls
  RENAME COLUMN cache_write_tokens TO cache_write_5m_tokens,
  DROP COLUMN cost_usd,
  ADD COLUMN cache_write_1h_tokens INT UNSIGNED NULL,
  ADD COLUMN cost_usd DECIMAL(18,9) NULL;
