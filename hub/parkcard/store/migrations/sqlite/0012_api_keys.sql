-- API keys of third parties (parkcard.services.apikeys): the SHA-256 of the secret, never the secret; a
-- revoked key stays listed. Idempotency keys of their POSTs: the request's hash and the first response.
CREATE TABLE api_keys(
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, secret_sha256 BLOB NOT NULL UNIQUE, scopes TEXT NOT NULL,
    created_at REAL NOT NULL, created_by TEXT NOT NULL, revoked_at REAL, revoked_by TEXT);
CREATE TABLE idempotency_keys(
    api_key_id INTEGER NOT NULL REFERENCES api_keys(id), key TEXT NOT NULL, request_sha256 BLOB NOT NULL,
    status INTEGER NOT NULL, response TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (api_key_id, key));
