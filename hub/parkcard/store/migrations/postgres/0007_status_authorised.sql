-- Whether the terminal itself reports serving (status.authorised), beside the hub's decision (SQLite's 7).
ALTER TABLE terminals ADD COLUMN status_authorised BIGINT;
