-- 24: cashier shifts (parkcard.services.shifts). A desk has at most one open shift; every desk operation is
-- linked to the shift open at its desk when it is kept as pending (shift_operations, with the payment method:
-- only cash moves the drawer;
-- paid_by_tx: the ledger transaction that moved a non-cash payment off desk:cash). A shift's close writes its Z report, numbered in the order shifts close and
-- append-only. The park names the payment methods its desks take besides cash.
CREATE TABLE shifts(
    shift_no INTEGER PRIMARY KEY, desk_terminal_id INTEGER NOT NULL, opened_by TEXT NOT NULL,
    float_cents INTEGER NOT NULL, opened_at REAL NOT NULL, closed_at REAL, closed_by TEXT);
CREATE UNIQUE INDEX shifts_open_desk ON shifts(desk_terminal_id) WHERE closed_at IS NULL;
CREATE TABLE shift_operations(
    op_id TEXT PRIMARY KEY, shift_no INTEGER NOT NULL REFERENCES shifts(shift_no), method TEXT NOT NULL,
    paid_by_tx INTEGER);
CREATE INDEX shift_operations_shift ON shift_operations(shift_no);
CREATE TABLE z_reports(
    z_no INTEGER PRIMARY KEY, shift_no INTEGER NOT NULL UNIQUE REFERENCES shifts(shift_no),
    report TEXT NOT NULL, over_short_tx INTEGER, closed_at REAL NOT NULL);
CREATE TRIGGER z_reports_final_u BEFORE UPDATE ON z_reports
    BEGIN SELECT RAISE(ABORT, 'a Z report is final'); END;
CREATE TRIGGER z_reports_final_d BEFORE DELETE ON z_reports
    BEGIN SELECT RAISE(ABORT, 'a Z report is final'); END;
ALTER TABLE parks ADD COLUMN pay_methods TEXT NOT NULL DEFAULT 'card mobile';
