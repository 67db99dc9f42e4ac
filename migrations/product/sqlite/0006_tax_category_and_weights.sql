-- How a product is taxed (each destination's rates are set per category) and each SKU's shipping
-- weight (weight-tiered shipping prices).
ALTER TABLE products ADD COLUMN tax_category TEXT NOT NULL DEFAULT 'standard';
ALTER TABLE variants ADD COLUMN weight_grams INTEGER;
