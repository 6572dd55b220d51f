"""Front-desk operations at ledger level: issue a card, top it up.

The desk works as a desk terminal (ROLE_DESK) registered at the hub: each
operation is a record MACed with that terminal's key and applied through the
same ingest path as an upload, so the ledger balances from the first cent.
It returns what the caller writes onto the card (protocol.card blocks).

Cash and bonus (ledger.py): amount_cents = cash + bonus, discount_cents =
bonus, bonus from ledger.TIER_BONUS_PERCENT; ISSUE carries the deposit in `item`.
"""

import asyncio
import time

from protocol import card as C
from protocol import frames
from protocol import record as R

from parkcard import ledger


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

    async def _post(self, state, rec):
        rec.seq = max([state.acked_upto, *state.above]) + 1
        raw = rec.encode(state.record_mac)
        result = await self.ingest.apply_local(self.terminal_id, [(R.STATUS_COMMITTED, raw)])
        if result.counts["applied"] != 1:
            raise DeskError("the hub refused the %s record: %s" % (rec.kind, result.quarantined))
        return rec

    async def _audited(self, action, **details):
        if self.audit is not None:
            await self.audit("desk:%d" % self.terminal_id, action, **details)

    async def issue(self, uid, cash_cents, tier=C.TIER_STANDARD, deposit_cents=0, card_no=None, expiry_day=0,
                    perms=0xFFFF, time_s=None):
        """Issue a new card with a first load paid in cash; return a DeskResult with the card's blocks."""
        if cash_cents < 0 or deposit_cents < 0:
            raise DeskError("amounts are positive cents")
        time_s = int(time.time()) if time_s is None else time_s
        async with self._lock:
            state = self._state()
            card_no = card_no or await self.storage.next_card_no()
            if await self.storage.card(card_no) is not None:
                raise DeskError("card %d already exists" % card_no)
            info = C.CardInfo(card_no, tier, 0, expiry_day, perms, C.day_of(time_s), deposit_cents)
            amount = cash_cents + ledger.bonus_cents(tier, cash_cents, self.bonus_table)
            slot = C.WalletSlot(1, amount, 0, C.day_of(time_s), self.terminal_id)
            blocks = {}
            card_mac = bytes(4)
            if self.park_keys is not None:
                keys = C.CardKeys(self.park_keys, uid)
                blocks = C.issue_blocks(keys, info, amount, time_s, self.terminal_id)
                card_mac = blocks[C.SLOT_BLOCKS[0]][12:]
            rec = R.Record(R.KIND_ISSUE, self.terminal_id, 0, time_s, card_no, uid, 1, amount, amount,
                           item=deposit_cents, discount_cents=amount - cash_cents, card_mac=card_mac)
            await self._post(state, rec)
            # After the record is in: a refused issue leaves no card behind to block the retry.
            await self.storage.set_card_info(card_no, bytes(uid), tier, deposit_cents)
            await self._audited("card.issue", card_no=card_no, tier=tier, cash_cents=cash_cents,
                                amount_cents=amount, deposit_cents=deposit_cents, seq=rec.seq)
            return DeskResult(rec, card_no, slot, blocks, info)

    async def top_up(self, card_no, uid, slot, cash_cents, write_block=None, time_s=None):
        """Top up a card whose slot in force is `slot`; return a DeskResult with the successor slot.

        With park keys and write_block (from protocol.card.read_slots) the block to write is in .blocks.
        """
        if cash_cents <= 0:
            raise DeskError("a top-up is a positive amount of cents")
        time_s = int(time.time()) if time_s is None else time_s
        async with self._lock:
            state = self._state()
            card = await self.storage.card(card_no)
            if card is None:
                raise DeskError("card %d is unknown at the hub: issue it first" % card_no)
            amount = cash_cents + ledger.bonus_cents(card["tier"], cash_cents, self.bonus_table)
            new = slot.next(slot.balance_cents + amount, slot.spend_day, slot.day_spend_cents, self.terminal_id)
            if new.balance_cents > C.BALANCE_MAX_CENTS:
                raise DeskError("the balance would exceed %d cents" % C.BALANCE_MAX_CENTS)
            blocks = {}
            card_mac = bytes(4)
            if self.park_keys is not None and write_block is not None:
                blocks[write_block] = new.encode(C.CardKeys(self.park_keys, uid), write_block)
                card_mac = new.mac
            rec = R.Record(R.KIND_TOPUP, self.terminal_id, 0, time_s, card_no, uid, new.counter, amount,
                           new.balance_cents, discount_cents=amount - cash_cents, card_mac=card_mac)
            await self._post(state, rec)
            await self._audited("card.top_up", card_no=card_no, cash_cents=cash_cents, amount_cents=amount,
                                balance_after_cents=new.balance_cents, seq=rec.seq)
            return DeskResult(rec, card_no, new, blocks)
