"""Cashier shifts in the store (tables shifts, shift_operations, z_reports): SQL every backend runs as written.

A backend's store mixes ShiftMethods in (it provides `write`, `_all` and `_one`, as for parkcard.store.reads).
`link_to_shift(tx, ...)` ties a desk operation to its desk's open shift inside the transaction that keeps the
operation as pending, so an operation never exists without its shift; a close counts the shift's operations
and writes its Z report in one transaction, which no operation kept meanwhile can slip past.
"""

from parkcard.domain.lifecycle import DeskOpState
from parkcard.store.errors import Refused
from parkcard.store.rows import DeskDayLine, Shift, ShiftOperation, StoredZReport

_SELECT = "SELECT %s FROM shifts " % ", ".join(Shift._fields)
_Z_SELECT = "SELECT %s FROM z_reports " % ", ".join(StoredZReport._fields)
# A Z report with its shift, for the list of Z reports: one row, the report's fields then the shift's.
_Z_WITH_SHIFT = "SELECT %s, %s FROM z_reports z JOIN shifts s ON s.shift_no = z.shift_no " % (
    ", ".join("z." + f for f in StoredZReport._fields), ", ".join("s." + f for f in Shift._fields))
TICKET_OP_PREFIX = "ticket:"        # a ticket sale's place in shift_operations: ticket:<serial>
CREDIT_OP_PREFIX = "credit:"        # a pending credit granted at a desk: credit:<card_no>:<credit_no>
# A shift's operations: its desk operations, its ticket sales (written: posted) and the credits granted at its
# desk (booked when granted: posted; cancelled: failed).
_OPS_SELECT = (
    "SELECT op_id, method, kind, state, amount_cents, bonus_cents, deposit_cents, fee_cents FROM ("
    "SELECT s.shift_no, s.op_id, s.method, o.kind, o.state, o.amount_cents, o.bonus_cents, o.deposit_cents, "
    "o.fee_cents, o.created_at AS at FROM shift_operations s JOIN desk_operations o ON o.op_id = s.op_id "
    "UNION ALL SELECT s.shift_no, s.op_id, s.method, 'ticket', CASE t.state WHEN 'written' THEN 'posted' "
    "ELSE t.state END, t.price_cents, 0, 0, 0, t.sold_at FROM shift_operations s "
    "JOIN tickets t ON s.op_id = '" + TICKET_OP_PREFIX + "' || CAST(t.serial AS TEXT) "
    "UNION ALL SELECT s.shift_no, s.op_id, s.method, 'credit', CASE c.state WHEN 'cancelled' THEN 'failed' "
    "ELSE 'posted' END, c.amount_cents, 0, 0, 0, c.granted_at FROM shift_operations s "
    "JOIN pending_credits c ON s.op_id = '" + CREDIT_OP_PREFIX + "' || CAST(c.card_no AS TEXT) || ':' || "
    "CAST(c.credit_no AS TEXT)) ops ")
_OPS_OF_SHIFT = _OPS_SELECT + "WHERE shift_no=? ORDER BY at, op_id"
# What the ledger check re-derives the shifts' own ledger transactions from (AuditRows.shift_postings).
Z_POSTINGS = "SELECT over_short_tx, z_no, report FROM z_reports WHERE over_short_tx IS NOT NULL ORDER BY z_no"
PAID_BY_POSTINGS = ("SELECT s.paid_by_tx, s.op_id, s.method, o.kind, o.amount_cents, o.bonus_cents, o.deposit_cents, "
                    "o.fee_cents FROM shift_operations s JOIN desk_operations o ON o.op_id = s.op_id "
                    "WHERE s.paid_by_tx IS NOT NULL ORDER BY s.paid_by_tx")
_GROUPS = {"operator": "actor", "desk": "CAST(desk_terminal_id AS TEXT)"}


class NoOpenShift(Refused):
    """The desk has no open shift: no operation is kept there until one is opened."""

    def __init__(self, desk_terminal_id):
        """The desk with no open shift."""
        super().__init__("desk %(desk)d has no open shift", desk=desk_terminal_id)
        self.desk_terminal_id = desk_terminal_id


class ShiftOfAnother(Refused):
    """The desk's open shift was opened by another operator: an operation runs in its own operator's shift."""

    def __init__(self, desk_terminal_id, shift_no, opened_by, actor):
        """The desk, its open shift and who opened it; actor: who asked."""
        super().__init__("desk %(desk)d has shift %(shift)d open, opened by %(opened_by)s, not by %(actor)s: an "
                         "operation belongs to the shift of the cashier who does it; %(opened_by)s closes it "
                         "(`parkcard shift close --desk %(desk)d --counted AMOUNT`) and you open your own (nothing "
                         "was charged)", desk=desk_terminal_id, shift=shift_no, opened_by=opened_by, actor=actor)
        self.desk_terminal_id, self.shift_no, self.opened_by = desk_terminal_id, shift_no, opened_by


