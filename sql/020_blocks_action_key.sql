-- The key of the action that last asked for a block's deny (a decision's, an admin's): the reconciler,
-- completing a deny a crash left pending, records it under that key, so the action is audited once
-- whether the re-delivered decision or the reconciler finishes it (issue 12).
ALTER TABLE blocks
  ADD COLUMN action_key CHAR(64) CHARACTER SET ascii NULL;
