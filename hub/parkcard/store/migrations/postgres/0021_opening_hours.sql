-- The park's opening hours (SQLite's 21: the comments there).
ALTER TABLE parks ADD COLUMN opens_min BIGINT;
ALTER TABLE parks ADD COLUMN closes_min BIGINT;
