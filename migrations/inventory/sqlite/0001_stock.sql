-- Stock per SKU. available = on_hand - reserved, never negative (the CHECKs make an oversell a
-- failed write, not a bad row).
CREATE TABLE IF NOT EXISTS stock (
    sku                 TEXT PRIMARY KEY,
    on_hand             INTEGER NOT NULL CHECK (on_hand >= 0),
    reserved            INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
    low_stock_threshold INTEGER NOT NULL DEFAULT 0 CHECK (low_stock_threshold >= 0),
    updated_at          INTEGER NOT NULL
) WITHOUT ROWID;
