-- 6: an admin card is valid only once its desk reported it written (state pending -> written, or
-- failed / abandoned); a request the CLI gave up on is cancelled. Cards issued before this
-- version were accepted as valid then and stay written.
ALTER TABLE admin_cards ADD COLUMN state TEXT NOT NULL DEFAULT 'written'
    CHECK (state IN ('pending', 'written', 'failed', 'abandoned'));
ALTER TABLE card_write_requests ADD COLUMN cancelled_at REAL;
