-- Consumption rules (SPEC.md §5.10), every version as JSON (SQLite's 27).
CREATE TABLE consumption_rules(
    version BIGINT PRIMARY KEY CHECK (version >= 1), rules TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    created_by TEXT NOT NULL);
-- The first ledger transaction booked with park:discounts entries (SQLite's 27).
CREATE TABLE discount_postings(
    id BIGINT PRIMARY KEY CHECK (id = 1), first_tx BIGINT NOT NULL);
INSERT INTO discount_postings(id, first_tx) SELECT 1, COALESCE(MAX(id), 0) + 1 FROM ledger_tx;
