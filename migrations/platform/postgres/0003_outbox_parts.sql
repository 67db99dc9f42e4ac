-- The outbox spreads over partitions by the event's aggregate (its subject), each drained by one
-- relay at a time under its own lease: the tasks of a service share a backlog instead of queueing
-- behind one lease, and an aggregate's events stay in one partition, in order. Rows written before
-- are partition 0's.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS part INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS outbox_part_seq ON outbox (part, seq);
