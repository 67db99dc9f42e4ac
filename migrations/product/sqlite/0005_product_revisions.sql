-- Each product's revision: the stamp of its last change (stock status included), microseconds,
-- rising with every write. The search index keeps only a product's newest revision. 0: written
-- before revisions existed.
ALTER TABLE products ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
