-- Cashier shifts, their operations with the payment method, and their append-only Z reports (SQLite's 24).
CREATE TABLE shifts(
    shift_no BIGINT PRIMARY KEY, desk_terminal_id BIGINT NOT NULL, opened_by TEXT NOT NULL,
    float_cents BIGINT NOT NULL, opened_at DOUBLE PRECISION NOT NULL, closed_at DOUBLE PRECISION, closed_by TEXT);
CREATE UNIQUE INDEX shifts_open_desk ON shifts(desk_terminal_id) WHERE closed_at IS NULL;
CREATE TABLE shift_operations(
    op_id TEXT PRIMARY KEY, shift_no BIGINT NOT NULL REFERENCES shifts(shift_no), method TEXT NOT NULL,
    paid_by_tx BIGINT);
CREATE INDEX shift_operations_shift ON shift_operations(shift_no);
CREATE TABLE z_reports(
    z_no BIGINT PRIMARY KEY, shift_no BIGINT NOT NULL UNIQUE REFERENCES shifts(shift_no),
    report TEXT NOT NULL, over_short_tx BIGINT, closed_at DOUBLE PRECISION NOT NULL);
CREATE TRIGGER z_reports_final BEFORE UPDATE OR DELETE ON z_reports
    FOR EACH ROW EXECUTE FUNCTION parkcard_refuse('a Z report is final');
CREATE TRIGGER z_reports_no_truncate BEFORE TRUNCATE ON z_reports
    FOR EACH STATEMENT EXECUTE FUNCTION parkcard_refuse('a Z report is final');
ALTER TABLE parks ADD COLUMN pay_methods TEXT NOT NULL DEFAULT 'card mobile';
