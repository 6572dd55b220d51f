-- 10: settlement pays each record once. settlement_records has the record as its primary key, so
-- no record can be in two settlements; both it and settlements are append-only, and a closed
-- period may not overlap another of the same merchant. Closes made before this migration did not
-- say which records they took: each old settlement claims the records of its period that were
-- applied by the time it closed, the oldest settlement first. The park has a currency (ISO 4217),
-- and a settlement keeps the one it was closed in. Entries are found by their transaction: a close
-- sums the commission and payout entries of each record it takes (was a scan of the account's
-- entries per record).
CREATE INDEX ledger_entries_tx ON ledger_entries(tx_id);
ALTER TABLE parks ADD COLUMN currency TEXT NOT NULL DEFAULT 'CNY';
ALTER TABLE settlements ADD COLUMN currency TEXT NOT NULL DEFAULT 'CNY';
ALTER TABLE settlements ADD COLUMN late_records INTEGER NOT NULL DEFAULT 0;
CREATE TABLE settlement_records(
    record_id INTEGER PRIMARY KEY REFERENCES records(id),
    settlement_id INTEGER NOT NULL REFERENCES settlements(id));
CREATE INDEX settlement_records_settlement ON settlement_records(settlement_id);
INSERT OR IGNORE INTO settlement_records(record_id, settlement_id)
    SELECT r.id, s.id FROM settlements s JOIN terminals m ON m.merchant_id = s.merchant_id
    JOIN records r ON r.terminal_id = m.id JOIN ledger_tx t ON t.record_id = r.id
    WHERE r.status='applied' AND r.kind IN (1, 3) AND r.time_s >= s.period_start AND r.time_s < s.period_end
    AND r.applied_at <= s.closed_at ORDER BY s.id, r.id;
CREATE TRIGGER settlement_records_final_u BEFORE UPDATE ON settlement_records
    BEGIN SELECT RAISE(ABORT, 'a settled record stays in its settlement'); END;
CREATE TRIGGER settlement_records_final_d BEFORE DELETE ON settlement_records
    BEGIN SELECT RAISE(ABORT, 'a settled record stays in its settlement'); END;
CREATE TRIGGER settlements_final_u BEFORE UPDATE ON settlements
    BEGIN SELECT RAISE(ABORT, 'a closed settlement is final'); END;
CREATE TRIGGER settlements_final_d BEFORE DELETE ON settlements
    BEGIN SELECT RAISE(ABORT, 'a closed settlement is final'); END;
CREATE TRIGGER settlements_no_overlap BEFORE INSERT ON settlements
    WHEN EXISTS (SELECT 1 FROM settlements s WHERE s.merchant_id = NEW.merchant_id
                 AND s.period_start < NEW.period_end AND NEW.period_start < s.period_end)
    BEGIN SELECT RAISE(ABORT, 'the period overlaps a closed settlement of this merchant'); END;
