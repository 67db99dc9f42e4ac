-- When a cart was last reported abandoned (cart.abandoned.v1); cleared by any change to it, so an
-- idle cart is reported once per idle spell.
ALTER TABLE carts ADD COLUMN abandoned_at INTEGER;

CREATE INDEX IF NOT EXISTS carts_idle ON carts (updated_at) WHERE abandoned_at IS NULL;
