-- Orders with their saga state: the status, its history, and when the step it waits for gives up.
-- The idempotency key of the request that placed an order is unique per shopper.
CREATE TABLE IF NOT EXISTS orders (
    id               TEXT PRIMARY KEY,
    customer_id      TEXT NOT NULL,
    status           TEXT NOT NULL,
    items            TEXT NOT NULL,  -- JSON [{sku, product_id, name, quantity, unit_price, line_total}]
    total_amount     INTEGER NOT NULL CHECK (total_amount >= 0),
    currency         TEXT NOT NULL,
    shipping_address TEXT NOT NULL,  -- JSON
    payment_method   TEXT NOT NULL,
    label_url        TEXT,
    tracking_number  TEXT,
    history          TEXT NOT NULL,  -- JSON [{status, at, reason?}]
    deadline         INTEGER,
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (customer_id, idempotency_key)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (customer_id, id);
CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status, id);
CREATE INDEX IF NOT EXISTS orders_due ON orders (deadline) WHERE deadline IS NOT NULL;
