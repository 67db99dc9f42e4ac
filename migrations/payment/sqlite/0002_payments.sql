-- Payments (one per order), their append-only transaction log, refunds, and the idempotency
-- records of the admin API. Card data is never stored: payment methods are provider tokens.

CREATE TABLE IF NOT EXISTS payments (
    id             TEXT PRIMARY KEY,
    order_id       TEXT NOT NULL UNIQUE,
    customer_id    TEXT NOT NULL,
    amount         INTEGER NOT NULL CHECK (amount >= 0),
    currency       TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN
                       ('pending', 'authorized', 'failed', 'captured', 'voided', 'partially_refunded', 'refunded')),
    payment_method TEXT NOT NULL,
    provider       TEXT NOT NULL,
    provider_ref   TEXT,
    captured       INTEGER NOT NULL DEFAULT 0 CHECK (captured >= 0 AND captured <= amount),
    refunded       INTEGER NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= captured),
    failure        TEXT,            -- JSON {code, decline_code, message}
    created_at     INTEGER NOT NULL, -- microseconds
    updated_at     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS payments_by_provider_ref ON payments (provider_ref) WHERE provider_ref IS NOT NULL;

CREATE TABLE IF NOT EXISTS payment_log (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    amount       INTEGER NOT NULL,
    provider_ref TEXT,
    detail       TEXT NOT NULL,
    at           INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS payment_log_by_payment ON payment_log (payment_id, seq);

CREATE TRIGGER IF NOT EXISTS payment_log_append_only_update BEFORE UPDATE ON payment_log
BEGIN SELECT RAISE(ABORT, 'the payment log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS payment_log_append_only_delete BEFORE DELETE ON payment_log
BEGIN SELECT RAISE(ABORT, 'the payment log is append-only'); END;

CREATE TABLE IF NOT EXISTS refunds (
    id           TEXT PRIMARY KEY,
    payment_id   TEXT NOT NULL,
    amount       INTEGER NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    provider_ref TEXT,
    reason       TEXT NOT NULL,
    created_at   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS refunds_by_payment ON refunds (payment_id, created_at);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER,           -- NULL while the request is being served
    response     TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
