-- 20: ticket sales asked for by the CLI (`parkcard ticket sell`), carried out by the running hub at a desk
-- terminal (it holds the park keys and the desk link). serial is the ticket the hub recorded for the request;
-- finished_at with error NULL means the desk wrote it.
CREATE TABLE ticket_sale_requests(
    id INTEGER PRIMARY KEY, desk_terminal_id INTEGER NOT NULL, product_id INTEGER NOT NULL,
    card_no INTEGER NOT NULL, start_day INTEGER, actor TEXT NOT NULL, created_at REAL NOT NULL,
    started_at REAL, cancelled_at REAL, finished_at REAL, serial INTEGER, error TEXT);
-- A written ticket's price, paid in cash at the desk, is booked in its own ledger transaction (kind 1020,
-- desk:cash -> park:ticket_revenue) in the transaction that marks it written; sale_tx names it (NULL: free or
-- not written, no money moved).
ALTER TABLE tickets ADD COLUMN sale_tx INTEGER;
