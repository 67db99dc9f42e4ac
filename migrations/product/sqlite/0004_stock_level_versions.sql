-- The inventory's change counter of each recorded level, so a level that arrives late (events are
-- delivered at least once, not always in order) never replaces a newer one. 0: unversioned.
ALTER TABLE stock_levels ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
