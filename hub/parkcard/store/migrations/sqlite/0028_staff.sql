-- Staff members of a merchant and the staff cards that open their shifts at its booths (SPEC.md §4.14).
CREATE TABLE staff(
    id INTEGER PRIMARY KEY, merchant_id INTEGER NOT NULL REFERENCES merchants(id), name TEXT NOT NULL,
    card_no INTEGER UNIQUE, created_at REAL NOT NULL, created_by TEXT NOT NULL);
CREATE INDEX staff_merchant ON staff(merchant_id);
-- A booth may be told to refuse sales while no shift is open (SPEC.md §4.14).
ALTER TABLE terminals ADD COLUMN shift_required INTEGER NOT NULL DEFAULT 0;
-- Shift records (kind 18) found by terminal and seq (reversals look for the last one below a sale).
CREATE INDEX records_kind ON records(terminal_id, kind, seq);
