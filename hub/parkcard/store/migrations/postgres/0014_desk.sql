-- Front-desk operations kept as pending before the card is written (SQLite's 14).
CREATE TABLE desk_operations(
    op_id TEXT PRIMARY KEY, kind TEXT NOT NULL, request TEXT NOT NULL, desk_terminal_id BIGINT NOT NULL,
    actor TEXT NOT NULL, state TEXT NOT NULL, card_no BIGINT, uid BYTEA, counter_before BIGINT,
    counter_after BIGINT, blocks BYTEA, amount_cents BIGINT NOT NULL DEFAULT 0,
    bonus_cents BIGINT NOT NULL DEFAULT 0, deposit_cents BIGINT NOT NULL DEFAULT 0,
    balance_after_cents BIGINT NOT NULL DEFAULT 0, tier BIGINT NOT NULL DEFAULT 0, record_seq BIGINT,
    error TEXT, created_at DOUBLE PRECISION NOT NULL, settled_at DOUBLE PRECISION);
CREATE INDEX desk_operations_state ON desk_operations(state);
CREATE UNIQUE INDEX desk_operations_pending_card ON desk_operations(card_no) WHERE state = 'pending';
-- Desk operations asked for by the CLI (parkcard card ...), carried out by the running hub, which holds the line to
-- the desk terminals; params is the request's JSON, result what the cashier reads once it is done.
CREATE TABLE desk_requests(
    op_id TEXT PRIMARY KEY, kind TEXT NOT NULL, desk_terminal_id BIGINT NOT NULL, params TEXT NOT NULL,
    actor TEXT NOT NULL, roles TEXT NOT NULL, state TEXT NOT NULL, result TEXT, created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION, finished_at DOUBLE PRECISION);
CREATE INDEX desk_requests_state ON desk_requests(state);
