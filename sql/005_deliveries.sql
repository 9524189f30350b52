-- The notifier: each notification fans out to deliveries, one per channel and recipient, delivered at
-- least once with retries.
-- One row per (notification, channel, recipient): a failing webhook does not resend the email.
-- A lease (lease_owner, lease_until) lets several notifier tasks share the work without sending twice;
-- a lease that expires (the task died mid-delivery) makes the delivery due again: at least once.
CREATE TABLE IF NOT EXISTS deliveries (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  notification_id BIGINT UNSIGNED NOT NULL,
  channel         VARCHAR(8) CHARACTER SET ascii NOT NULL,
  recipient       VARCHAR(320) NOT NULL,
  status          VARCHAR(8) CHARACTER SET ascii NOT NULL DEFAULT 'pending',
  attempts        SMALLINT UNSIGNED NOT NULL DEFAULT 0,
  next_attempt_at DATETIME(3) NOT NULL,
  lease_owner     VARCHAR(96) NULL,
  lease_until     DATETIME(3) NULL,
  sent_at         DATETIME(3) NULL,
  message_id      VARCHAR(255) NULL,
  last_error      VARCHAR(1024) NULL,
  created_at      DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_deliveries (notification_id, channel, recipient),
  KEY ix_deliveries_due (status, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
