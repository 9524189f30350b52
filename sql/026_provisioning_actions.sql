-- What `bedrockctl team …` and `bedrockctl user …` changed, and who asked (`--by`, default the OS user).
-- One row per command that changed something; a dry run or a run that found nothing to change writes
-- none. target: the team or user name; detail: the changes made, in order (IAM and MySQL).
CREATE TABLE IF NOT EXISTS provisioning_actions (
  id      BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  at      DATETIME(3) NOT NULL,
  actor   VARCHAR(255) NOT NULL,
  action  VARCHAR(32) CHARACTER SET ascii NOT NULL,
  target  VARCHAR(128) NOT NULL,
  detail  TEXT NOT NULL,
  PRIMARY KEY (id),
  KEY ix_provisioning_actions_target (target, at),
  KEY ix_provisioning_actions_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
