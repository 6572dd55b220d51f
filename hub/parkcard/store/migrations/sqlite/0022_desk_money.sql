-- The front desk's money out (SPEC.md §4.12): the deposit of each card type and the refund rules as park
-- settings, the tier table (the desk's recharge bonus) as park configuration, a desk operation's refund fee.
ALTER TABLE parks ADD COLUMN deposit_member_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE parks ADD COLUMN deposit_temporary_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE parks ADD COLUMN refund_minimum_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE parks ADD COLUMN refund_fee_bps INTEGER NOT NULL DEFAULT 0;
ALTER TABLE parks ADD COLUMN refund_fee_fixed_cents INTEGER NOT NULL DEFAULT 0;
-- steps: JSON [[min_cash_cents, bonus_cents], ...]. Seeded with parkcard.domain.tiers.DEFAULT_TIERS.
CREATE TABLE tiers(
    code INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, bonus_bps INTEGER NOT NULL, steps TEXT NOT NULL);
INSERT INTO tiers(code, name, bonus_bps, steps) VALUES (0, 'standard', 0, '[]'), (1, 'silver', 0, '[]'),
    (2, 'gold', 1000, '[]');
ALTER TABLE desk_operations ADD COLUMN fee_cents INTEGER NOT NULL DEFAULT 0;
