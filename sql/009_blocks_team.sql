-- The team whose quota a team block is for (the person may be in another team by now): what the
-- reconciler compares with that team's limit before lifting the block for a raised limit.
ALTER TABLE blocks
  ADD COLUMN team VARCHAR(128) NULL;
