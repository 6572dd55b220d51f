-- The front desk's money out (SQLite's 22: the comments there).
ALTER TABLE parks ADD COLUMN deposit_member_cents BIGINT NOT NULL DEFAULT 0;
ALTER TABLE parks ADD COLUMN deposit_temporary_cents BIGINT NOT NULL DEFAULT 0;
ALTER TABLE parks ADD COLUMN refund_minimum_cents BIGINT NOT NULL DEFAULT 0;
ALTER TABLE parks ADD COLUMN refund_fee_bps BIGINT NOT NULL DEFAULT 0;
ALTER TABLE parks ADD COLUMN refund_fee_fixed_cents BIGINT NOT NULL DEFAULT 0;
CREATE TABLE tiers(
    code BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE, bonus_bps BIGINT NOT NULL, steps TEXT NOT NULL);
INSERT INTO tiers(code, name, bonus_bps, steps) VALUES (0, 'standard', 0, '[]'), (1, 'silver', 0, '[]'),
    (2, 'gold', 1000, '[]');
ALTER TABLE desk_operations ADD COLUMN fee_cents BIGINT NOT NULL DEFAULT 0;
