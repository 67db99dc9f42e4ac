-- Whether the account's email was shown to be its owner's (the link of the verification email, or
-- a Cognito pool that verified it), and the Cognito identity (`sub`) bound to the account.
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN cognito_sub TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS users_cognito_sub ON users (cognito_sub) WHERE cognito_sub IS NOT NULL;
