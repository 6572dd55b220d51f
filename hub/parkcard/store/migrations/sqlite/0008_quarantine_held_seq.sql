-- 8: a damaged record (its MAC or version fails inside an authenticated upload) holds its
-- terminal's seq in quarantine, so the cumulative ack moves past it (SPEC.md §5.4).
ALTER TABLE quarantine ADD COLUMN seq INTEGER;
CREATE UNIQUE INDEX quarantine_held_seq ON quarantine(terminal_id, seq) WHERE seq IS NOT NULL;
