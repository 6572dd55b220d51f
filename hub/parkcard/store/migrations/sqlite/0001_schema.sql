-- 1: the ledger, the registry, records, quarantine, blacklist and settlements.
CREATE TABLE parks(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE merchants(
    id INTEGER PRIMARY KEY, park_id INTEGER NOT NULL REFERENCES parks(id), name TEXT NOT NULL,
    commission_bps INTEGER NOT NULL CHECK (commission_bps BETWEEN 0 AND 10000));
CREATE TABLE terminals(
    id INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 65535),
    merchant_id INTEGER NOT NULL REFERENCES merchants(id), role INTEGER NOT NULL, key BLOB NOT NULL,
    name TEXT NOT NULL, config_version INTEGER NOT NULL DEFAULT 1,
    fixed_price_cents INTEGER NOT NULL DEFAULT 0, category INTEGER NOT NULL DEFAULT 0,
    counter_up INTEGER NOT NULL DEFAULT 0, counter_down_reserved INTEGER NOT NULL DEFAULT 0,
    acked_upto INTEGER NOT NULL DEFAULT 0,
    authorised INTEGER NOT NULL DEFAULT 0, locked INTEGER NOT NULL DEFAULT 0, last_seen REAL,
    online INTEGER NOT NULL DEFAULT 0, status_boot INTEGER, status_counter INTEGER, firmware TEXT,
    status_role INTEGER, status_config_version INTEGER, status_blacklist_version INTEGER,
    queue_depth INTEGER, oldest_unsynced_age_s INTEGER, free_heap INTEGER, uptime_s INTEGER,
    last_seq INTEGER, status_at REAL);
CREATE TABLE terminal_gaps(
    terminal_id INTEGER NOT NULL, from_seq INTEGER NOT NULL, to_seq INTEGER NOT NULL,
    PRIMARY KEY (terminal_id, from_seq)) WITHOUT ROWID;
CREATE TABLE cards(
    card_no INTEGER PRIMARY KEY, uid BLOB, tier INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'active', deposit_cents INTEGER NOT NULL DEFAULT 0,
    shadow_balance_cents INTEGER NOT NULL DEFAULT 0, last_counter INTEGER, issued_at REAL);
CREATE TABLE records(
    id INTEGER PRIMARY KEY, terminal_id INTEGER NOT NULL, seq INTEGER NOT NULL, raw BLOB NOT NULL,
    kind INTEGER NOT NULL, card_no INTEGER NOT NULL, card_counter INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL, balance_after_cents INTEGER NOT NULL, time_s INTEGER NOT NULL,
    status TEXT NOT NULL, applied_at REAL, UNIQUE (terminal_id, seq));
CREATE INDEX records_card ON records(card_no, status);
CREATE TABLE quarantine(
    id INTEGER PRIMARY KEY, raw BLOB NOT NULL, topic TEXT NOT NULL, terminal_id INTEGER,
    reason TEXT NOT NULL, detail TEXT, at REAL NOT NULL);
CREATE TABLE conflicts(
    id INTEGER PRIMARY KEY, terminal_id INTEGER NOT NULL, seq INTEGER NOT NULL, raw BLOB NOT NULL,
    existing_raw BLOB NOT NULL, at REAL NOT NULL);
CREATE TABLE accounts(name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE ledger_tx(
    id INTEGER PRIMARY KEY, record_id INTEGER UNIQUE REFERENCES records(id), kind INTEGER NOT NULL,
    at REAL NOT NULL);
CREATE TABLE ledger_entries(
    id INTEGER PRIMARY KEY, tx_id INTEGER NOT NULL REFERENCES ledger_tx(id),
    account TEXT NOT NULL, amount_cents INTEGER NOT NULL);
CREATE INDEX ledger_entries_account ON ledger_entries(account);
CREATE TRIGGER ledger_entries_append_only_u BEFORE UPDATE ON ledger_entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER ledger_entries_append_only_d BEFORE DELETE ON ledger_entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TABLE card_counters(
    card_no INTEGER NOT NULL, counter INTEGER NOT NULL, terminal_id INTEGER NOT NULL,
    seq INTEGER NOT NULL, delta_cents INTEGER NOT NULL, balance_after_cents INTEGER NOT NULL,
    PRIMARY KEY (card_no, counter)) WITHOUT ROWID;
CREATE TABLE alarms(
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, card_no INTEGER, terminal_id INTEGER, seq INTEGER,
    detail TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE blacklist_versions(
    version INTEGER PRIMARY KEY, card_no INTEGER NOT NULL, action TEXT NOT NULL
    CHECK (action IN ('add', 'remove')), reason TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE blacklist(
    card_no INTEGER PRIMARY KEY, added_version INTEGER NOT NULL, removed_version INTEGER,
    reason TEXT NOT NULL);
CREATE TABLE settlements(
    id INTEGER PRIMARY KEY, merchant_id INTEGER NOT NULL, period_start INTEGER NOT NULL,
    period_end INTEGER NOT NULL, sales_cents INTEGER NOT NULL, refunds_cents INTEGER NOT NULL,
    commission_cents INTEGER NOT NULL, payout_cents INTEGER NOT NULL, records INTEGER NOT NULL,
    closed_at REAL NOT NULL, UNIQUE (merchant_id, period_start, period_end));
