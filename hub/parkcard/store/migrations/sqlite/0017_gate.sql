-- Tickets and gates (SPEC.md §3.7-3.10, §4.9, §5.8). Ticket products are park configuration; a ticket is
-- one sale of a product onto a card (its serial is the card's ticket info serial); a gate is a gate
-- terminal's direction, area, re-entry rule, daily reset and accepted products (sent in its T_CONFIG tail).
-- passages holds one row per applied passage record, written by ingest in the record's transaction and
-- checked against the records' own bytes by the occupancy check; area_resets the last daily reset of an
-- area (occupancy counts the passages after it).
CREATE TABLE ticket_products(
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, type INTEGER NOT NULL, area INTEGER NOT NULL,
    valid_days INTEGER NOT NULL, entries INTEGER NOT NULL, day_limit INTEGER NOT NULL,
    included_min INTEGER NOT NULL, interval_min INTEGER NOT NULL, interval_price_cents INTEGER NOT NULL,
    price_cents INTEGER NOT NULL, created_at REAL NOT NULL);
CREATE TABLE tickets(
    serial INTEGER PRIMARY KEY, product_id INTEGER NOT NULL REFERENCES ticket_products(id),
    card_no INTEGER NOT NULL, uid BLOB NOT NULL, from_day INTEGER NOT NULL, to_day INTEGER NOT NULL,
    entries INTEGER NOT NULL, price_cents INTEGER NOT NULL, state TEXT NOT NULL, sold_at REAL NOT NULL,
    sold_by TEXT NOT NULL);
CREATE INDEX tickets_card ON tickets(card_no);
CREATE TABLE gates(
    terminal_id INTEGER PRIMARY KEY REFERENCES terminals(id), direction INTEGER NOT NULL, area INTEGER NOT NULL,
    reentry INTEGER NOT NULL, reentry_min INTEGER NOT NULL, reset_s INTEGER NOT NULL, products TEXT NOT NULL,
    version INTEGER NOT NULL);
CREATE TABLE passages(
    record_id INTEGER PRIMARY KEY REFERENCES records(id), terminal_id INTEGER NOT NULL, card_no INTEGER NOT NULL,
    kind INTEGER NOT NULL, area INTEGER NOT NULL, reason INTEGER NOT NULL, product INTEGER NOT NULL,
    time_s INTEGER NOT NULL);
CREATE INDEX passages_area_time ON passages(area, time_s);
CREATE TABLE area_resets(area INTEGER PRIMARY KEY, at_s INTEGER NOT NULL, by_actor TEXT NOT NULL);
