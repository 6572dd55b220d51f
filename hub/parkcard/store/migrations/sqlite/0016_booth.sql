-- Booth sales (SPEC.md §7): every version of a merchant's price list, as the 32-byte entries the
-- terminals receive (protocol/price_list.py), and every version of the park's discount rules (JSON:
-- parkcard.services.discounts); a sale is re-priced from the versions its record names, so no version is
-- ever changed or deleted. Who bears a merchant's discounts is a merchant setting used by settlement.
CREATE TABLE price_lists(
    merchant_id INTEGER NOT NULL REFERENCES merchants(id), version INTEGER NOT NULL CHECK (version >= 1),
    free_amount INTEGER NOT NULL, entries BLOB NOT NULL, created_at REAL NOT NULL, created_by TEXT NOT NULL,
    PRIMARY KEY (merchant_id, version));
CREATE TABLE discount_rules(
    version INTEGER PRIMARY KEY CHECK (version >= 1), rules TEXT NOT NULL, created_at REAL NOT NULL,
    created_by TEXT NOT NULL);
ALTER TABLE merchants ADD COLUMN discount_bearer TEXT NOT NULL DEFAULT 'park'
    CHECK (discount_bearer IN ('park', 'merchant'));
-- What a settlement takes of the discounts: every one given on the merchant's sales, and the part the park
-- bears (it pays it to the merchant with the payout); 0 for settlements closed before.
ALTER TABLE settlements ADD COLUMN discounts_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE settlements ADD COLUMN park_discounts_cents INTEGER NOT NULL DEFAULT 0;
