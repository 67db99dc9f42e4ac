-- Counts the changes of a cart's lines, so a cached copy can tell which of two is newer.
ALTER TABLE carts ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
