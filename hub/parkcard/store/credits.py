"""Pending credits in the store (SPEC.md §8): their SQL, which every backend runs as written.

A backend's store mixes CreditMethods in (it provides `write`, `_all` and `_one`, as for
parkcard.store.reads). The ingest pipeline reads and delivers a card's credits inside its own
write transaction through card_credits and deliver.
"""

from typing import NamedTuple

from parkcard.domain import accounts, ledger
from parkcard.domain.explained import Cents, Word
from parkcard.domain.shifts import CASH as CASH_METHOD
from parkcard.store.errors import NotIssued, Refused
from parkcard.store.rows import PendingCredit
from parkcard.store.shifts import credit_op_id, link_to_shift

GRANTED = "granted"
SENT = "sent"               # in a list some terminal was sent: no longer cancellable
DELIVERED = "delivered"
CANCELLED = "cancelled"
OPEN = (GRANTED, SENT)      # what the list terminals hold carries

_SELECT = "SELECT %s FROM pending_credits " % ", ".join(PendingCredit._fields)


class NotCancellable(Refused):
    """A credit that is unknown, or already with a terminal or on the card."""


class GrantIdReused(Refused):
    """A grant id sent again with another card, amount or source than its first grant (the message says which)."""


class GrantedBefore(PendingCredit):
    """The credit a grant id was granted the first time: answered again, nothing granted twice."""


def _bump(tx):
    tx.sql_rowcount("UPDATE credits_version SET version = version + 1 WHERE id = 1")


class CardCredit(NamedTuple):
    """One credit of a card as ingest judges a credit record against it (parkcard.domain.ingest_rules)."""

    amount_cents: int
    delivered: bool
    bonus_cents: int = 0    # of the amount, what lands in the bonus purse
    moved: bool = False     # a lost card's credit moved to the card in use: it moves no value on this card


def card_credits(tx, card_no):
    """{credit_no: CardCredit} of the card's credits not cancelled, or cancelled by their move to the card in
    use (SPEC.md §4.13), inside a write."""
    out = {}
    row = tx.sql_row("SELECT COUNT(*) FROM pending_credits WHERE card_no=?", (card_no,))
    if not row[0]:
        return out
    for credit_no in range(1, row[0] + 1):
        found = tx.sql_row("SELECT amount_cents, state, bonus_cents, moved_to_credit_no FROM pending_credits "
                           "WHERE card_no=? AND credit_no=?", (card_no, credit_no))
        if found is not None and (found[1] != CANCELLED or found[3] is not None):
            out[credit_no] = CardCredit(found[0], found[1] == DELIVERED, found[2], found[3] is not None)
    return out


def deliver(tx, card_no, credit_nos, terminal_id, seq):
    """Mark the card's credits delivered by this record (those not delivered before), inside a write; a moved
    credit (SPEC.md §4.13) stays cancelled and keeps the first record that delivered it onto the lost card."""
    changed = 0
    for credit_no in credit_nos:
        delivered = tx.sql_rowcount(
            "UPDATE pending_credits SET state=?, delivered_terminal=?, delivered_seq=? "
            "WHERE card_no=? AND credit_no=? AND state IN (?, ?)",
            (DELIVERED, terminal_id, seq, card_no, credit_no, GRANTED, SENT))
        if not delivered:
            tx.sql_rowcount("UPDATE pending_credits SET delivered_terminal=?, delivered_seq=? WHERE card_no=? AND "
                            "credit_no=? AND moved_to_credit_no IS NOT NULL AND delivered_seq IS NULL",
                            (terminal_id, seq, card_no, credit_no))
        changed += delivered
    if changed:
        _bump(tx)       # the list no longer carries them
    return changed


def card_in_use(tx, card_no):
    """The card that carries card_no's value now: card_no, or the last of its replacements (SPEC.md §4.13)."""
    seen = {card_no}
    while True:
        row = tx.sql_row("SELECT new_card_no FROM replacements WHERE old_card_no=?", (card_no,))
        if row is None or row[0] in seen:
            return card_no
        card_no = row[0]
        seen.add(card_no)


def _cancel_in(tx, card_no, credit_no, amount_cents, source):
    """Cancel one credit inside a write: its value back to its source."""
    tx_id = tx.post(None, ledger.TX_CREDIT_CANCEL, ledger.credit_cancel(source, amount_cents))
    tx.sql_rowcount("UPDATE pending_credits SET state=?, cancel_tx=? WHERE card_no=? AND credit_no=?",
                    (CANCELLED, tx_id, card_no, credit_no))
    _bump(tx)


def move_open(tx, old_card_no, states, actor):
    """Move a replaced card's credits in `states` that no card holds onto the card in use (SPEC.md §4.13): each
    cancelled, and granted again to that card from the same source with the same bonus part, the cancelled one
    naming the credit it moved to; return the new [PendingCredit]."""
    new_card_no = card_in_use(tx, old_card_no)
    rows = tx.sql_rows("SELECT credit_no, amount_cents, source, reason, state, bonus_cents FROM pending_credits "
                       "WHERE card_no=? ORDER BY credit_no", (old_card_no,))
    moved = []
    for credit_no, amount, source, reason, state, bonus in rows:
        if state in states and new_card_no != old_card_no:
            _cancel_in(tx, old_card_no, credit_no, amount, source)
            credit = grant(tx, new_card_no, amount, "%s (credit %d of lost card %d)" % (
                reason, credit_no, old_card_no), source, actor, moved_bonus_cents=bonus)
            tx.sql_rowcount("UPDATE pending_credits SET moved_to_card_no=?, moved_to_credit_no=? WHERE card_no=? "
                            "AND credit_no=?", (new_card_no, credit.credit_no, old_card_no, credit_no))
            moved.append(credit)
    return moved


