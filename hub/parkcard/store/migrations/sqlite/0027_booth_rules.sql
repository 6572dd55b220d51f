-- Consumption rules (SPEC.md §5.10): every version of the park's rules per terminal category and per
-- merchant, as JSON (parkcard.services.spend_rules); pushed to pos and ride terminals in their T_CONFIG
-- tail, never changed or deleted. Booth discounts the park bears are ledger entries (park:discounts,
-- SPEC.md §7.5): a settlement reads them, no longer the merchant's bearer at closing time.
CREATE TABLE consumption_rules(
    version INTEGER PRIMARY KEY CHECK (version >= 1), rules TEXT NOT NULL, created_at REAL NOT NULL,
    created_by TEXT NOT NULL);
-- Records applied before this migration booked no park:discounts entry: a settlement still pays their
-- discounts by the merchant's bearer at the close, as it did (parkcard.store.settlement). first_tx is the
-- first ledger transaction booked by the new rule.
CREATE TABLE discount_postings(
    id INTEGER PRIMARY KEY CHECK (id = 1), first_tx INTEGER NOT NULL);
INSERT INTO discount_postings(id, first_tx) SELECT 1, COALESCE(MAX(id), 0) + 1 FROM ledger_tx;
