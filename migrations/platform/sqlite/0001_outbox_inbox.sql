-- The transactional outbox and the consumer inbox, in every service's SQLite database.
-- A service writes its state change and its outgoing events in one transaction; the relay publishes
-- the outbox in order and deletes what the bus accepted.
CREATE TABLE IF NOT EXISTS outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   TEXT NOT NULL UNIQUE,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- The ids of the events each consumer has applied, recorded in the consumer's own transaction, so a
-- redelivered event changes nothing.
CREATE TABLE IF NOT EXISTS inbox (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, event_id)
) WITHOUT ROWID;
