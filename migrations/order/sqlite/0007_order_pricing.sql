-- The price an order was placed at, whole (the pricing engine's breakdown, JSON; NULL on orders
-- placed before it: their lines are their total), and the uses of limited promotions it holds.
ALTER TABLE orders ADD COLUMN pricing TEXT;
ALTER TABLE orders ADD COLUMN redemptions TEXT NOT NULL DEFAULT '[]';
