-- When the account's password last changed (ms since the epoch; 0: never). A session that began
-- before it is refused at its next refresh: the change and the sign-out of every older session are
-- one write.
ALTER TABLE users ADD COLUMN credentials_changed_at INTEGER NOT NULL DEFAULT 0;
