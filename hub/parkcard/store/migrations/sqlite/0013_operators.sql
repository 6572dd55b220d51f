-- Operator accounts (parkcard.services.operators): an Argon2id hash of the password (PHC string, never the
-- password), the roles as space-separated names, a merchant for a merchant login; disabled, never deleted,
-- so the audit log's names stay resolvable.
CREATE TABLE operators(
    id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, display_name TEXT, password_hash TEXT NOT NULL,
    roles TEXT NOT NULL, merchant_id INTEGER REFERENCES merchants(id), active INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL, created_by TEXT NOT NULL, password_changed_at REAL NOT NULL,
    last_login_at REAL);
