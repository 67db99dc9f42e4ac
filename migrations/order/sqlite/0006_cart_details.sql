-- What a cart carries besides its lines: the discount codes entered (JSON array) and where it
-- ships with the method chosen (JSON object, or NULL).
ALTER TABLE carts ADD COLUMN codes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE carts ADD COLUMN shipping TEXT;
