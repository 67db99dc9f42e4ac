-- The last known availability of each SKU (from inventory.changed.v1), kept even before a product
-- has the SKU; a product is in stock when any of its SKUs has availability above zero.
CREATE TABLE IF NOT EXISTS stock_levels (
    sku       TEXT PRIMARY KEY,
    available INTEGER NOT NULL
) WITHOUT ROWID;
