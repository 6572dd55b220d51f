-- 3: admin card issues asked for by the CLI, carried out by the running hub at a desk terminal.
CREATE TABLE card_write_requests(
    id INTEGER PRIMARY KEY, desk_terminal_id INTEGER NOT NULL, uid BLOB NOT NULL, desk INTEGER NOT NULL,
    actor TEXT NOT NULL, created_at REAL NOT NULL, started_at REAL, finished_at REAL, card_no INTEGER,
    error TEXT);
