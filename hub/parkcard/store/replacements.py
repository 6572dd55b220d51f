"""Replacements of lost cards in the store (补卡, SPEC.md §4.13): SQL every backend runs as written (a mixin).

A backend's store mixes ReplacementMethods in beside SharedMethods (parkcard.store.reads) and offers the same
`_one`, `_all` and `write`. What the desk and ingest do inside their own write transaction (a replacement
posted with the new card's record, a late debit settled with its record) is the module's functions on tx.
"""

from protocol import record as R
from protocol.config import ROLE_DESK

from parkcard.domain import accounts, ingest_rules, ledger, purses
from parkcard.domain import replacement as rules
from parkcard.store import credits as credit_store
from parkcard.store.errors import Refused
from parkcard.store.members import LOST, REPLACED
from parkcard.store.rows import Replacement

_REPLACEMENT_SELECT = "SELECT %s FROM replacements " % ", ".join(Replacement._fields)
# Who grants the new card the lost card's pending credits moved at the replacement.
REPLACEMENT_ACTOR = "hub:replacement"

# The ledger check's reads (AuditRows.replacements, replacement_covers): no placeholders, both backends.
AUDIT_REPLACEMENTS = ("SELECT old_card_no, new_card_no, balance_cents, moved_cents, hold_cents, covered_cents, "
                      "loss_cents, released_cents, move_tx FROM replacements ORDER BY old_card_no")
AUDIT_COVERS = ("SELECT old_card_no, terminal_id, seq, amount_cents, covered_cents, loss_cents, cover_tx, bonus_cents "
                "FROM replacement_covers ORDER BY old_card_no, cover_tx")


def _replacement(tx, old_card_no):
    return tx.sql_row_as(Replacement, _REPLACEMENT_SELECT + "WHERE old_card_no=?", (old_card_no,))


def _domain(row):
    """The replacement as parkcard.domain.replacement keeps it."""
    return rules.Replacement(row.old_card_no, row.new_card_no, row.reported_s, row.balance_cents, row.hold_cents,
                             row.release_at_s, row.covered_cents, row.loss_cents, row.released_cents,
                             bool(row.released))


def replaced_in(tx, op_id, old_card_no, new_card_no, moved_cents, release_after_s, actor=REPLACEMENT_ACTOR):
    """Book a replacement inside the write that applies the new card's transfer-in record; return the Replacement.

    The old card's ledger balance now, minus what the new card holds, is its hold (SPEC.md §4.13). Its pending
    credits no terminal was sent yet (every one not delivered, when there is no hold) move to the new card
    (granted by actor).
    """
    loss = tx.sql_row("SELECT state, reported_at FROM card_losses WHERE card_no=?", (old_card_no,))
    if loss is None or loss[0] != LOST:
        raise Refused("card %(card)d is not reported lost: nothing was replaced", card=old_card_no)
    balance = tx.sql_row("SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM ledger_entries WHERE account=?",
                         (accounts.card_account(old_card_no),))[0]
    balance = max(0, balance)
    bonus = ledger.bonus_moved(tx.account_cents(accounts.bonus_account(old_card_no)), moved_cents)
    entries = ledger.replacement_out(old_card_no, balance, moved_cents) + ledger.replacement_bonus(
        old_card_no, new_card_no, bonus)
    move_tx = tx.post(None, ledger.TX_REPLACEMENT_OUT, entries)
    hold = max(0, balance - moved_cents)
    reported_s = int(loss[1])
    row = Replacement(old_card_no, new_card_no, op_id, reported_s, balance, moved_cents, hold,
                      max(0, moved_cents - balance), reported_s + release_after_s, 0, 0, 0, int(hold == 0),
                      tx.now if hold == 0 else None, None, move_tx, tx.now)
    tx.sql_rowcount("INSERT INTO replacements(%s) VALUES (%s)" % (", ".join(Replacement._fields),
                                                                 ", ".join("?" * len(Replacement._fields))), row)
    tx.sql_rowcount("UPDATE card_losses SET state=? WHERE card_no=?", (REPLACED, old_card_no))
    # With no hold every terminal had caught up at the report: none can deliver the lost card's credits any more.
    credit_store.move_open(tx, old_card_no, credit_store.OPEN if hold == 0 else (credit_store.GRANTED,), actor)
    tx.sql_rowcount("UPDATE cards SET member_no=(SELECT member_no FROM cards WHERE card_no=?) WHERE card_no=?",
                    (old_card_no, new_card_no))
    return row


def _given_back(tx, old_card_no, terminal_id, seq):
    """(amount, the bonus its sale spent on the card and from the hold, what its own record restored) of a late
    give-back of a late debit of the replaced card (SPEC.md §4.13); (0, 0, 0) for any other late record."""
    found = tx.record(terminal_id, seq)
    rec = R.Record.decode(bytes(found.raw))
    if rec.kind not in ledger.GIVE_BACK_KINDS:
        return 0, 0, 0
    sale_seq = ingest_rules.given_back_seq(rec)
    cover = tx.sql_row("SELECT bonus_cents FROM replacement_covers WHERE old_card_no=? AND terminal_id=? AND seq=?",
                       (old_card_no, terminal_id, sale_seq))
    if cover is None:
        return 0, 0, 0      # no late debit of this card: what its own record restored is all (SPEC.md §4.12)
    on_card = -tx.record_entry_cents(tx.record(terminal_id, sale_seq).id, accounts.bonus_account(old_card_no))
    return rec.amount_cents, on_card + cover[0], ledger.bonus_given_back(rec, on_card)


