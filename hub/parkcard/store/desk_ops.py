"""The store's front-desk operations (table desk_operations): SQL both backends run as written (a mixin).

A backend's store mixes DeskOpMethods in beside SharedMethods (parkcard.store.reads) and offers the
same `_one`, `_all` and `write`; `posted_in(tx, ...)` marks an operation posted inside the write
transaction that applies its record, so the two exist together or not at all.
"""

import time

from parkcard.domain.lifecycle import CardStatus, DeskOpState
from parkcard.store.errors import Refused
from parkcard.store.rows import DeskOperation, DeskRequest, DeskSettings, TierRow
from parkcard.store.shifts import link_to_shift

CARD_NO_FIRST = 100001          # the first visitor card number (as the write transactions' next_card_no)
_SELECT = "SELECT %s FROM desk_operations " % ", ".join(DeskOperation._fields)
_COLUMNS = DeskOperation._fields
_REQUEST_SELECT = "SELECT %s FROM desk_requests " % ", ".join(DeskRequest._fields)
_SETTINGS_SELECT = "SELECT %s FROM parks WHERE id=?" % ", ".join(DeskSettings._fields)
_TIER_SELECT = "SELECT %s FROM tiers " % ", ".join(TierRow._fields)


def posted_in(tx, op_id, record_seq):
    """Mark a pending operation posted with its record's seq, inside the transaction that applies the record."""
    if tx.sql_rowcount("UPDATE desk_operations SET state=?, record_seq=?, settled_at=?, error=NULL "
                       "WHERE op_id=? AND state=?", (DeskOpState.POSTED, record_seq, tx.now, op_id,
                                                    DeskOpState.PENDING)) != 1:
        raise Refused("desk operation %(op_id)s is not pending: it was settled meanwhile", op_id=op_id)


def card_status_in(tx, card_no, status):
    """Set a card's status inside the transaction that applies the record which changed it (a return)."""
    tx.sql_rowcount("UPDATE cards SET status=? WHERE card_no=?", (str(status), card_no))


def _one_replacement(tx, op):
    """ValueError when another operation, pending or posted, replaces the lost card op replaces (inside the write
    that keeps op: of two cashiers replacing one card at once, the second is refused before its card is written)."""
    other = tx.sql_row("SELECT op_id, state, desk_terminal_id, actor FROM desk_operations WHERE replaces_card_no=? "
                       "AND state<>? AND op_id<>?", (op.replaces_card_no, DeskOpState.FAILED, op.op_id))
    if other is None:
        return
    if other[1] == DeskOpState.POSTED:
        raise Refused("card %(card)d was replaced already by operation %(op_id)s: nothing was written",
                      card=op.replaces_card_no, op_id=other[0])
    raise Refused("card %(card)d is being replaced by operation %(op_id)s (%(kind)s at desk %(desk)d), still pending: "
                  "nothing was written here; that operation is retried with its operation id and its card on desk "
                  "%(desk)d", card=op.replaces_card_no, op_id=other[0], kind=other[3], desk=other[2])


def desk_settings_in(tx, park_id=1):
    """The park's rows.DeskSettings, inside a write (a replacement reads its release delay where it is booked)."""
    return tx.sql_row_as(DeskSettings, _SETTINGS_SELECT, (park_id,)) or DeskSettings()


