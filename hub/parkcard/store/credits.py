"""Pending credits in the store (SPEC.md §8): their SQL, which every backend runs as written.

A backend's store mixes CreditMethods in (it provides `write`, `_all` and `_one`, as for
parkcard.store.reads). The ingest pipeline reads and delivers a card's credits inside its own
write transaction through card_credits and deliver.
"""

from parkcard.domain import ledger
from parkcard.domain.shifts import CASH as CASH_METHOD
from parkcard.store.errors import NotIssued
from parkcard.store.rows import PendingCredit
from parkcard.store.shifts import credit_op_id, link_to_shift

GRANTED = "granted"
SENT = "sent"               # in a list some terminal was sent: no longer cancellable
DELIVERED = "delivered"
CANCELLED = "cancelled"
OPEN = (GRANTED, SENT)      # what the list terminals hold carries

_SELECT = "SELECT %s FROM pending_credits " % ", ".join(PendingCredit._fields)


class NotCancellable(ValueError):
    """A credit that is unknown, or already with a terminal or on the card."""


def _bump(tx):
    tx.sql_rowcount("UPDATE credits_version SET version = version + 1 WHERE id = 1")


def card_credits(tx, card_no):
    """{credit_no: (amount_cents, delivered)} of the card's credits not cancelled, inside a write."""
    out = {}
    row = tx.sql_row("SELECT COUNT(*) FROM pending_credits WHERE card_no=?", (card_no,))
    if not row[0]:
        return out
    for credit_no in range(1, row[0] + 1):
        found = tx.sql_row("SELECT amount_cents, state FROM pending_credits WHERE card_no=? AND credit_no=?",
                           (card_no, credit_no))
        if found is not None and found[1] != CANCELLED:
            out[credit_no] = (found[0], found[1] == DELIVERED)
    return out


def deliver(tx, card_no, credit_nos, terminal_id, seq):
    """Mark the card's credits delivered by this record (those not delivered before), inside a write."""
    changed = 0
    for credit_no in credit_nos:
        changed += tx.sql_rowcount(
            "UPDATE pending_credits SET state=?, delivered_terminal=?, delivered_seq=? "
            "WHERE card_no=? AND credit_no=? AND state IN (?, ?)",
            (DELIVERED, terminal_id, seq, card_no, credit_no, GRANTED, SENT))
    if changed:
        _bump(tx)       # the list no longer carries them
    return changed


def grant(tx, card_no, amount_cents, reason, source, actor):
    """Grant a credit to an issued card inside a write; return its PendingCredit. NotIssued if unknown."""
    if not tx.card_exists(card_no):
        raise NotIssued(card_no)
    credit_no = tx.sql_row("SELECT COUNT(*) FROM pending_credits WHERE card_no=?", (card_no,))[0] + 1
    if credit_no > 0xFFFF:
        raise ValueError("card %d has had 65,535 credits, the most a card counts" % card_no)
    tx_id = tx.post(None, ledger.TX_CREDIT_GRANT, ledger.credit_grant(source, amount_cents))
    tx.sql_rowcount(
        "INSERT INTO pending_credits(card_no, credit_no, amount_cents, reason, source, granted_by, "
        "granted_at, state, grant_tx) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (card_no, credit_no, amount_cents, reason, source, actor, tx.now, GRANTED, tx_id))
    _bump(tx)
    return PendingCredit(card_no, credit_no, amount_cents, reason, source, actor, tx.now, GRANTED, None, None)


class CreditMethods:
    """The pending-credit methods of interface.Store (a mixin)."""

    async def add_pending_credit(self, card_no, amount_cents, reason, source, actor, audit=None,
                                 desk_terminal_id=None, shift_owner=None):
        """Grant a credit to an issued card, funded from source; return its PendingCredit. NotIssued if unknown.

        desk_terminal_id: the desk it is paid at in cash; the grant joins that desk's open shift in the same
        transaction (parkcard.store.shifts.NoOpenShift when there is none, ShiftOfAnother when shift_owner did not
        open it)."""
        def run(tx):
            credit = grant(tx, card_no, amount_cents, reason, source, actor)
            if desk_terminal_id is not None:
                link_to_shift(tx, credit_op_id(card_no, credit.credit_no), desk_terminal_id, CASH_METHOD, shift_owner)
            return credit
        return await self.write(run, audit)

    async def cancel_pending_credit(self, card_no, credit_no, audit=None):
        """Cancel a credit no terminal has been sent yet: its value goes back to its source. NotCancellable else."""
        def run(tx):
            row = tx.sql_row("SELECT amount_cents, source, state FROM pending_credits WHERE card_no=? AND credit_no=?",
                             (card_no, credit_no))
            if row is None:
                raise NotCancellable("card %d has no credit %d" % (card_no, credit_no))
            if row[2] != GRANTED:
                raise NotCancellable("credit %d of card %d is %s" % (credit_no, card_no, row[2]))
            tx_id = tx.post(None, ledger.TX_CREDIT_CANCEL, ledger.credit_cancel(row[1], row[0]))
            tx.sql_rowcount("UPDATE pending_credits SET state=?, cancel_tx=? WHERE card_no=? AND credit_no=?",
                            (CANCELLED, tx_id, card_no, credit_no))
            _bump(tx)
            return row[0]
        return await self.write(run, audit)

    async def pending_credits(self, card_no=None):
        """[PendingCredit] of one card or of every card, by card and number."""
        where, params = ("WHERE card_no=? ", (card_no,)) if card_no is not None else ("", ())
        return [PendingCredit(*r) for r in await self._all(_SELECT + where + "ORDER BY card_no, credit_no", params)]

    async def credits_list(self):
        """(version, [(card_no, credit_no, amount_cents)]) of the credits not yet delivered: what terminals hold."""
        version = (await self._one("SELECT version FROM credits_version WHERE id = 1"))[0]
        rows = await self._all("SELECT card_no, credit_no, amount_cents FROM pending_credits WHERE state IN (?, ?) "
                               "ORDER BY card_no, credit_no", OPEN)
        return version, [tuple(r) for r in rows]

    async def credits_sent(self, keys):
        """The credits [(card_no, credit_no)] went out in a list: they can no longer be cancelled."""
        def run(tx):
            for card_no, credit_no in keys:
                tx.sql_rowcount("UPDATE pending_credits SET state=? WHERE card_no=? AND credit_no=? AND state=?",
                                (SENT, card_no, credit_no, GRANTED))
        if keys:
            await self.write(run)
