-- 5: quarantine keeps a bounded prefix of what it refused, with the whole payload's size and digest.
ALTER TABLE quarantine ADD COLUMN size INTEGER;
ALTER TABLE quarantine ADD COLUMN sha256 BLOB;
UPDATE quarantine SET size = length(raw);
