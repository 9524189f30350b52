-- People's language and time zone for their messages (quota file `language`, `timezone`).
-- One statement per migration file from here on: DDL commits as it goes in MySQL and MariaDB, so a file
-- with two ALTERs that failed half-way could not be run again.
ALTER TABLE principals
  ADD COLUMN language  VARCHAR(8) CHARACTER SET ascii NULL,
  ADD COLUMN time_zone VARCHAR(64) CHARACTER SET ascii NULL;
