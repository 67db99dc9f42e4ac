-- A guest's order (placed without an account) keeps the email its mails go to and the secret token
-- that reads it; a shipped order keeps its refunds (JSON [{id, lines, shipping, amount, reason, at}]).
ALTER TABLE orders ADD COLUMN email TEXT;
ALTER TABLE orders ADD COLUMN token TEXT;
ALTER TABLE orders ADD COLUMN refunds TEXT NOT NULL DEFAULT '[]';
