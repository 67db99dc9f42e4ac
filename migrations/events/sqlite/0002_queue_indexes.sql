-- A receive takes a queue's oldest visible messages: the index walks the queue in id order and
-- stops at the batch's size, instead of gathering every visible message and sorting them (what
-- (queue, visible_at, id) made each receive do, the whole backlog each time under load).
CREATE INDEX IF NOT EXISTS messages_fifo ON messages (queue, id, visible_at);
DROP INDEX IF EXISTS messages_ready;
-- Messages received as often as allowed (5, the bus's MAX_RECEIVES) are the only ones a receive
-- moves to the dead letters: they have an index of their own, so finding them reads nothing else.
CREATE INDEX IF NOT EXISTS messages_exhausted ON messages (queue, visible_at) WHERE receive_count >= 5;
