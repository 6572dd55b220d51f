-- A pending credit's bonus part (SPEC.md §8.1): the cents of it that land in the card's bonus purse, never
-- refundable as cash there (a replaced card's hold carries the lost card's bonus). And where a lost card's credit
-- moved to (SPEC.md §4.13): the credit it was granted again as, so that a terminal still delivering it onto the
-- lost card is known for the move it was and moves no value twice.
ALTER TABLE pending_credits ADD COLUMN bonus_cents BIGINT NOT NULL DEFAULT 0 CHECK (bonus_cents >= 0);
ALTER TABLE pending_credits ADD COLUMN moved_to_card_no BIGINT;
ALTER TABLE pending_credits ADD COLUMN moved_to_credit_no BIGINT;
