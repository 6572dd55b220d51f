-- How long an operator's web session lasts (parkcard.web.sessions, `parkcard park sessions`): it ends after
-- session_idle_s without a request, and session_max_s after its login at the latest.
ALTER TABLE parks ADD COLUMN session_idle_s INTEGER NOT NULL DEFAULT 28800;
ALTER TABLE parks ADD COLUMN session_max_s INTEGER NOT NULL DEFAULT 28800;
