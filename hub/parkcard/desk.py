"""Front-desk operations at ledger level: issue a card, top it up.

The desk works as a desk terminal (ROLE_DESK) registered at the hub: each
operation is a record MACed with that terminal's key and applied through the
same ingest path as an upload, so the ledger balances from the first cent.
It returns what the caller writes onto the card (protocol.card blocks).

Cash and bonus (ledger.py): amount_cents = cash + bonus, discount_cents =
bonus, bonus from ledger.TIER_BONUS_PERCENT. The desk writes record version 2
(SPEC.md §4.1): an ISSUE carries the deposit in `deposit_cents`.

Each record is built inside the write transaction that posts it (its seq,
and for an ISSUE its card number, are allocated there): two desks never
take the same number, and a new card's row exists exactly when its ISSUE is
posted (SPEC.md §4.5).
"""

import asyncio
import time

from protocol import card as C
from protocol import frames
from protocol import hub_credits
from protocol import record as R

from parkcard.domain import ledger
from parkcard.domain.lifecycle import RecordStatus


class DeskError(ValueError):
    """A desk operation that cannot be done (message says what to do)."""


class DeskResult:
    """What the desk did: the record, the card number, the slot (and blocks) to write on the card."""

    def __init__(self, record, card_no, slot, blocks=None, info=None):
        self.record = record
        self.card_no = card_no
        self.slot = slot
        self.blocks = blocks or {}
        self.info = info
        self.balance_cents = slot.balance_cents


class Desk:
    """Desk terminal `terminal_id` operated by the hub."""

    def __init__(self, storage, registry, ingest, terminal_id, park_keys=None, bonus_table=None, audit=None):
        self.storage = storage
        self.registry = registry
        self.ingest = ingest
        self.terminal_id = terminal_id
        self.park_keys = park_keys
        self.bonus_table = bonus_table or ledger.TIER_BONUS_PERCENT
        self._lock = asyncio.Lock()
        self.audit = audit          # async (actor, action, **details): the hub's operator audit log

    def _state(self):
        state = self.registry.get(self.terminal_id)
        if state is None or state.role != frames.ROLE_DESK:
            raise DeskError("terminal %d is not a registered desk terminal: register it with role desk"
                            % self.terminal_id)
        return state

    async def _post(self, build, applied=None):
        """Build, MAC and apply one record in one write transaction; return what build made."""
        state = self._state()

        def built(tx, seq):
            made = build(tx, seq)
            return R.STATUS_COMMITTED, made[0].encode(state.record_mac), made
        result, made = await self.ingest.apply_built(self.terminal_id, built, applied)
        if result.counts[RecordStatus.APPLIED] != 1:
            raise DeskError("the hub refused the %s record: %s" % (made[0].kind, result.quarantined))
        return made

    async def _audited(self, action, **details):
        if self.audit is not None:
            await self.audit("desk:%d" % self.terminal_id, action, **details)

    async def issue(self, uid, cash_cents, tier=C.TIER_STANDARD, deposit_cents=0, card_no=None, expiry_day=0,
                    perms=0xFFFF, time_s=None):
        """Issue a new card with a first load paid in cash; return a DeskResult with the card's blocks."""
        if cash_cents < 0 or deposit_cents < 0:
            raise DeskError("amounts are positive cents")
        time_s = int(time.time()) if time_s is None else time_s
        amount = cash_cents + ledger.bonus_cents(tier, cash_cents, self.bonus_table)
        wanted = card_no

        def build(tx, seq):
            # In the writer thread: the number is taken and its card row written by this transaction only.
            no = wanted or tx.next_card_no()
            if tx.card_exists(no):
                raise DeskError("card %d already exists" % no)
            info = C.CardInfo(no, tier, 0, expiry_day, perms, C.day_of(time_s), deposit_cents)
            blocks = {}
            card_mac = bytes(4)
            if self.park_keys is not None:
                keys = C.CardKeys(self.park_keys, uid)
                blocks = C.issue_blocks(keys, info, amount, time_s, self.terminal_id)
                blocks.update(hub_credits.credit_blocks(keys))     # sector 2: where pending credits land
                card_mac = blocks[C.SLOT_BLOCKS[0]][12:]
            rec = R.Record(R.KIND_ISSUE, self.terminal_id, seq, time_s, no, uid, 1, amount, amount,
                           discount_cents=amount - cash_cents, card_mac=card_mac, deposit_cents=deposit_cents,
                           version=R.RECORD_V2)
            return rec, info, blocks

        def applied(tx, made):
            tx.set_card_info(made[0].card_no, uid, tier, deposit_cents)

        async with self._lock:
            rec, info, blocks = await self._post(build, applied)
            slot = C.WalletSlot(1, amount, 0, C.day_of(time_s), self.terminal_id)
            await self._audited("card.issue", card_no=rec.card_no, tier=tier, cash_cents=cash_cents,
                                amount_cents=amount, deposit_cents=deposit_cents, seq=rec.seq)
            return DeskResult(rec, rec.card_no, slot, blocks, info)

    async def top_up(self, card_no, uid, slot, cash_cents, write_block=None, time_s=None):
        """Top up a card whose slot in force is `slot`; return a DeskResult with the successor slot.

        With park keys and write_block (from protocol.card.read_slots) the block to write is in .blocks.
        """
        if cash_cents <= 0:
            raise DeskError("a top-up is a positive amount of cents")
        time_s = int(time.time()) if time_s is None else time_s
        async with self._lock:
            card = await self.storage.card(card_no)
            if card is None:
                raise DeskError("card %d is unknown at the hub: issue it first" % card_no)
            amount = cash_cents + ledger.bonus_cents(card.tier, cash_cents, self.bonus_table)
            new = slot.next(slot.balance_cents + amount, slot.spend_day, slot.day_spend_cents, self.terminal_id)
            if new.balance_cents > C.BALANCE_MAX_CENTS:
                raise DeskError("the balance would exceed %d cents" % C.BALANCE_MAX_CENTS)
            blocks = {}
            card_mac = bytes(4)
            if self.park_keys is not None and write_block is not None:
                blocks[write_block] = new.encode(C.CardKeys(self.park_keys, uid), write_block)
                card_mac = new.mac

            def build(tx, seq):
                return (R.Record(R.KIND_TOPUP, self.terminal_id, seq, time_s, card_no, uid, new.counter, amount,
                                 new.balance_cents, discount_cents=amount - cash_cents, card_mac=card_mac,
                                 version=R.RECORD_V2),)
            rec = (await self._post(build))[0]
            await self._audited("card.top_up", card_no=card_no, cash_cents=cash_cents, amount_cents=amount,
                                balance_after_cents=new.balance_cents, seq=rec.seq)
            return DeskResult(rec, card_no, new, blocks)
