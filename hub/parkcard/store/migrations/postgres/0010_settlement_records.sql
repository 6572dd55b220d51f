-- Settlement pays each record once (SQLite's 10): settlement_records has the record as its primary key;
-- it and settlements are append-only; a closed period may not overlap another of the same merchant. The
-- park has a currency, and a settlement keeps the one it was closed in.
CREATE INDEX ledger_entries_tx ON ledger_entries(tx_id);
ALTER TABLE parks ADD COLUMN currency TEXT NOT NULL DEFAULT 'CNY';
ALTER TABLE settlements ADD COLUMN currency TEXT NOT NULL DEFAULT 'CNY';
ALTER TABLE settlements ADD COLUMN late_records BIGINT NOT NULL DEFAULT 0;
CREATE TABLE settlement_records(
    record_id BIGINT PRIMARY KEY REFERENCES records(id),
    settlement_id BIGINT NOT NULL REFERENCES settlements(id));
CREATE INDEX settlement_records_settlement ON settlement_records(settlement_id);
INSERT INTO settlement_records(record_id, settlement_id)
    SELECT r.id, s.id FROM settlements s JOIN terminals m ON m.merchant_id = s.merchant_id
    JOIN records r ON r.terminal_id = m.id JOIN ledger_tx t ON t.record_id = r.id
    WHERE r.status='applied' AND r.kind IN (1, 3) AND r.time_s >= s.period_start AND r.time_s < s.period_end
    AND r.applied_at <= s.closed_at ORDER BY s.id, r.id
    ON CONFLICT (record_id) DO NOTHING;
CREATE TRIGGER settlement_records_final BEFORE UPDATE OR DELETE ON settlement_records
    FOR EACH ROW EXECUTE FUNCTION parkcard_refuse('a settled record stays in its settlement');
CREATE TRIGGER settlement_records_no_truncate BEFORE TRUNCATE ON settlement_records
    FOR EACH STATEMENT EXECUTE FUNCTION parkcard_refuse('a settled record stays in its settlement');
CREATE TRIGGER settlements_final BEFORE UPDATE OR DELETE ON settlements
    FOR EACH ROW EXECUTE FUNCTION parkcard_refuse('a closed settlement is final');
CREATE TRIGGER settlements_no_truncate BEFORE TRUNCATE ON settlements
    FOR EACH STATEMENT EXECUTE FUNCTION parkcard_refuse('a closed settlement is final');
CREATE FUNCTION settlements_no_overlap() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Two processes closing the same merchant's periods at once must not both see "no overlap":
    -- the check and the insert of one merchant are serialised for the rest of the transaction.
    PERFORM pg_advisory_xact_lock(hashtext('parkcard.settlements'), NEW.merchant_id::integer);
    IF EXISTS (SELECT 1 FROM settlements s WHERE s.merchant_id = NEW.merchant_id
               AND s.period_start < NEW.period_end AND NEW.period_start < s.period_end) THEN
        RAISE EXCEPTION 'the period overlaps a closed settlement of this merchant' USING ERRCODE = '23000';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER settlements_no_overlap BEFORE INSERT ON settlements
    FOR EACH ROW EXECUTE FUNCTION settlements_no_overlap();
