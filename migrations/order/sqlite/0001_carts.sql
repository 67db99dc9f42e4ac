-- Carts: a guest cart is found by its id alone (the id is its bearer secret); a user's persistent
-- cart also has its owner.
CREATE TABLE IF NOT EXISTS carts (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT UNIQUE,
    currency   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS cart_items (
    cart_id  TEXT NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    sku      TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    added_at INTEGER NOT NULL,
    PRIMARY KEY (cart_id, sku)
) WITHOUT ROWID;
