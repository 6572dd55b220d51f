-- The park's IANA time zone (SQLite's 26: the comments there).
ALTER TABLE parks ADD COLUMN time_zone TEXT;