class ShiftNotClosable(Refused):
    """The shift is unknown, already closed, or has an operation pending."""


def _open_shift_row(tx, desk_terminal_id):
    return tx.sql_row(_SELECT + "WHERE desk_terminal_id=? AND closed_at IS NULL", (desk_terminal_id,))


def ticket_op_id(serial):
    """The name of ticket `serial`'s sale among its shift's operations."""
    return TICKET_OP_PREFIX + str(serial)


def credit_op_id(card_no, credit_no):
    """The name of a pending credit's grant among its shift's operations."""
    return "%s%d:%d" % (CREDIT_OP_PREFIX, card_no, credit_no)


def link_to_shift(tx, op_id, desk_terminal_id, method, owner=None):
    """Tie the operation op_id to its desk's open shift with its payment method (inside a write); its shift_no.

    An operation tried again after it failed moves to the shift open now. NoOpenShift when there is none;
    ShiftOfAnother when owner (the operator doing it; None: anyone's, parkcard.services.shifts.shift_owner) did
    not open it.
    """
    row = _open_shift_row(tx, desk_terminal_id)
    if row is None:
        raise NoOpenShift(desk_terminal_id)
    if owner is not None and row[2] != owner:
        raise ShiftOfAnother(desk_terminal_id, row[0], row[2], owner)
    tx.sql_rowcount("DELETE FROM shift_operations WHERE op_id=?", (op_id,))
    tx.sql_rowcount("INSERT INTO shift_operations(op_id, shift_no, method) VALUES (?, ?, ?)", (op_id, row[0], method))
    return row[0]


def paid_by_in(tx, op_id, tx_id):
    """Name the ledger transaction that moved the operation's non-cash payment off desk:cash (inside a write)."""
    tx.sql_rowcount("UPDATE shift_operations SET paid_by_tx=? WHERE op_id=?", (tx_id, op_id))


