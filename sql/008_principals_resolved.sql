-- People whose tags were read before resolution existed count as resolved from then.
UPDATE principals SET resolved_at = tags_checked_at WHERE resolved_at IS NULL AND tags_checked_at IS NOT NULL;
