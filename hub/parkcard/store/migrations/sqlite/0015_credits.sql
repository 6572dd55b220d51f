-- Pending credits (SPEC.md §8): value granted to a card that was not present, delivered at its next tap.
-- A card's credits are numbered 1, 2, 3 ...; the card carries the highest it has received. The grant (and a
-- cancel) is a ledger transaction of its own (no record): its id is kept here for the ledger check.
CREATE TABLE pending_credits(
    card_no INTEGER NOT NULL, credit_no INTEGER NOT NULL CHECK (credit_no BETWEEN 1 AND 65535),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0), reason TEXT NOT NULL, source TEXT NOT NULL,
    granted_by TEXT NOT NULL, granted_at REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('granted', 'sent', 'delivered', 'cancelled')),
    grant_tx INTEGER NOT NULL, cancel_tx INTEGER,    -- ledger_tx ids (booked in the same transaction)
    delivered_terminal INTEGER, delivered_seq INTEGER,
    PRIMARY KEY (card_no, credit_no)) WITHOUT ROWID;
CREATE INDEX pending_credits_open ON pending_credits(state) WHERE state IN ('granted', 'sent');
-- The version of the list terminals hold: +1 at every change of the credits not yet delivered.
CREATE TABLE credits_version(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT INTO credits_version(id, version) VALUES (1, 0);
