-- Consumption rules (SPEC.md §5.10), every version as JSON (SQLite's 27).
CREATE TABLE consumption_rules(
    version BIGINT PRIMARY KEY CHECK (version >= 1), rules TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    created_by TEXT NOT NULL);
