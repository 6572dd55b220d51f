-- 29: the park's offline rules (the window a terminal serves offline and a card's daily cap, sent in every
-- terminal's T_CONFIG, SPEC.md §5.3) with the release delay of a replaced card's hold (§4.13); offline_rules_version
-- moves at each change and with it the T_CONFIG version terminals are sent. hold_release_s 0: the offline window.
ALTER TABLE parks ADD COLUMN offline_window_s INTEGER NOT NULL DEFAULT 86400;
ALTER TABLE parks ADD COLUMN offline_daily_cap_cents INTEGER NOT NULL DEFAULT 20000;
ALTER TABLE parks ADD COLUMN hold_release_s INTEGER NOT NULL DEFAULT 0;
ALTER TABLE parks ADD COLUMN offline_rules_version INTEGER NOT NULL DEFAULT 0;
-- A replacement names the lost card it replaces: one replacement of a card at a time, refused in the transaction
-- that keeps the second (the index is the last word when two writers race).
ALTER TABLE desk_operations ADD COLUMN replaces_card_no INTEGER;
CREATE UNIQUE INDEX desk_operations_replacing ON desk_operations(replaces_card_no)
    WHERE replaces_card_no IS NOT NULL AND state <> 'failed';
-- The tier the card's own info block holds when it is not the hub's tier (a member's tier changed since the card
-- was written; SPEC.md §3.3): NULL once the desk wrote the hub's tier onto the card.
ALTER TABLE cards ADD COLUMN tier_on_card INTEGER;
-- The roles of the operator who asked for a queued ticket sale: the hub sells it as that operator.
ALTER TABLE ticket_sale_requests ADD COLUMN roles TEXT NOT NULL DEFAULT '';
