-- Events the bus refused for good (too large, characters a queue does not carry), moved out of the
-- outbox with why, so they never block the events behind them. `shop events parked` lists them.
CREATE TABLE IF NOT EXISTS outbox_dead (
    seq        BIGINT PRIMARY KEY,
    event_id   TEXT,
    body       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    parked_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Which relay drains the outbox: a relay publishes only while it holds the lease, so the tasks of a
-- service publish each event once.
CREATE TABLE IF NOT EXISTS outbox_lease (
    part       INTEGER PRIMARY KEY,
    owner      TEXT NOT NULL,
    until_ms   BIGINT NOT NULL
);