def settle_late_in(tx, old_card_no, terminal_id, seq, delta_cents, actor):
    """Settle a late record of a replaced card (its card delta, SPEC.md §4.13) inside the write that applies it: a
    debit against the hold, a credit into it (onto the new card as a pending credit at once when the hold was
    released already, granted by actor). The lost card's bonus purse is the hold's, spent cash first
    (purses.held_bonus): the settlement books what the record's bonus took from it or brought back.

    Returns (the domain LateSettlement: alarm when part of a debit is the park's loss; the PendingCredit granted
    now or None), or None when the card has no replacement (it was only being replaced when the record's batch
    began, and the replacement did not commit).
    """
    row = _replacement(tx, old_card_no)
    if row is None:
        return None
    if delta_cents < 0:
        updated, settled = rules.settle_late_debit(_domain(row), -delta_cents)
        now = 0
    else:
        updated, settled, now = rules.settle_late_credit(_domain(row), delta_cents)
    bonus = max(0, tx.account_cents(accounts.bonus_account(old_card_no)))
    given_back = _given_back(tx, old_card_no, terminal_id, seq) if delta_cents > 0 else ()
    # What the hold holds now, before a credit granted at once from it takes its part (and the purse) out.
    spent = bonus - purses.held_bonus(bonus, updated.hold_left_cents + now, *given_back)
    cover_tx = tx.post(None, ledger.TX_LATE_DEBIT_COVER,
                       ledger.late_settlement(old_card_no, settled.covered_cents, settled.loss_cents)
                       + ledger.purse_changed(old_card_no, -spent))
    tx.sql_rowcount("UPDATE replacements SET covered_cents=?, loss_cents=?, released_cents=? WHERE old_card_no=?",
                    (updated.covered_cents, updated.loss_cents, updated.released_cents, old_card_no))
    tx.sql_rowcount("INSERT INTO replacement_covers(old_card_no, terminal_id, seq, amount_cents, covered_cents, "
                    "loss_cents, cover_tx, at, bonus_cents) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (old_card_no, terminal_id, seq, -delta_cents, settled.covered_cents, settled.loss_cents,
                     cover_tx, tx.now, spent))
    credit = None
    if now:
        reason = "late credit of lost card %d (term-%d seq %d)" % (old_card_no, terminal_id, seq)
        credit = credit_store.grant(tx, credit_store.card_in_use(tx, row.new_card_no), now, reason,
                                    accounts.hold_account(old_card_no), actor)
    return settled, credit


class ReplacementMethods:
    """interface.Store's replacement methods, one SQL for every backend."""

    async def replacement(self, old_card_no=None, new_card_no=None):
        """The Replacement of a lost card (or the one that made new_card_no), or None."""
        if new_card_no is not None:
            return await self._one_as(Replacement, _REPLACEMENT_SELECT + "WHERE new_card_no=?", (new_card_no,))
        return await self._one_as(Replacement, _REPLACEMENT_SELECT + "WHERE old_card_no=?", (old_card_no,))

    async def replacements(self, open_only=False):
        """[Replacement] by old card; open_only: those whose hold is not released yet."""
        where = "WHERE released=0 " if open_only else ""
        return [Replacement(*r) for r in await self._all(_REPLACEMENT_SELECT + where + "ORDER BY old_card_no")]

    async def replaced_cards(self):
        """The old card numbers of every replacement: ingest settles their late records against the hold."""
        return [r[0] for r in await self._all("SELECT old_card_no FROM replacements")]

    async def lagging_terminals(self, blacklist_version, since_s):
        """[(terminal_id, last_seen, online)] of terminals (not desks) that may still hold unsent records of a card
        lost under blacklist_version at since_s: seen at some time, and not yet seen after since_s holding that
        version with every record they had journalled stored at the hub."""
        rows = await self._all(
            "SELECT id, last_seen, online FROM terminals WHERE role<>? AND last_seen IS NOT NULL AND NOT ("
            "COALESCE(status_at, 0) >= ? AND COALESCE(status_blacklist_version, 0) >= ? "
            "AND acked_upto >= COALESCE(last_seq, 0)) ORDER BY id", (ROLE_DESK, since_s, blacklist_version))
        return [(r[0], r[1], bool(r[2])) for r in rows]

    async def release_hold(self, old_card_no, now_s, lagging, actor, audit=None):
        """Release what is left of a replaced card's hold as a pending credit of its new card, once.

        Returns (Replacement after, PendingCredit or None when nothing was left); None when not due or released.
        """
        def run(tx):
            row = _replacement(tx, old_card_no)
            if row is None or not rules.release_due(_domain(row), now_s, lagging):
                return None
            updated, left = rules.release(_domain(row), now_s, lagging)
            credit = None
            if left:
                credit = credit_store.grant(tx, credit_store.card_in_use(tx, row.new_card_no), left,
                                            "hold of lost card %d released" % old_card_no,
                                            accounts.hold_account(old_card_no), actor)
            # No terminal can deliver the lost card's credits any more (the release's own condition): they move.
            credit_store.move_open(tx, old_card_no, credit_store.OPEN, actor)
            tx.sql_rowcount("UPDATE replacements SET released=1, released_cents=?, released_at=?, "
                            "release_credit_no=? WHERE old_card_no=? AND released=0",
                            (updated.released_cents, tx.now, credit.credit_no if credit else None, old_card_no))
            return row._replace(released=1, released_cents=updated.released_cents), credit
        return await self.write(run, audit)
