"""The store's staff members and the booth records the staff reports read: one definition for every backend.

A backend's store mixes StaffMethods in beside reads.SharedMethods (same `_all`, `_one`, `write`).
A staff card is issued through the desk's real path (parkcard.services.staff): link_card ties the card to
its staff member inside the transaction that posts the card's issue record.
"""

from protocol import record as R

from parkcard.domain.lifecycle import RecordStatus
from parkcard.store.errors import Refused
from parkcard.store.rows import ShiftRecord, StaffMember

_STAFF_SELECT = "SELECT %s FROM staff " % ", ".join(StaffMember._fields)
# What the staff reports read of a booth's day: its sales, reversals and shift records, applied.
BOOTH_KINDS = (R.KIND_DEBIT, R.KIND_REVERSAL, R.KIND_SHIFT)


def link_card(tx, staff_id, card_no):
    """In a write: staff member staff_id holds card card_no from now on (ValueError when the member is gone)."""
    if not tx.sql_rowcount("UPDATE staff SET card_no=? WHERE id=?", (card_no, staff_id)):
        raise Refused("there is no staff member %(staff)d", staff=staff_id)


class StaffMethods:
    """Staff members and the booth records of the staff reports (a mixin)."""

    async def add_staff(self, merchant_id, name, actor, audit=None):
        """Add a staff member to a merchant; return the StaffMember. ValueError for an unknown merchant."""
        def run(tx):
            if tx.sql_row("SELECT 1 FROM merchants WHERE id=?", (merchant_id,)) is None:
                raise Refused("there is no merchant %(merchant)d", merchant=merchant_id)
            staff_id = tx.sql_row("SELECT COALESCE(MAX(id), 0) + 1 FROM staff")[0]
            tx.sql_rowcount("INSERT INTO staff(id, merchant_id, name, card_no, created_at, created_by) "
                            "VALUES (?, ?, ?, NULL, ?, ?)", (staff_id, merchant_id, name, tx.now, actor))
            return StaffMember(staff_id, merchant_id, name, None, tx.now, actor)
        return await self.write(run, audit)

    async def staff_member(self, staff_id):
        """Return the StaffMember with this id, or None."""
        return await self._one_as(StaffMember, _STAFF_SELECT + "WHERE id=?", (staff_id,))

    async def staff(self, merchant_id=None):
        """Return [StaffMember] (one merchant's, if given), by id."""
        if merchant_id is None:
            rows = await self._all(_STAFF_SELECT + "ORDER BY id")
        else:
            rows = await self._all(_STAFF_SELECT + "WHERE merchant_id=? ORDER BY id", (merchant_id,))
        return [StaffMember(*r) for r in rows]

    async def set_shift_required(self, terminal_id, required, audit=None):
        """Set whether a booth refuses sales with no shift open; its config version moves on so the booth is sent
        it. Return (before, after); ValueError for an unknown terminal."""
        def run(tx):
            row = tx.sql_row("SELECT shift_required FROM terminals WHERE id=?", (terminal_id,))
            if row is None:
                raise Refused("there is no terminal %(terminal)d", terminal=terminal_id)
            if bool(row[0]) != bool(required):
                tx.sql_rowcount("UPDATE terminals SET shift_required=?, config_version=config_version+1 WHERE id=?",
                                (int(bool(required)), terminal_id))
            return bool(row[0]), bool(required)
        return await self.write(run, audit)

    async def shift_required(self, terminal_id):
        """True when the booth refuses sales with no shift open."""
        row = await self._one("SELECT shift_required FROM terminals WHERE id=?", (terminal_id,))
        return bool(row[0]) if row else False

    async def shift_records(self, start_s, end_s, terminal_id=None):
        """[ShiftRecord] of the applied sales, reversals and shift records timed in [start_s, end_s), by terminal
        and seq (one terminal's, if given)."""
        sql = ("SELECT terminal_id, seq, kind, time_s, amount_cents, raw FROM records WHERE status=? "
               "AND kind IN (?, ?, ?) AND time_s>=? AND time_s<? ")
        params = (RecordStatus.APPLIED,) + BOOTH_KINDS + (start_s, end_s)
        if terminal_id is not None:
            sql += "AND terminal_id=? "
            params += (terminal_id,)
        rows = await self._all(sql + "ORDER BY terminal_id, seq", params)
        return [ShiftRecord(r[0], r[1], r[2], r[3], r[4], bytes(r[5])) for r in rows]
