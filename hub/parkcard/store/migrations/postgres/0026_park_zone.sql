-- The park's IANA time zone (SQLite's 26: the comments there).
ALTER TABLE parks ADD COLUMN time_zone TEXT;
ALTER TABLE ticket_sale_requests ADD COLUMN replace_valid BIGINT NOT NULL DEFAULT 0;
