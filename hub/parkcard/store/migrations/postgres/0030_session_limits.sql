-- How long an operator's web session lasts (SQLite's 32: the comments there).
ALTER TABLE parks ADD COLUMN session_idle_s BIGINT NOT NULL DEFAULT 28800;
ALTER TABLE parks ADD COLUMN session_max_s BIGINT NOT NULL DEFAULT 28800;