class ShiftMethods:
    """interface.Store's shift methods, one SQL for every backend."""

    async def add_shift(self, desk_terminal_id, float_cents, opened_by, audit=None):
        """Open a shift at the desk with float_cents counted; return its Shift. ValueError if one is open there."""
        def run(tx):
            row = _open_shift_row(tx, desk_terminal_id)
            if row is not None:
                raise Refused("desk %(desk)d already has shift %(shift)d open (opened by %(opened_by)s)",
                              desk=desk_terminal_id, shift=row[0], opened_by=row[2])
            shift_no = tx.sql_row("SELECT COALESCE(MAX(shift_no), 0) + 1 FROM shifts")[0]
            shift = Shift(shift_no, desk_terminal_id, opened_by, float_cents, tx.now, None, None)
            tx.sql_rowcount("INSERT INTO shifts(%s) VALUES (%s)" % (", ".join(Shift._fields),
                                                                    ", ".join("?" * len(Shift._fields))), shift)
            return shift
        return await self.write(run, audit)

    async def open_shift_at(self, desk_terminal_id):
        """Return the Shift open at the desk, or None."""
        return await self._one_as(Shift, _SELECT + "WHERE desk_terminal_id=? AND closed_at IS NULL",
                                  (desk_terminal_id,))

    async def shift(self, shift_no):
        """Return the Shift numbered shift_no, or None."""
        return await self._one_as(Shift, _SELECT + "WHERE shift_no=?", (shift_no,))

    async def shifts(self, desk_terminal_id=None, open_only=False):
        """Return [Shift] (of one desk, only the open ones when asked), newest first."""
        where, params = ["1=1"], []
        if desk_terminal_id is not None:
            where.append("desk_terminal_id=?")
            params.append(desk_terminal_id)
        if open_only:
            where.append("closed_at IS NULL")
        return [Shift(*r) for r in await self._all(_SELECT + "WHERE " + " AND ".join(where) + " ORDER BY shift_no DESC",
                                                   tuple(params))]

    async def shift_operations(self, shift_no):
        """Return [ShiftOperation] of the shift's desk operations, oldest first."""
        return [ShiftOperation(*r) for r in await self._all(_OPS_OF_SHIFT, (shift_no,))]

    async def close_shift_with_report(self, shift_no, closed_by, make_report, audit=None):
        """Close an open shift and store its Z report; return the StoredZReport.

        make_report([ShiftOperation], pending_count) -> (report JSON, over/short ledger entries or None) runs
        inside the transaction (it raises to refuse); ShiftNotClosable when the shift is not open.
        """
        def run(tx):
            row = tx.sql_row(_SELECT + "WHERE shift_no=?", (shift_no,))
            if row is None:
                raise ShiftNotClosable("there is no shift %(shift)d", shift=shift_no)
            if row[Shift._fields.index("closed_at")] is not None:
                raise ShiftNotClosable("shift %(shift)d is already closed", shift=shift_no)
            ops, pending = [], 0
            for op_row in tx.sql_rows(_OPS_OF_SHIFT, (shift_no,)):
                op = ShiftOperation(*op_row)
                pending += op.state == DeskOpState.PENDING
                ops.append(op)
            report, entries = make_report(ops, pending)
            over_short_tx = tx.post(None, *entries) if entries else None
            z_no = tx.sql_row("SELECT COALESCE(MAX(z_no), 0) + 1 FROM z_reports")[0]
            tx.sql_rowcount("UPDATE shifts SET closed_at=?, closed_by=? WHERE shift_no=?",
                            (tx.now, closed_by, shift_no))
            stored = StoredZReport(z_no, shift_no, report, over_short_tx, tx.now)
            tx.sql_rowcount("INSERT INTO z_reports(%s) VALUES (?, ?, ?, ?, ?)" % ", ".join(StoredZReport._fields),
                            stored)
            return stored
        return await self.write(run, audit)

    async def z_report(self, z_no):
        """Return the StoredZReport numbered z_no, or None."""
        return await self._one_as(StoredZReport, _Z_SELECT + "WHERE z_no=?", (z_no,))

    async def z_report_of_shift(self, shift_no):
        """Return the StoredZReport of the closed shift shift_no, or None."""
        return await self._one_as(StoredZReport, _Z_SELECT + "WHERE shift_no=?", (shift_no,))

    async def z_reports(self, start_s=None, end_s=None, desk_terminal_id=None, opened_by=None, limit=100):
        """Return [(StoredZReport, Shift)] made in [start_s, end_s) (of one desk, of shifts opened_by one operator,
        when given), newest first, at most limit."""
        where, params = ["1=1"], []
        for clause, value in (("z.closed_at >= ?", start_s), ("z.closed_at < ?", end_s),
                              ("s.desk_terminal_id = ?", desk_terminal_id), ("s.opened_by = ?", opened_by)):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = await self._all(_Z_WITH_SHIFT + "WHERE " + " AND ".join(where) + " ORDER BY z.z_no DESC LIMIT ?",
                               tuple(params) + (limit,))
        size = len(StoredZReport._fields)
        return [(StoredZReport(*r[:size]), Shift(*r[size:])) for r in rows]

    async def park_pay_methods(self, park_id=1):
        """Return the payment methods the park's desks take besides cash (e.g. ('card', 'mobile'))."""
        row = await self._one("SELECT pay_methods FROM parks WHERE id=?", (park_id,))
        return tuple((row[0] if row else "card mobile").split())

    async def set_park_pay_methods(self, methods, park_id=1, audit=None):
        """Set the payment methods the park's desks take besides cash (creating the park's row); True if changed."""
        def run(tx):
            if tx.sql_row("SELECT id FROM parks WHERE id=?", (park_id,)) is None:
                tx.sql_rowcount("INSERT INTO parks(id, name) VALUES (?, ?)", (park_id, "park %d" % park_id))
            text = " ".join(methods)
            return tx.sql_rowcount("UPDATE parks SET pay_methods=? WHERE id=? AND pay_methods<>?",
                                   (text, park_id, text)) == 1
        return await self.write(run, audit)

    async def desk_day(self, start_s, end_s, by):
        """[DeskDayLine] of the desk operations posted in [start_s, end_s), grouped by `by` (operator or desk)."""
        group = _GROUPS[by]
        return [DeskDayLine(*r) for r in await self._all(
            "SELECT %s, kind, COUNT(*), CAST(SUM(amount_cents) AS BIGINT), CAST(SUM(bonus_cents) AS BIGINT), "
            "CAST(SUM(deposit_cents) AS BIGINT) FROM desk_operations WHERE state=? AND settled_at >= ? "
            "AND settled_at < ? GROUP BY %s, kind ORDER BY %s, kind" % (group, group, group),
            (DeskOpState.POSTED, start_s, end_s))]

    async def prefix_balance(self, prefix):
        """Return the sum in cents of every ledger account whose name starts with prefix (e.g. bonus:)."""
        return (await self._one("SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM ledger_entries "
                                "WHERE account LIKE ?", (prefix + "%",)))[0]
