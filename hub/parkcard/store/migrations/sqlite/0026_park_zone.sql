-- The park's IANA time zone (e.g. Asia/Shanghai): its days, tickets' valid dates, gates' daily resets and the
-- nightly occupancy reset follow its local clock (SPEC.md §3.11, §5.8). NULL: not set, the park runs on UTC.
ALTER TABLE parks ADD COLUMN time_zone TEXT;
