-- The park's IANA time zone (e.g. Asia/Shanghai): its days, tickets' valid dates, gates' daily resets and the
-- nightly occupancy reset follow its local clock (SPEC.md §3.11, §5.8). NULL: not set, the park runs on UTC.
ALTER TABLE parks ADD COLUMN time_zone TEXT;
-- A queued ticket sale may replace a ticket still valid on the card (`parkcard ticket sell --replace`);
-- 0: only a card without a ticket, or whose ticket expired or is used up (SPEC.md §3.12).
ALTER TABLE ticket_sale_requests ADD COLUMN replace_valid INTEGER NOT NULL DEFAULT 0;
