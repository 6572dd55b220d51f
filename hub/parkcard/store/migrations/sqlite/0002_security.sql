-- 2: security. Each terminal's broker password (the hub writes Mosquitto's password file from
-- it and exports it in the provisioning bundle); admin system cards; taps of blacklisted cards
-- (lock and attempt records); terminal commands decided by the CLI, sent by the running hub.
ALTER TABLE terminals ADD COLUMN broker_password TEXT;
CREATE TABLE admin_cards(
    card_no INTEGER PRIMARY KEY, uid BLOB NOT NULL, desk INTEGER NOT NULL DEFAULT 0,
    issued_by INTEGER, issued_at REAL NOT NULL, revoked_at REAL, reason TEXT);
CREATE TABLE attempts(
    id INTEGER PRIMARY KEY, card_no INTEGER NOT NULL, terminal_id INTEGER NOT NULL, seq INTEGER NOT NULL,
    kind INTEGER NOT NULL, time_s INTEGER NOT NULL, at REAL NOT NULL);
CREATE INDEX attempts_card ON attempts(card_no, time_s);
CREATE TABLE terminal_commands(
    id INTEGER PRIMARY KEY, terminal_id INTEGER NOT NULL REFERENCES terminals(id), command INTEGER NOT NULL,
    actor TEXT NOT NULL, created_at REAL NOT NULL, sent_at REAL);
CREATE INDEX terminal_commands_pending ON terminal_commands(sent_at);
