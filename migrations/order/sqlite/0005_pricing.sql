-- The pricing engine's settings: shipping zones (with their methods and tax rates) and promotions,
-- each kept whole as JSON; and how often each promotion is used (`customer` '' counts every use).
CREATE TABLE shipping_zones (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE promotions (
    id TEXT PRIMARY KEY,
    code TEXT UNIQUE,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE redemptions (
    promotion_id TEXT NOT NULL,
    customer TEXT NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (promotion_id, customer)
);