class DeskOpMethods:
    """interface.Store's desk operation methods, one SQL for every backend."""

    async def desk_settings(self, park_id=1):
        """Return the park's rows.DeskSettings (every setting 0 until it is set)."""
        return await self._one_as(DeskSettings, _SETTINGS_SELECT, (park_id,)) or DeskSettings()

    async def set_desk_settings(self, park_id=1, audit=None, **settings):
        """Set some of the park's desk settings (DeskSettings field names), creating the park; return the new."""
        unknown = set(settings) - set(DeskSettings._fields)
        if unknown:
            raise Refused("no desk setting is called %(names)s", names=", ".join(sorted(unknown)))

        def run(tx):
            if tx.sql_row("SELECT id FROM parks WHERE id=?", (park_id,)) is None:
                tx.sql_rowcount("INSERT INTO parks(id, name) VALUES (?, ?)", (park_id, "park %d" % park_id))
            names = sorted(settings)    # DeskSettings' fields: fixed column names, never input
            tx.sql_rowcount("UPDATE parks SET %s WHERE id=?" % ", ".join("%s=?" % n for n in names),
                            tuple(settings[n] for n in names) + (park_id,))
            return DeskSettings(*tx.sql_row(_SETTINGS_SELECT, (park_id,)))
        return await self.write(run, audit)

    async def set_park_offline_rules(self, offline_window_s, daily_cap_cents, hold_release_s, park_id=1, audit=None):
        """Set the park's offline rules and hold release delay, moving their version; return the new DeskSettings
        (the version stays when nothing changed)."""
        def run(tx):
            now = desk_settings_in(tx, park_id)
            if (now.offline_window_s, now.offline_daily_cap_cents, now.hold_release_s) == (
                    offline_window_s, daily_cap_cents, hold_release_s):
                return now
            if tx.sql_row("SELECT id FROM parks WHERE id=?", (park_id,)) is None:
                tx.sql_rowcount("INSERT INTO parks(id, name) VALUES (?, ?)", (park_id, "park %d" % park_id))
            tx.sql_rowcount("UPDATE parks SET offline_window_s=?, offline_daily_cap_cents=?, hold_release_s=?, "
                            "offline_rules_version=offline_rules_version + 1 WHERE id=?",
                            (offline_window_s, daily_cap_cents, hold_release_s, park_id))
            return desk_settings_in(tx, park_id)
        return await self.write(run, audit)

    async def card_stocked(self, card_no, audit=None):
        """Retire a returned card's number once its card is stock again (its records and ledger stay)."""
        def run(tx):
            tx.sql_rowcount("UPDATE cards SET status=? WHERE card_no=? AND status=?",
                            (CardStatus.WIPED, card_no, CardStatus.RETURNED))
        await self.write(run, audit)

    async def tiers(self):
        """Return the park's [rows.TierRow] by code."""
        return [TierRow(*r) for r in await self._all(_TIER_SELECT + "ORDER BY code")]

    async def put_tier(self, tier, new, audit=None):
        """Add (new=True) or change (new=False) a tier (rows.TierRow); ValueError when the code is taken, or
        unknown, or the name is another tier's."""
        def run(tx):
            stored = tx.sql_row(_TIER_SELECT + "WHERE code=?", (tier.code,))
            if new and stored is not None:
                raise Refused("tier %(code)d exists (%(name)s): change it with `parkcard tier set`", code=tier.code,
                              name=stored[1])
            if not new and stored is None:
                raise Refused("no tier has code %(code)d: add it with `parkcard tier add`", code=tier.code)
            other = tx.sql_row("SELECT code FROM tiers WHERE LOWER(name)=LOWER(?) AND code<>?", (tier.name, tier.code))
            if other is not None:
                raise Refused("tier %(code)d is already called %(name)r: give each tier its own name", code=other[0],
                              name=tier.name)
            tx.sql_rowcount("DELETE FROM tiers WHERE code=?", (tier.code,))
            tx.sql_rowcount("INSERT INTO tiers(code, name, bonus_bps, steps) VALUES (?,?,?,?)", tuple(tier))
            return tier
        return await self.write(run, audit)

    async def desk_operation(self, op_id):
        """Return the rows.DeskOperation kept under op_id, or None."""
        return await self._one_as(DeskOperation, _SELECT + "WHERE op_id=?", (op_id,))

    async def desk_operations(self, state=None):
        """Return [rows.DeskOperation] (only those in `state` when given), oldest first."""
        where, params = ("WHERE state=? ", (str(state),)) if state is not None else ("", ())
        return [DeskOperation(*r) for r in await self._all(_SELECT + where + "ORDER BY created_at, op_id", params)]

    async def keep_desk_operation(self, op, audit=None, method=None, shift_owner=None):
        """Keep op (a rows.DeskOperation) as pending; return the operation as stored.

        An op_id already kept returns the stored one unchanged, unless it failed: a failed operation is
        tried again as op says. card_no None takes a new card number (an issue). ValueError when the
        card has another pending operation. method (the payment method) ties the operation to its desk's
        open shift in the same transaction (store.shifts.NoOpenShift when there is none; ShiftOfAnother when
        shift_owner did not open it).
        """
        def run(tx):
            stored = tx.sql_row(_SELECT + "WHERE op_id=?", (op.op_id,))
            if stored is not None and stored[_COLUMNS.index("state")] != DeskOpState.FAILED:
                return DeskOperation(*stored)
            if op.replaces_card_no is not None:
                _one_replacement(tx, op)
            card_no = op.card_no
            if card_no is None:     # an issue: a failed one tried again keeps its number
                card_no = stored[_COLUMNS.index("card_no")] if stored is not None else _next_card_no(tx)
            pending = tx.sql_row("SELECT op_id FROM desk_operations WHERE card_no=? AND state=?",
                                 (card_no, DeskOpState.PENDING))
            if pending is not None:
                raise Refused("card %(card)d has operation %(op_id)s pending: finish it first (retry it with its "
                              "operation id and the card on the desk)", card=card_no, op_id=pending[0])
            kept = op._replace(card_no=card_no, state=DeskOpState.PENDING, created_at=time.time(),
                               settled_at=None, error=None, record_seq=None)
            if stored is not None:
                tx.sql_rowcount("DELETE FROM desk_operations WHERE op_id=?", (op.op_id,))
            tx.sql_rowcount("INSERT INTO desk_operations(%s) VALUES (%s)" % (", ".join(_COLUMNS),
                                                                            ", ".join("?" * len(_COLUMNS))),
                            tuple(kept))
            if method is not None:
                link_to_shift(tx, op.op_id, op.desk_terminal_id, method, shift_owner)
            return kept
        return await self.write(run, audit)

    async def queue_desk_request(self, op_id, kind, desk_terminal_id, params, actor, roles, audit=None):
        """Queue a desk operation for the running hub; return the DeskRequest as stored (an op_id queued before
        is returned as it is: the caller compares what it asked)."""
        def run(tx):
            stored = tx.sql_row(_REQUEST_SELECT + "WHERE op_id=?", (op_id,))
            if stored is not None and stored[6] == "refused" and tuple(stored[1:4]) == (kind, desk_terminal_id, params):
                tx.sql_rowcount("DELETE FROM desk_requests WHERE op_id=?", (op_id,))     # a retry: queued again
                stored = None
            if stored is None:
                tx.sql_rowcount("INSERT INTO desk_requests(op_id, kind, desk_terminal_id, params, actor, roles, state, "
                                "created_at) VALUES (?,?,?,?,?,?,?,?)",
                                (op_id, kind, desk_terminal_id, params, actor, roles, "queued", tx.now))
                stored = tx.sql_row(_REQUEST_SELECT + "WHERE op_id=?", (op_id,))
            return DeskRequest(*stored)
        return await self.write(run, audit)

    async def start_desk_requests(self):
        """Claim the queued desk requests: [DeskRequest], marked started."""
        def run(tx):
            rows = []
            while True:
                row = tx.sql_row(_REQUEST_SELECT + "WHERE state='queued' ORDER BY created_at, op_id LIMIT 1")
                if row is None:
                    return rows
                tx.sql_rowcount("UPDATE desk_requests SET state='started', started_at=? WHERE op_id=?",
                                (tx.now, row[0]))
                rows.append(DeskRequest(*row))
        return await self.write(run)

    async def requeue_started_desk_requests(self):
        """Queue again the desk requests marked started (by a hub that stopped before it finished them); count."""
        def run(tx):
            return tx.sql_rowcount("UPDATE desk_requests SET state='queued', started_at=NULL WHERE state='started'")
        return await self.write(run)

    async def finish_desk_request(self, op_id, state, result):
        """Record how a desk request ended: state done or refused, with what the cashier reads."""
        def run(tx):
            tx.sql_rowcount("UPDATE desk_requests SET state=?, result=?, finished_at=? WHERE op_id=?",
                            (state, result, tx.now, op_id))
        await self.write(run)

    async def desk_request(self, op_id):
        """Return the DeskRequest under op_id, or None."""
        return await self._one_as(DeskRequest, _REQUEST_SELECT + "WHERE op_id=?", (op_id,))

    async def counter_claim(self, card_no, counter):
        """(terminal_id, seq) of the applied record that holds the card's counter, or None."""
        return await self._one("SELECT terminal_id, seq FROM card_counters WHERE card_no=? AND counter=?",
                               (card_no, counter))

    async def keep_desk_blocks(self, op_id, blocks):
        """Keep the write of a pending operation that had none yet (an issue, once its number is taken)."""
        def run(tx):
            tx.sql_rowcount("UPDATE desk_operations SET blocks=? WHERE op_id=? AND state=? AND blocks IS NULL",
                            (blocks, op_id, DeskOpState.PENDING))
            return DeskOperation(*tx.sql_row(_SELECT + "WHERE op_id=?", (op_id,)))
        return await self.write(run)

    async def fail_desk_operation(self, op_id, error, audit=None):
        """Mark a pending operation failed (its card does not hold the write); False if it was not pending."""
        def run(tx):
            return tx.sql_rowcount("UPDATE desk_operations SET state=?, error=?, settled_at=? WHERE op_id=? AND "
                                   "state=?", (DeskOpState.FAILED, error, tx.now, op_id, DeskOpState.PENDING)) == 1
        return await self.write(run, audit)


def _next_card_no(tx):
    """A card number no card and no desk operation holds."""
    taken = [tx.sql_row("SELECT MAX(card_no) FROM cards")[0], tx.sql_row(
        "SELECT MAX(card_no) FROM desk_operations WHERE kind IN ('issue', 'staff_card', 'replace')")[0]]
    return max([CARD_NO_FIRST] + [no + 1 for no in taken if no is not None])
