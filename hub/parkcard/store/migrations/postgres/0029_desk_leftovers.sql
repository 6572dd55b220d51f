-- 29: the park's offline rules, one replacement of a lost card at a time, the tier a card holds, the roles of a
-- queued ticket sale (SQLite's 29: the comments there).
ALTER TABLE parks ADD COLUMN offline_window_s BIGINT NOT NULL DEFAULT 86400;
ALTER TABLE parks ADD COLUMN offline_daily_cap_cents BIGINT NOT NULL DEFAULT 20000;
ALTER TABLE parks ADD COLUMN hold_release_s BIGINT NOT NULL DEFAULT 0;
ALTER TABLE parks ADD COLUMN offline_rules_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE desk_operations ADD COLUMN replaces_card_no BIGINT;
CREATE UNIQUE INDEX desk_operations_replacing ON desk_operations(replaces_card_no)
    WHERE replaces_card_no IS NOT NULL AND state <> 'failed';
ALTER TABLE cards ADD COLUMN tier_on_card BIGINT;
ALTER TABLE ticket_sale_requests ADD COLUMN roles TEXT NOT NULL DEFAULT '';
