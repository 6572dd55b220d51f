-- Quarantine keeps a bounded prefix of what it refused, with the whole payload's size and digest (SQLite's 5).
ALTER TABLE quarantine ADD COLUMN size BIGINT;
ALTER TABLE quarantine ADD COLUMN sha256 BYTEA;
UPDATE quarantine SET size = length(raw);
