-- 23: members, lost cards (挂失/解挂) and replacements (补卡) with the hold for the old card's late offline debits
-- (parkcard.domain.replacement, SPEC.md §4.13).
CREATE TABLE members(
    member_no INTEGER PRIMARY KEY, name TEXT NOT NULL, phone TEXT NOT NULL UNIQUE, note TEXT NOT NULL DEFAULT '',
    tier INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
ALTER TABLE cards ADD COLUMN member_no INTEGER REFERENCES members(member_no);
CREATE INDEX cards_member ON cards(member_no) WHERE member_no IS NOT NULL;
-- A card reported lost: blacklisted under blacklist_version; 'found' once un-reported, 'replaced' once its balance
-- moved to a new card.
CREATE TABLE card_losses(
    card_no INTEGER PRIMARY KEY, state TEXT NOT NULL CHECK (state IN ('lost', 'found', 'replaced')),
    reason TEXT NOT NULL, reported_by TEXT NOT NULL, reported_at REAL NOT NULL, blacklist_version INTEGER NOT NULL,
    found_at REAL);
-- The replacement of a lost card: what moved, its hold, the late debits the hold paid (covered) and the park lost,
-- and the release of what was left (a pending credit of the new card). move_tx: the ledger transaction (no record)
-- that took the old card's balance; the new card's side is its transfer-in record.
CREATE TABLE replacements(
    old_card_no INTEGER PRIMARY KEY, new_card_no INTEGER NOT NULL UNIQUE, op_id TEXT NOT NULL,
    reported_s INTEGER NOT NULL, balance_cents INTEGER NOT NULL, moved_cents INTEGER NOT NULL,
    hold_cents INTEGER NOT NULL, loss_at_move_cents INTEGER NOT NULL DEFAULT 0, release_at_s INTEGER NOT NULL,
    covered_cents INTEGER NOT NULL DEFAULT 0, loss_cents INTEGER NOT NULL DEFAULT 0,
    released_cents INTEGER NOT NULL DEFAULT 0, released INTEGER NOT NULL DEFAULT 0, released_at REAL,
    release_credit_no INTEGER, move_tx INTEGER NOT NULL, created_at REAL NOT NULL);
CREATE INDEX replacements_open ON replacements(released) WHERE released = 0;
-- Each late debit of a replaced card, settled against its hold (covered) and beyond it (loss): cover_tx books it.
CREATE TABLE replacement_covers(
    old_card_no INTEGER NOT NULL, terminal_id INTEGER NOT NULL, seq INTEGER NOT NULL, amount_cents INTEGER NOT NULL,
    covered_cents INTEGER NOT NULL, loss_cents INTEGER NOT NULL, cover_tx INTEGER NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (terminal_id, seq));
