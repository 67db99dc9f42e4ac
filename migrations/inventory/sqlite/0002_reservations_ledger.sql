-- Reservations (one per order, the saga's idempotency key), the append-only ledger of units on
-- hand, and a change counter per SKU.

ALTER TABLE stock ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- SKUs at or under their threshold, for the admin's low-stock list.
CREATE INDEX IF NOT EXISTS stock_low ON stock (sku) WHERE on_hand - reserved <= low_stock_threshold;

CREATE TABLE IF NOT EXISTS reservations (
    order_id       TEXT PRIMARY KEY,
    status         TEXT NOT NULL CHECK (status IN ('held', 'rejected', 'committed', 'released', 'returned')),
    lines          TEXT NOT NULL,               -- JSON [{sku, quantity}]
    short          TEXT NOT NULL DEFAULT '[]',  -- JSON [{sku, requested, available}] of a rejection
    release_reason TEXT,
    expires_at     INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) WITHOUT ROWID;

-- The expiry sweeper's queue: held reservations by expiry.
CREATE INDEX IF NOT EXISTS reservations_held_by_expiry ON reservations (expires_at) WHERE status = 'held';

-- Every change of units on hand; a SKU's deltas add up to its units on hand.
CREATE TABLE IF NOT EXISTS ledger (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    sku       TEXT NOT NULL,
    delta     INTEGER NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('set', 'adjust', 'sale', 'return')),
    reason    TEXT NOT NULL,
    reference TEXT NOT NULL,
    at        INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS ledger_by_sku ON ledger (sku, seq);

-- The opening balance of stock set before the ledger existed.
INSERT INTO ledger (sku, delta, kind, reason, reference, at)
SELECT sku, on_hand, 'set', 'opening balance', 'migration', updated_at FROM stock WHERE on_hand <> 0;

-- Ledger rows are never changed or removed.
CREATE TRIGGER IF NOT EXISTS ledger_append_only_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_append_only_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
