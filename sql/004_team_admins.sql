-- Each team's admins (quota file `teams.<team>.admins`): they hear of the team's warnings and blocks.
ALTER TABLE teams
  ADD COLUMN admin_emails JSON NULL;
