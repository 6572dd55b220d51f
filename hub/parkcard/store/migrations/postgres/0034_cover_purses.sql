-- What a late record's settlement took off the lost card's bonus purse (SPEC.md §4.13): the hold is cash first, so a
-- late debit that takes the hold's cash spends its bonus, and a give-back of such a debit brings that bonus back
-- (negative). A settlement booked before this left the purse as it was: 0, which the ledger check re-derives.
ALTER TABLE replacement_covers ADD COLUMN bonus_cents BIGINT NOT NULL DEFAULT 0;
