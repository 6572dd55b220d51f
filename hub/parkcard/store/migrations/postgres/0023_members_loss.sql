-- Members, lost cards and replacements (SPEC.md §4.13; SQLite's 23).
CREATE TABLE members(
    member_no BIGINT PRIMARY KEY, name TEXT NOT NULL, phone TEXT NOT NULL UNIQUE, note TEXT NOT NULL DEFAULT '',
    tier BIGINT NOT NULL DEFAULT 0, created_at DOUBLE PRECISION NOT NULL);
ALTER TABLE cards ADD COLUMN member_no BIGINT REFERENCES members(member_no);
CREATE INDEX cards_member ON cards(member_no) WHERE member_no IS NOT NULL;
CREATE TABLE card_losses(
    card_no BIGINT PRIMARY KEY, state TEXT NOT NULL CHECK (state IN ('lost', 'found', 'replaced')),
    reason TEXT NOT NULL, reported_by TEXT NOT NULL, reported_at DOUBLE PRECISION NOT NULL,
    blacklist_version BIGINT NOT NULL, found_at DOUBLE PRECISION);
CREATE TABLE replacements(
    old_card_no BIGINT PRIMARY KEY, new_card_no BIGINT NOT NULL UNIQUE, op_id TEXT NOT NULL,
    reported_s BIGINT NOT NULL, balance_cents BIGINT NOT NULL, moved_cents BIGINT NOT NULL,
    hold_cents BIGINT NOT NULL, loss_at_move_cents BIGINT NOT NULL DEFAULT 0, release_at_s BIGINT NOT NULL,
    covered_cents BIGINT NOT NULL DEFAULT 0, loss_cents BIGINT NOT NULL DEFAULT 0,
    released_cents BIGINT NOT NULL DEFAULT 0, released BIGINT NOT NULL DEFAULT 0, released_at DOUBLE PRECISION,
    release_credit_no BIGINT, move_tx BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL);
CREATE INDEX replacements_open ON replacements(released) WHERE released = 0;
CREATE TABLE replacement_covers(
    old_card_no BIGINT NOT NULL, terminal_id BIGINT NOT NULL, seq BIGINT NOT NULL, amount_cents BIGINT NOT NULL,
    covered_cents BIGINT NOT NULL, loss_cents BIGINT NOT NULL, cover_tx BIGINT NOT NULL,
    at DOUBLE PRECISION NOT NULL, PRIMARY KEY (terminal_id, seq));
