-- 14: front-desk operations (parkcard.services.desk), kept as pending, with the write asked for, before the
-- card is written; posted when the write is confirmed. One pending operation per card at a time.
CREATE TABLE desk_operations(
    op_id TEXT PRIMARY KEY, kind TEXT NOT NULL, request TEXT NOT NULL, desk_terminal_id INTEGER NOT NULL,
    actor TEXT NOT NULL, state TEXT NOT NULL, card_no INTEGER, uid BLOB, counter_before INTEGER,
    counter_after INTEGER, blocks BLOB, amount_cents INTEGER NOT NULL DEFAULT 0,
    bonus_cents INTEGER NOT NULL DEFAULT 0, deposit_cents INTEGER NOT NULL DEFAULT 0,
    balance_after_cents INTEGER NOT NULL DEFAULT 0, tier INTEGER NOT NULL DEFAULT 0, record_seq INTEGER,
    error TEXT, created_at REAL NOT NULL, settled_at REAL);
CREATE INDEX desk_operations_state ON desk_operations(state);
CREATE UNIQUE INDEX desk_operations_pending_card ON desk_operations(card_no) WHERE state = 'pending';
-- Desk operations asked for by the CLI (parkcard card ...), carried out by the running hub, which holds the line to
-- the desk terminals; params is the request's JSON, result what the cashier reads once it is done.
CREATE TABLE desk_requests(
    op_id TEXT PRIMARY KEY, kind TEXT NOT NULL, desk_terminal_id INTEGER NOT NULL, params TEXT NOT NULL,
    actor TEXT NOT NULL, roles TEXT NOT NULL, state TEXT NOT NULL, result TEXT, created_at REAL NOT NULL,
    started_at REAL, finished_at REAL);
CREATE INDEX desk_requests_state ON desk_requests(state);
