-- The access-token signing keys when SHOP_JWT_PRIVATE_KEYS is not set: shared by every task of the
-- user service (the first to start makes the first key), oldest first, the newest signing.
CREATE TABLE IF NOT EXISTS signing_keys (
    id         TEXT PRIMARY KEY,
    pkcs8      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