def _granted_as(tx, grant_id, card_no, amount_cents, source):
    """Inside a write: the GrantedBefore of grant_id, or None when it is new; GrantIdReused for other content."""
    row = tx.sql_row(_SELECT + "WHERE grant_id=?", (grant_id,))
    if row is None:
        return None
    before = GrantedBefore(*row)
    if (before.card_no, before.amount_cents, before.source) != (card_no, amount_cents, source):
        raise GrantIdReused("grant %(grant)s was credit %(credit)d of %(cents)s to card %(card)d",
                            grant=grant_id, credit=before.credit_no, cents=Cents(before.amount_cents),
                            card=before.card_no)
    return before


def grant(tx, card_no, amount_cents, reason, source, actor, grant_id=None, moved_bonus_cents=None):
    """Grant a credit to an issued card inside a write; return its PendingCredit. NotIssued if unknown.

    grant_id: the caller's id of this grant; sent again, it answers the first grant's GrantedBefore.
    A grant from a replaced card's hold closes that card's bonus purse in its own transaction and carries of it
    what the amount holds as its bonus part (SPEC.md §4.13, §8.1: cash is spent first, so what is left of a hold
    is bonus first); moved_bonus_cents: the bonus part of a credit moved to the card in use, which it keeps."""
    if grant_id is not None:
        before = _granted_as(tx, grant_id, card_no, amount_cents, source)
        if before is not None:
            return before
    if not tx.card_exists(card_no):
        raise NotIssued("card %(card)d was never issued here", card=card_no)
    credit_no = tx.sql_row("SELECT COUNT(*) FROM pending_credits WHERE card_no=?", (card_no,))[0] + 1
    if credit_no > 0xFFFF:
        raise Refused("card %(card)d has had 65,535 credits, the most a card counts", card=card_no)
    entries = ledger.credit_grant(source, amount_cents)
    bonus_cents = moved_bonus_cents or 0
    lost_card_no = int(source[len(accounts.HOLD_PREFIX):]) if source.startswith(accounts.HOLD_PREFIX) else None
    if moved_bonus_cents is None and lost_card_no is not None and tx.sql_row(
            "SELECT 1 FROM replacements WHERE old_card_no=?", (lost_card_no,)) is not None:
        purse = max(0, tx.account_cents(accounts.bonus_account(lost_card_no)))
        bonus_cents = min(purse, amount_cents)
        entries += ledger.purse_closed(lost_card_no, purse)
    tx_id = tx.post(None, ledger.TX_CREDIT_GRANT, entries)
    tx.sql_rowcount(
        "INSERT INTO pending_credits(card_no, credit_no, amount_cents, reason, source, granted_by, "
        "granted_at, state, grant_tx, grant_id, bonus_cents) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (card_no, credit_no, amount_cents, reason, source, actor, tx.now, GRANTED, tx_id, grant_id, bonus_cents))
    _bump(tx)
    return PendingCredit(card_no, credit_no, amount_cents, reason, source, actor, tx.now, GRANTED, None, None,
                         bonus_cents)


class CreditMethods:
    """The pending-credit methods of interface.Store (a mixin)."""

    async def add_pending_credit(self, card_no, amount_cents, reason, source, actor, audit=None,
                                 desk_terminal_id=None, grant_id=None, shift_owner=None):
        """Grant a credit to an issued card, funded from source; return its PendingCredit. NotIssued if unknown.

        desk_terminal_id: the desk it is paid at in cash; the grant joins that desk's open shift in the same
        transaction (parkcard.store.shifts.NoOpenShift when there is none, ShiftOfAnother when shift_owner did not
        open it). grant_id: the caller's id of the grant; the same id again returns the first grant's
        GrantedBefore (GrantIdReused for other content)."""
        def run(tx):
            credit = grant(tx, card_no, amount_cents, reason, source, actor, grant_id)
            if desk_terminal_id is not None and not isinstance(credit, GrantedBefore):
                link_to_shift(tx, credit_op_id(card_no, credit.credit_no), desk_terminal_id, CASH_METHOD, shift_owner)
            return credit
        return await self.write(run, audit)

    async def cancel_pending_credit(self, card_no, credit_no, audit=None):
        """Cancel a credit no terminal has been sent yet: its value goes back to its source. NotCancellable else,
        and for a credit from a replaced card's hold: that is the holder's balance (SPEC.md §4.13), which a cancel
        would leave in a hold already released."""
        def run(tx):
            row = tx.sql_row("SELECT amount_cents, source, state FROM pending_credits WHERE card_no=? AND credit_no=?",
                             (card_no, credit_no))
            if row is None:
                raise NotCancellable("card %(card)d has no credit %(credit)d", card=card_no, credit=credit_no)
            if row[1].startswith(accounts.HOLD_PREFIX):
                raise NotCancellable("credit %(credit)d of card %(card)d is the balance of lost card %(lost_card)s, "
                                     "the holder's", credit=credit_no, card=card_no,
                                     lost_card=row[1][len(accounts.HOLD_PREFIX):])
            if row[2] != GRANTED:
                raise NotCancellable("credit %(credit)d of card %(card)d is %(state)s", credit=credit_no, card=card_no,
                                     state=Word(row[2]))
            _cancel_in(tx, card_no, credit_no, row[0], row[1])
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
