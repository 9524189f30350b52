-- How a person's team was resolved. `resolved_at` NULL: not yet (their calls are counted for them and
-- held as unresolved for their team); `version` is the directory_state version of the last change to
-- the person's team, name or email; `lookup_error` the last failure of a lookup still being retried.
ALTER TABLE principals
  ADD COLUMN resolved_at  DATETIME(3) NULL,
  ADD COLUMN version      BIGINT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN lookup_error VARCHAR(255) NULL,
  ADD KEY ix_principals_version (version);
