-- The head of the operator audit log, moved in the transaction of the change each entry records (SQLite's 4).
CREATE TABLE audit_anchor(
    id BIGINT PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL CHECK (seq >= 0), hash TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL);
