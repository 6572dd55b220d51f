-- Operator web sessions kept across hub restarts (parkcard.web.sessions): the SHA-256 of the cookie's token,
-- never the token; a session ends at expires_at, at its logout, or when its account is disabled.
CREATE TABLE web_sessions(
    token_sha256 BLOB PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL, locale TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX web_sessions_user ON web_sessions(username);
-- Third parties' webhooks (parkcard.services.webhooks): the events each wants, the secret that signs them,
-- and how far it has been given the records and alarms (ids), so a hub restart loses and repeats none.
CREATE TABLE webhooks(
    id INTEGER PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, secret TEXT NOT NULL,
    created_by TEXT NOT NULL, created_at REAL NOT NULL, removed_at REAL,
    record_cursor INTEGER NOT NULL, alarm_cursor INTEGER NOT NULL);
-- The outbox: one row per event and webhook, kept until its receiver answered 2xx (or gave up on).
CREATE TABLE webhook_outbox(
    id INTEGER PRIMARY KEY, webhook_id INTEGER NOT NULL REFERENCES webhooks(id), event TEXT NOT NULL,
    event_key TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL, attempts INTEGER NOT NULL,
    next_at REAL NOT NULL, state TEXT NOT NULL CHECK (state IN ('due', 'delivered', 'given_up')),
    delivered_at REAL, last_error TEXT, UNIQUE (webhook_id, event_key));
CREATE INDEX webhook_outbox_due ON webhook_outbox(next_at) WHERE state = 'due';
-- Fleet alerts of a terminal's clock and boots (parkcard.domain.fleet_alerts), from its status frames.
ALTER TABLE terminals ADD COLUMN clock_skew_s INTEGER;
ALTER TABLE terminals ADD COLUMN boot_window_at REAL;
ALTER TABLE terminals ADD COLUMN boot_window_first INTEGER;
