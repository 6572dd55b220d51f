-- Booth sales: price list versions, discount rule versions, who bears a merchant's discounts (SQLite's 16).
CREATE TABLE price_lists(
    merchant_id BIGINT NOT NULL REFERENCES merchants(id), version BIGINT NOT NULL CHECK (version >= 1),
    free_amount BIGINT NOT NULL, entries BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    created_by TEXT NOT NULL, PRIMARY KEY (merchant_id, version));
CREATE TABLE discount_rules(
    version BIGINT PRIMARY KEY CHECK (version >= 1), rules TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    created_by TEXT NOT NULL);
ALTER TABLE merchants ADD COLUMN discount_bearer TEXT NOT NULL DEFAULT 'park'
    CHECK (discount_bearer IN ('park', 'merchant'));
-- What a settlement takes of the discounts: every one given on the merchant's sales, and the part the park
-- bears (it pays it to the merchant with the payout); 0 for settlements closed before.
ALTER TABLE settlements ADD COLUMN discounts_cents BIGINT NOT NULL DEFAULT 0;
ALTER TABLE settlements ADD COLUMN park_discounts_cents BIGINT NOT NULL DEFAULT 0;
