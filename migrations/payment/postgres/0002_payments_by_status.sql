-- The reconciler reads the payments left in a waiting status (pending, authorized) the longest.
CREATE INDEX IF NOT EXISTS payments_by_status ON payments (status, updated_at);
