-- Products and their variants (each variant a SKU with its own price and attributes). The search
-- index follows this table through product.upserted.v1 / product.deleted.v1 events.
CREATE TABLE IF NOT EXISTS products (
    id           TEXT PRIMARY KEY,
    category_id  TEXT NOT NULL REFERENCES categories (id),
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    brand        TEXT NOT NULL,
    price_amount INTEGER NOT NULL CHECK (price_amount >= 0),
    currency     TEXT NOT NULL,
    attributes   TEXT NOT NULL,  -- JSON object
    images       TEXT NOT NULL,  -- JSON array of URLs
    in_stock     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS products_category ON products (category_id, id);
CREATE INDEX IF NOT EXISTS products_brand ON products (brand, id);

CREATE TABLE IF NOT EXISTS variants (
    sku          TEXT PRIMARY KEY,
    product_id   TEXT NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    price_amount INTEGER NOT NULL CHECK (price_amount >= 0),
    attributes   TEXT NOT NULL,  -- JSON object
    position     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS variants_product ON variants (product_id, position);
