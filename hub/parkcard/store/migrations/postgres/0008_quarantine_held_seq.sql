-- A damaged record holds its terminal's seq in quarantine, so the ack moves past it (SPEC.md §5.4; SQLite's 8).
ALTER TABLE quarantine ADD COLUMN seq BIGINT;
CREATE UNIQUE INDEX quarantine_held_seq ON quarantine(terminal_id, seq) WHERE seq IS NOT NULL;
