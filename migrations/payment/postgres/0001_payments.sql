-- Payments (one per order), their append-only transaction log, refunds, the idempotency records
-- of the admin API, and provider webhook events received. Card data is never stored: payment
-- methods are provider tokens.

CREATE TABLE IF NOT EXISTS payments (
    id             TEXT PRIMARY KEY,
    order_id       TEXT NOT NULL UNIQUE,
    customer_id    TEXT NOT NULL,
    amount         BIGINT NOT NULL CHECK (amount >= 0),
    currency       TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN
                       ('pending', 'authorized', 'failed', 'captured', 'voided', 'partially_refunded', 'refunded')),
    payment_method TEXT NOT NULL,
    provider       TEXT NOT NULL,
    provider_ref   TEXT,
    captured       BIGINT NOT NULL DEFAULT 0 CHECK (captured >= 0 AND captured <= amount),
    refunded       BIGINT NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= captured),
    failure        JSONB,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

CREATE INDEX IF NOT EXISTS payments_by_provider_ref ON payments (provider_ref) WHERE provider_ref IS NOT NULL;

CREATE TABLE IF NOT EXISTS payment_log (
    seq          BIGSERIAL PRIMARY KEY,
    payment_id   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    amount       BIGINT NOT NULL,
    provider_ref TEXT,
    detail       TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL
);

CREATE INDEX IF NOT EXISTS payment_log_by_payment ON payment_log (payment_id, seq);

CREATE OR REPLACE FUNCTION payment_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the payment log is append-only';
END;
$$;

DROP TRIGGER IF EXISTS payment_log_append_only ON payment_log;
CREATE TRIGGER payment_log_append_only BEFORE UPDATE OR DELETE ON payment_log
FOR EACH ROW EXECUTE FUNCTION payment_log_append_only();

CREATE TABLE IF NOT EXISTS refunds (
    id           TEXT PRIMARY KEY,
    payment_id   TEXT NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    provider_ref TEXT,
    reason       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX IF NOT EXISTS refunds_by_payment ON refunds (payment_id, created_at);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER,
    response     TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

CREATE TABLE IF NOT EXISTS webhook_events (
    provider    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);
