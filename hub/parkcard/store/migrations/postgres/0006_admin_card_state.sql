-- An admin card is valid only once its desk reported it written; a request the CLI gave up on is
-- cancelled (SQLite's 6).
ALTER TABLE admin_cards ADD COLUMN state TEXT NOT NULL DEFAULT 'written'
    CHECK (state IN ('pending', 'written', 'failed', 'abandoned'));
ALTER TABLE card_write_requests ADD COLUMN cancelled_at DOUBLE PRECISION;
