-- When the account's password last changed (ms since the epoch; 0: never). A session that began
-- before it is refused at its next refresh: the change and the sign-out of every older session are
-- one write.
ALTER TABLE users ADD COLUMN IF NOT EXISTS credentials_changed_at BIGINT NOT NULL DEFAULT 0;
