"""Desk operations through the real path: desk order -> card -> read back -> record of the desk source -> ledger.

An operation is a rows.DeskOperation kept under the caller's op_id:
- a retry with the same op_id and the same request is the same operation
  (posted: answered as posted; pending: resolved by reading the card);
- the same op_id with another request is refused;
- the write asked for (its blocks) is kept BEFORE the desk is asked to write.

Resolution of a pending write, from the blocks the desk read back (SPEC.md §5.9):
the slot block written holds the bytes asked for -> posted; the card's slot in
force is still the one the write started from (top-up) or the card holds no
valid slot (issue) -> failed, nothing posted, the cashier tries again; the slot
written but not every block asked for (a return pulled before its info block)
-> the same blocks are written again; anything else (no read, or the card moved
on) -> it stays pending.
"""

import asyncio
import json
import time

from protocol import card as C
from protocol import card_issue
from protocol import desk as D
from protocol import hub_credits
from protocol import record as R
from protocol.errors import BadMac, Malformed

from parkcard.domain import accounts, ledger, purses
from parkcard.domain.cents import whole
from parkcard.domain.explained import Cents, Word
from parkcard.domain.refund_rules import RefundRefused, RefundRules, quote_refund, quote_return
from parkcard.domain.lifecycle import CardStatus, DeskOpState, RecordStatus
from parkcard.services import park, shifts
from parkcard.services.desk.source import desk_source
from parkcard.services.tiers import park_tiers
from parkcard.services.privileges import (CARD_ISSUE, CARD_REFUND, CARD_RETURN, CARD_STOCK, CARD_TOP_UP, MEMBERS,
                                          ServiceError, requires)
from parkcard.store import audited
from parkcard.store import staff as staff_store
from parkcard.store.members import card_member_in, tier_written_in
from parkcard.store.desk_ops import card_status_in, posted_in
from parkcard.store.rows import DeskOperation
from parkcard.store.shifts import NoOpenShift, paid_by_in

ORDER_TIMEOUT_S = 30            # a cashier puts the card on the desk within half a minute
READ_BACK_TIMEOUT_S = 5         # the second look at a card whose write was not confirmed
OP_ID_MAX = 64
KIND_OF = {"issue": R.KIND_ISSUE, "top_up": R.KIND_TOPUP, "staff_card": R.KIND_ISSUE, "refund": R.KIND_PAYOUT,
           "return": R.KIND_CASHOUT, "replace": R.KIND_TRANSFER_IN}
# Operations that issue a stock card: a visitor card, or a staff card (no value, SPEC.md §4.14).
ISSUE_KINDS = ("issue", "staff_card")
# Operations that write a stock card's info and first slot (counter 1): the issues, and a replacement (§4.13).
NEW_CARD_KINDS = ISSUE_KINDS + ("replace",)
ON_A_LOADED_CARD = ("top_up", "refund", "return")     # writes that start from the card's slot in force
_FEE_OPS = ("refund", "return")         # their record's discount is the fee kept (SPEC.md §4.12)
TIER_CARRIERS = ("top_up", "refund")    # writes that carry a member's new tier onto the card (its info block)
_STOCK_BLOCKS = (C.INFO_BLOCK,) + C.SLOT_BLOCKS


# {kind: [fn(desk, tx, op, rec)]}: what an operation's own module books in the transaction that posts its
# record (parkcard.services.desk.replacement registers the replacement's half of the lost card).
AFTER_POSTED = {}


class DeskPath:
    """What a desk operation runs on: the store, the hub's registry, ingest and desk link, the park's keys."""

    def __init__(self, storage, registry, ingest, link, park_keys, timeout_s=ORDER_TIMEOUT_S,
                 read_back_timeout_s=READ_BACK_TIMEOUT_S):
        # One record of the desk source at a time: its next seq is known once the previous one is committed.
        self.posting = asyncio.Lock()
        self.timeout_s = timeout_s                      # waiting for the card to be put on the desk
        self.read_back_timeout_s = read_back_timeout_s  # a second look at a card whose write was not confirmed
        self.storage = storage
        self.registry = registry
        self.ingest = ingest
        self.link = link
        self.park_keys = park_keys
        self.write_card = None      # the hub's transport-key card write (parkcard.app.Hub.write_card), for stock


class DeskDone:
    """What a desk operation did: the operation as kept (posted), its card and the card's balance after."""

    def __init__(self, op):
        self.op = op
        self.op_id = op.op_id
        self.card_no = op.card_no
        self.uid = op.uid
        self.balance_cents = op.balance_after_cents
        self.amount_cents = op.amount_cents
        self.bonus_cents = op.bonus_cents
        self.fee_cents = op.fee_cents
        self.deposit_cents = op.deposit_cents
        self.record_seq = op.record_seq

    @property
    def paid_cents(self):
        """What the holder was paid at the desk: a refund's amount less its fee, a return's cash and deposit."""
        if self.op.kind not in ("refund", "return"):
            return 0
        return self.amount_cents - self.bonus_cents - self.fee_cents + self.deposit_cents


def _cents(value, what, minimum=0):
    """A whole number of cents within a card's range, else a ServiceError that says so."""
    try:
        return whole(value, what, ServiceError, minimum=minimum, maximum=C.BALANCE_MAX_CENTS)
    except ServiceError as exc:
        raise ServiceError("%(problem)s (amounts are counted in cents)", problem=exc) from None


def check_op_id(op_id):
    """The operation id as given; ServiceError when a person could not read it back."""
    if not isinstance(op_id, str) or not 0 < len(op_id) <= OP_ID_MAX or not op_id.isprintable():
        raise ServiceError("an operation id is 1..%(most)d printable characters, made once by the caller and used "
                           "again on every retry", most=OP_ID_MAX)
    return op_id


def request_of(kind, desk_terminal_id, **fields):
    """What the caller asked, as kept with the operation (canonical JSON): a retry must ask the same."""
    return json.dumps(dict(fields, kind=kind, desk=desk_terminal_id), sort_keys=True)


def blocks_of(op):
    """[(block, 16 bytes)] of the write an operation asks for."""
    raw = op.blocks or b""
    return [(raw[i], bytes(raw[i + 1:i + 17])) for i in range(0, len(raw), 17)]


def _packed(blocks):
    return b"".join(bytes((block,)) + data for block, data in blocks)


def _need_keys(desk):
    if desk.park_keys is None:
        raise ServiceError("this hub has no park keys: run it in the park's folder (`parkcard init` made them)")
    return desk.park_keys


async def _earlier(desk, actor, op_id, request):
    """The operation already kept under op_id: DeskDone if posted (or resolved now), None if none or failed."""
    op = await desk.storage.desk_operation(op_id)
    if op is None or op.state == DeskOpState.FAILED:
        return None if op is None or op.request == request else _refuse_reuse(op)
    if op.request != request:
        _refuse_reuse(op)
    if op.state == DeskOpState.POSTED:
        return DeskDone(op)
    if not op.blocks:
        return None             # kept, but its write never made (an issue cut short): made and asked for now
    return await _settle(desk, actor, op, write=False)


def _refuse_reuse(op):
    raise ServiceError("operation id %(op_id)s was used for another request (%(request)s): a new operation needs a "
                       "new id", op_id=op.op_id, request=op.request)


async def _read(desk, desk_terminal_id, uid, keys, timeout_s):
    """The desk's report of the card `uid` read with its key B (None when no report came)."""
    try:
        return await desk.link.order(desk_terminal_id, D.OP_READ, uid, D.KEY_B, keys.key_b(), timeout_s=timeout_s)
    except ServiceError:
        return None


async def identify_and_read(desk, desk_terminal_id, timeout_s):
    """(uid, CardKeys, report or None) of whatever card lies on the desk, read with the park's key B for its UID;
    ServiceError when no card is there."""
    park_keys = _need_keys(desk)
    found = await desk.link.order(desk_terminal_id, D.OP_IDENTIFY, D.ANY_CARD, D.KEY_A, bytes(6),
                                  timeout_s=timeout_s)
    keys = C.CardKeys(park_keys, found.uid)
    return found.uid, keys, await _read(desk, desk_terminal_id, found.uid, keys, timeout_s)


async def _card_on_desk(desk, desk_terminal_id, timeout_s):
    """(uid, CardKeys, report) of the park card lying on the desk; ServiceError when there is none."""
    uid, keys, report = await identify_and_read(desk, desk_terminal_id, timeout_s or desk.timeout_s)
    if report is None or report.status == D.DESK_READ_FAILED or len(report.blocks) != len(_STOCK_BLOCKS):
        raise ServiceError("the card left the desk before it was read: put it back on desk %(desk)d and try again",
                           desk=desk_terminal_id)
    if report.status == D.DESK_NOT_OURS:
        raise ServiceError("the card on desk %(desk)d is not a card of this park (or not initialised as card "
                           "stock): take a card of the park", desk=desk_terminal_id)
    return uid, keys, report


def _visitor_card(report, keys, desk_terminal_id):
    """(CardInfo, slot in force, block for the next slot) of a loaded park card; ServiceError otherwise."""
    try:
        info = C.CardInfo.decode(report.blocks[C.INFO_BLOCK], keys)
        slot, write_block = C.read_slots(report.blocks[C.SLOT_BLOCKS[0]], report.blocks[C.SLOT_BLOCKS[1]], keys)
    except (BadMac, Malformed):
        raise ServiceError("the card on desk %(desk)d holds no card of this park (a stock card is issued first)",
                           desk=desk_terminal_id) from None
    if info.flags & (C.FLAG_ADMIN | C.FLAG_STAFF):
        raise ServiceError("card %(card)d is not a visitor card", card=info.card_no)
    if info.flags & C.FLAG_RETURNED:
        raise ServiceError("card %(card)d was returned: it takes no money; issue a new card", card=info.card_no)
    return info, slot, write_block


async def _known_card(desk, card_no):
    card = await desk.storage.card(card_no)
    if card is None:
        raise ServiceError("card %(card)d is unknown at this hub: is it a card of another park?", card=card_no)
    if card.status in (CardStatus.RETURNED, CardStatus.WIPED):
        raise ServiceError("card %(card)d was returned: it takes no money; issue a new card", card=card_no)
    if card.status != CardStatus.ACTIVE:
        raise ServiceError("card %(card)d is %(status)s: it takes no money until the blacklist entry is removed",
                           card=card_no, status=Word(card.status))
    return card


class _OnDesk:
    """A loaded visitor card lying on the desk, as read: UID, keys, info, slot in force, block for the next
    slot, and the hub's rows.Card of it."""

    def __init__(self, uid, keys, info, slot, write_block, card):
        self.uid, self.keys, self.info, self.slot, self.write_block, self.card = (uid, keys, info, slot, write_block,
                                                                                card)

    def next_slot(self, balance_cents, desk_terminal_id):
        """(the slot that follows the one in force with balance_cents, its block and bytes to write)."""
        new = self.slot.next(balance_cents, self.slot.spend_day, self.slot.day_spend_cents, desk_terminal_id)
        return new, (self.write_block, new.encode(self.keys, self.write_block))

    def tier_blocks(self):
        """[(INFO_BLOCK, its bytes with the hub's tier)] when the card's info holds another tier (the member's tier
        changed since the card was written), else []: a write that changes the card carries it along, after the
        slot (SPEC.md §5.9)."""
        info = self.info
        if info.tier == self.card.tier:
            return []
        return [(C.INFO_BLOCK, C.CardInfo(info.card_no, self.card.tier, info.flags, info.expiry_day, info.perms,
                                          info.issue_day, info.deposit_cents).encode(self.keys))]

    def pending(self, op_id, kind, request, desk_terminal_id, actor, new, blocks, amount_cents, bonus_cents=0,
                deposit_cents=0, fee_cents=0):
        """The rows.DeskOperation to keep, as pending, of a write of `blocks` that makes `new` the slot in force."""
        return DeskOperation(op_id, kind, request, desk_terminal_id, actor.name, DeskOpState.PENDING,
                             self.info.card_no, self.uid, self.slot.counter, new.counter, _packed(blocks),
                             amount_cents, bonus_cents, deposit_cents, new.balance_cents, self.card.tier, None, None,
                             0.0, None, fee_cents)


async def _loaded_card(desk, desk_terminal_id, timeout_s):
    """The _OnDesk of the loaded park card on the desk, known at this hub and active; ServiceError otherwise."""
    uid, keys, report = await _card_on_desk(desk, desk_terminal_id, timeout_s)
    info, slot, write_block = _visitor_card(report, keys, desk_terminal_id)
    return _OnDesk(uid, keys, info, slot, write_block, await _known_card(desk, info.card_no))


@requires(CARD_TOP_UP)
async def top_up(desk, actor, op_id, desk_terminal_id, cash_cents, timeout_s=None, pay=shifts.S.CASH):
    """Top up the card on desk `desk_terminal_id` with cash_cents paid by `pay` (plus its tier's bonus); DeskDone."""
    op_id = check_op_id(op_id)
    cash = _cents(cash_cents, "the top-up", minimum=1)
    request = request_of("top_up", desk_terminal_id, cash_cents=cash, pay=await shifts.checked_pay(desk.storage, pay))
    done = await _earlier(desk, actor, op_id, request)
    if done is not None:
        return done
    on = await _loaded_card(desk, desk_terminal_id, timeout_s)
    bonus = ledger.bonus_cents(on.card.tier, cash, await park_tiers(desk.storage))
    balance = on.slot.balance_cents + cash + bonus
    if balance > C.BALANCE_MAX_CENTS:
        raise ServiceError("card %(card)d would hold %(cents)s, over the card's %(most)s: top up less",
                           card=on.info.card_no, cents=Cents(balance), most=Cents(C.BALANCE_MAX_CENTS))
    new, write = on.next_slot(balance, desk_terminal_id)
    op = on.pending(op_id, "top_up", request, desk_terminal_id, actor, new, [write] + on.tier_blocks(), cash + bonus,
                    bonus)
    return await _keep_and_write(desk, actor, op, request)


@requires(CARD_ISSUE)
async def issue(desk, actor, op_id, desk_terminal_id, cash_cents, tier=None, deposit_cents=0,
                expiry_day=0, perms=0xFFFF, timeout_s=None, card_type=None, pay=shifts.S.CASH, member_no=None):
    """Issue the stock card on the desk with a first load (cash_cents paid by `pay`, plus its tier's bonus);
    return DeskDone.

    card_type (member, temporary) takes the park's deposit of that type instead of deposit_cents.
    member_no: the member the card is issued to; its tier is then the member's unless tier is given.
    """
    op_id = check_op_id(op_id)
    if card_type is not None:
        deposit_cents = await park.deposit_of(desk.storage, card_type)
    cash = _cents(cash_cents, "the first load")
    deposit = _cents(deposit_cents, "the deposit")
    if deposit % 100 or deposit > 25500:
        raise ServiceError("a deposit is whole units of 100 cents, at most 25500 (the card holds it, SPEC.md "
                           "§3.3), not %(deposit)d", deposit=deposit)
    if member_no is not None:
        member = await desk.storage.member(member_no=member_no)
        if member is None:
            raise ServiceError("there is no member %(member)s: find them with `parkcard member show PHONE`, or add "
                               "them with `parkcard member add`", member=member_no)
        tier = member.tier if tier is None else tier
    tier = C.TIER_STANDARD if tier is None else tier
    if not isinstance(tier, int) or not 0 <= tier <= 15:
        raise ServiceError("tier %(tier)r is none of the park's tiers", tier=tier)
    fields = dict(cash_cents=cash, tier=tier, deposit_cents=deposit, expiry_day=expiry_day, perms=perms,
                  pay=await shifts.checked_pay(desk.storage, pay))
    if member_no is not None:       # absent otherwise: the request of an issue kept before members stays the same
        fields["member_no"] = member_no
    request = request_of("issue", desk_terminal_id, **fields)
    done = await _earlier(desk, actor, op_id, request)
    if done is not None:
        return done
    uid, keys, _report = await stock_on_desk(desk, op_id, desk_terminal_id, timeout_s)
    kept = await issue_kept(desk, actor, op_id, request, desk_terminal_id, uid, keys, cash, tier, deposit,
                            expiry_day, perms)
    return await _settle(desk, actor, kept, write=kept.state == DeskOpState.PENDING)


async def stock_on_desk(desk, op_id, desk_terminal_id, timeout_s=None):
    """(uid, CardKeys, report) of the stock card on the desk (or the one op_id began to write); ServiceError else."""
    uid, keys, report = await _card_on_desk(desk, desk_terminal_id, timeout_s)
    if report.blocks[C.INFO_BLOCK] != bytes(C.BLOCK_SIZE):
        stored = await desk.storage.desk_operation(op_id)
        if stored is None or stored.uid != uid:     # only a failed issue of this very card may have left its info
            raise ServiceError("the card on desk %(desk)d is already issued: take a card from stock",
                               desk=desk_terminal_id)
    return uid, keys, report


async def issue_kept(desk, actor, op_id, request, desk_terminal_id, uid, keys, cash, tier, deposit, expiry_day, perms,
                     time_s=None, card_no=None, kind="issue", flags=0):
    """Keep an issue as pending with its card number (card_no, else the next one) and the blocks that carry it;
    kind "staff_card" with flags FLAG_STAFF for a staff card."""
    bonus = ledger.bonus_cents(tier, cash, await park_tiers(desk.storage))
    return await new_card_kept(desk, actor, kind, op_id, request, desk_terminal_id, uid, keys, cash + bonus, bonus,
                               tier, deposit, deposit, expiry_day, perms, time_s, card_no, flags)


async def new_card_kept(desk, actor, kind, op_id, request, desk_terminal_id, uid, keys, load_cents, bonus, tier,
                        deposit_on_card, deposit_moved, expiry_day=0, perms=0xFFFF, time_s=None, card_no=None,
                        flags=0, replaces_card_no=None):
    """Keep a new card's operation (NEW_CARD_KINDS) as pending with its number and the blocks that carry it.

    deposit_on_card: what the card's info says it holds; deposit_moved: what its record takes in (an issue's);
    replaces_card_no: the lost card a replacement replaces (refused while another operation replaces it).
    """
    op = DeskOperation(op_id, kind, request, desk_terminal_id, actor.name, DeskOpState.PENDING, card_no, uid, 0, 1,
                       None, load_cents, bonus, deposit_moved, load_cents, tier, None, None, 0.0, None,
                       replaces_card_no=replaces_card_no)
    kept = await _keep(desk, actor, op, request)
    if kept.state != DeskOpState.PENDING or kept.blocks:
        return kept
    # The card number is taken as the operation is kept: the blocks that carry it are made now, and kept too.
    day = C.day_of(int(time.time()) if time_s is None else time_s)
    info = C.CardInfo(kept.card_no, tier, flags, expiry_day, perms, day, deposit_on_card)
    slot = C.WalletSlot(1, load_cents, 0, day, desk_terminal_id)
    blocks = [(C.INFO_BLOCK, info.encode(keys)), (C.SLOT_BLOCKS[0], slot.encode(keys, C.SLOT_BLOCKS[0]))]
    return await desk.storage.keep_desk_blocks(kept.op_id, _packed(blocks))


async def earlier(desk, actor, op_id, request):
    """The operation already kept under op_id: DeskDone if posted (or resolved now), None if none or failed."""
    return await _earlier(desk, actor, op_id, request)


async def settle(desk, actor, op, write):
    """Write (when asked) and resolve a pending operation by what the card holds; DeskDone once posted."""
    return await _settle(desk, actor, op, write)
async def _purse_of(desk, card_no, balance_cents):
    """The card's purses: its balance on the card, of which the hub's bonus purse is bonus (cash spent first)."""
    bonus = min(balance_cents, max(0, await desk.storage.account_balance(accounts.bonus_account(card_no))))
    return purses.Purse(balance_cents - bonus, bonus)


async def _refund_rules(storage):
    settings = await storage.desk_settings()
    return RefundRules(settings.refund_minimum_cents, settings.refund_fee_bps, settings.refund_fee_fixed_cents)


@requires(CARD_REFUND)
async def refund(desk, actor, op_id, desk_terminal_id, amount_cents, timeout_s=None):
    """Pay back amount_cents of the cash on the card on the desk, less the park's refund fee; return DeskDone."""
    op_id = check_op_id(op_id)
    amount = _cents(amount_cents, "the refund", minimum=1)
    request = request_of("refund", desk_terminal_id, amount_cents=amount)
    done = await _earlier(desk, actor, op_id, request)
    if done is not None:
        return done
    on = await _loaded_card(desk, desk_terminal_id, timeout_s)
    purse = await _purse_of(desk, on.info.card_no, on.slot.balance_cents)
    try:
        quote = quote_refund(await _refund_rules(desk.storage), purse, amount)
    except RefundRefused as exc:
        raise ServiceError("card %(card)d: %(refusal)s", card=on.info.card_no, refusal=exc) from None
    new, write = on.next_slot(on.slot.balance_cents - amount, desk_terminal_id)
    op = on.pending(op_id, "refund", request, desk_terminal_id, actor, new, [write] + on.tier_blocks(), amount,
                    fee_cents=quote.fee_cents)
    return await _keep_and_write(desk, actor, op, request)


@requires(CARD_RETURN)
async def return_card(desk, actor, op_id, desk_terminal_id, timeout_s=None):
    """Take back the card on the desk: its cash (less the fee) and deposit paid out, its bonus back to the park,
    the card marked returned on the card and at the hub; return DeskDone."""
    op_id = check_op_id(op_id)
    request = request_of("return", desk_terminal_id)
    done = await _earlier(desk, actor, op_id, request)
    if done is not None:
        return done
    on = await _loaded_card(desk, desk_terminal_id, timeout_s)
    info = on.info
    purse = await _purse_of(desk, info.card_no, on.slot.balance_cents)
    quote = quote_return(await _refund_rules(desk.storage), purse, on.card.deposit_cents)
    new, write = on.next_slot(0, desk_terminal_id)
    returned = C.CardInfo(info.card_no, info.tier, info.flags | C.FLAG_RETURNED, info.expiry_day, info.perms,
                          info.issue_day, info.deposit_cents)
    # The slot first: a card pulled before its info block is written holds the return, and is written again.
    op = on.pending(op_id, "return", request, desk_terminal_id, actor, new, [write, (C.INFO_BLOCK,
                    returned.encode(on.keys))], on.slot.balance_cents, quote.bonus_to_park_cents,
                    on.card.deposit_cents, quote.fee_cents)
    return await _keep_and_write(desk, actor, op, request)


@requires(CARD_STOCK)
async def wipe_card(desk, actor, op_id, desk_terminal_id, timeout_s=None):
    """Put the returned card on the desk back to stock: slots then info blanked, its keys kept; a Stocked.

    No value moves (a returned card holds 0). A card pulled half-way still reads as returned, or already
    as stock: the same command again finishes it.
    """
    op_id = check_op_id(op_id)
    uid, keys, report = await _card_on_desk(desk, desk_terminal_id, timeout_s)
    blank = bytes(C.BLOCK_SIZE)
    if all(report.blocks[b] == blank for b in _STOCK_BLOCKS):
        return Stocked(op_id, uid)          # already stock (a retry after the write landed)
    try:
        info = C.CardInfo.decode(report.blocks[C.INFO_BLOCK], keys)
    except (BadMac, Malformed):
        raise ServiceError("the card on desk %(desk)d holds no card of this park: only a returned card is made "
                           "stock again", desk=desk_terminal_id) from None
    card = await desk.storage.card(info.card_no)
    if not info.flags & C.FLAG_RETURNED or card is None or card.status not in (CardStatus.RETURNED,
                                                                                CardStatus.WIPED):
        raise ServiceError("card %(card)d is not returned: return it first (`parkcard card return`), which pays out "
                           "its balance and deposit", card=info.card_no)
    # The slots first: a card pulled before its info block is blanked still reads as returned.
    blocks = [(C.SLOT_BLOCKS[0], blank), (C.SLOT_BLOCKS[1], blank), (C.INFO_BLOCK, blank)]
    try:
        report = await desk.link.order(desk_terminal_id, D.OP_WRITE, uid, D.KEY_B, keys.key_b(), blocks,
                                       timeout_s=desk.timeout_s)
    except ServiceError:
        report = None
    if report is None or any(report.blocks.get(b) != d for b, d in blocks):
        report = await _read(desk, desk_terminal_id, uid, keys, desk.read_back_timeout_s) or report
    if report is None or any(report.blocks.get(b) != d for b, d in blocks):
        raise ServiceError("card %(card)d left desk %(desk)d before it was blank: put it back and run the same "
                           "command again", card=info.card_no, desk=desk_terminal_id)
    await desk.storage.card_stocked(info.card_no, audit=audited(
        actor.name, "card.wipe", op_id=op_id, card_no=info.card_no, desk_terminal_id=desk_terminal_id, uid=uid.hex()))
    return Stocked(op_id, uid)


@requires(MEMBERS)
async def write_tier(desk, actor, op_id, desk_terminal_id, timeout_s=None):
    """Write the hub's tier (the member's, since it changed) onto the info block of the card on the desk; TierWritten.

    No value moves and no slot is written: one block, read back. A card pulled before it is read back is read
    again by the same command; a card that holds its tier already is left as it is.
    """
    op_id = check_op_id(op_id)
    on = await _loaded_card(desk, desk_terminal_id, timeout_s)
    blocks = on.tier_blocks()
    if blocks:
        try:
            report = await desk.link.order(desk_terminal_id, D.OP_WRITE, on.uid, D.KEY_B, on.keys.key_b(), blocks,
                                           timeout_s=desk.timeout_s)
        except ServiceError:
            report = None
        if report is None or report.blocks.get(C.INFO_BLOCK) != blocks[0][1]:
            report = await _read(desk, desk_terminal_id, on.uid, on.keys, desk.read_back_timeout_s) or report
        if report is None or report.blocks.get(C.INFO_BLOCK) != blocks[0][1]:
            raise ServiceError("card %(card)d left desk %(desk)d before its tier was written: put it back and run "
                               "the same command again (no value moved)", card=on.info.card_no, desk=desk_terminal_id)
    await desk.storage.tier_written(on.info.card_no, on.card.tier, audit=audited(
        actor.name, "card.tier_written", op_id=op_id, card_no=on.info.card_no, desk_terminal_id=desk_terminal_id,
        tier=on.card.tier, tier_before=on.info.tier))
    return TierWritten(op_id, on, bool(blocks))


class TierWritten:
    """A tier written onto a card's info block (written False: it held the hub's tier already); no value moved."""

    amount_cents = bonus_cents = 0
    record_seq = None

    def __init__(self, op_id, on, written):
        self.op_id = op_id
        self.uid = on.uid
        self.card_no = on.info.card_no
        self.tier = on.card.tier
        self.tier_before = on.info.tier
        self.balance_cents = on.slot.balance_cents
        self.written = written


@requires(CARD_STOCK)
async def stock_card(desk, actor, op_id, desk_terminal_id, uid_hex):
    """Initialise the blank card `uid_hex` on the desk as card stock: keys and trailer, nothing loaded.

    Written with the transport key (SPEC.md §5.7, desk.write_card: the hub's), then read with its new key B.
    Returns a DeskDone-like summary with card_no None.
    """
    try:
        uid = bytes.fromhex(uid_hex)
    except ValueError:
        uid = b""
    if len(uid) not in (4, 7):
        raise ServiceError("a card UID is 4 or 7 bytes in hex (8 or 14 digits), not %(uid)r", uid=uid_hex)
    keys = C.CardKeys(_need_keys(desk), uid)
    blank = bytes(C.BLOCK_SIZE)
    blocks = {C.INFO_BLOCK: blank, C.SLOT_BLOCKS[0]: blank, C.SLOT_BLOCKS[1]: blank,
              C.TRAILER_BLOCK: card_issue.trailer_block(keys)}
    blocks.update(hub_credits.credit_blocks(keys))     # sector 2: where pending credits land (SPEC.md §3.7)
    await desk.write_card(desk_terminal_id, uid, blocks, actor=actor.name)
    report = await _read(desk, desk_terminal_id, uid, keys, desk.read_back_timeout_s)
    if report is None or report.status != D.DESK_OK:
        raise ServiceError("card %(uid)s was written but does not open with its new keys: put it on desk %(desk)d "
                           "again", uid=uid.hex(), desk=desk_terminal_id)
    await desk.storage.audit(actor.name, "card.stock", op_id=op_id, desk_terminal_id=desk_terminal_id,
                             uid=uid.hex())
    return Stocked(op_id, uid)


class Stocked:
    """A card made stock: no number, nothing loaded."""

    card_no = None
    amount_cents = bonus_cents = balance_cents = 0
    record_seq = None

    def __init__(self, op_id, uid):
        self.op_id = op_id
        self.uid = uid


async def _keep(desk, actor, op, request):
    """Keep op as pending in its desk's open shift, the actor's own (paid as its request says); every desk operation
    comes here."""
    method = shifts.pay_method_of(request)
    try:
        kept = await desk.storage.keep_desk_operation(op, method=method, shift_owner=shifts.shift_owner(actor),
                                                      audit=audited(
            actor.name, "desk.pending", when=lambda k: k.op_id == op.op_id and k.state == DeskOpState.PENDING,
            op_id=op.op_id, kind=op.kind, desk_terminal_id=op.desk_terminal_id, uid=op.uid.hex(), pay=method))
    except NoOpenShift:     # checked in the transaction that keeps it: no close can slip between
        raise shifts.no_shift(op.desk_terminal_id) from None
    except ValueError as exc:
        raise ServiceError.of(exc) from None
    if kept.request != request:
        _refuse_reuse(kept)
    return kept


async def _keep_and_write(desk, actor, op, request):
    kept = await _keep(desk, actor, op, request)
    if kept.state == DeskOpState.POSTED:
        return DeskDone(kept)
    if kept.blocks != op.blocks:        # kept by a concurrent retry: resolve that one, never write twice
        return await _settle(desk, actor, kept, write=False)
    return await _settle(desk, actor, kept, write=True)


async def _settle(desk, actor, op, write):
    """Write (when asked) and resolve a pending operation by what the card holds; DeskDone once posted."""
    keys = C.CardKeys(_need_keys(desk), op.uid)
    report = None
    if not write:
        report = await _read(desk, op.desk_terminal_id, op.uid, keys, desk.read_back_timeout_s)
        if report is not None and (_landed(op, report, keys) is False and _unchanged(op, report, keys)
                                   or _partly(op, report)):
            write = True        # the card is as the operation found it (or holds part of it): written again
    if write:
        try:
            report = await desk.link.order(op.desk_terminal_id, D.OP_WRITE, op.uid, D.KEY_B, keys.key_b(),
                                           blocks_of(op), timeout_s=desk.timeout_s)
        except ServiceError:
            report = None
        if report is None or _landed(op, report, keys) is None:
            report = await _read(desk, op.desk_terminal_id, op.uid, keys, desk.read_back_timeout_s) or report
    landed = None if report is None else _landed(op, report, keys)
    if landed is None and report is not None and _partly(op, report):
        try:            # the slot landed, a block after it did not (the card left between them): finish it
            report = await desk.link.order(op.desk_terminal_id, D.OP_WRITE, op.uid, D.KEY_B, keys.key_b(),
                                           blocks_of(op), timeout_s=desk.timeout_s)
        except ServiceError:
            report = None
        landed = None if report is None else _landed(op, report, keys)
    if landed is None and op.kind in ON_A_LOADED_CARD and await desk.storage.counter_claim(op.card_no,
                                                                                           op.counter_after):
        landed = False      # another write holds the counter this one would have taken: it never landed
    if landed:
        return await post_confirmed(desk, actor, op)
    if landed is False:
        await desk.storage.fail_desk_operation(op.op_id, "the card was not written", audit=audited(
            actor.name, "desk.failed", op_id=op.op_id, kind=op.kind))
        raise ServiceError("card %(card)s does not hold operation %(op_id)s (the card left desk %(desk)d before it "
                           "was written): nothing was charged; put the card on the desk and try again",
                           card=op.card_no, op_id=op.op_id, desk=op.desk_terminal_id)
    raise ServiceError("operation %(op_id)s is pending: desk %(desk)d did not show whether card %(card)s holds the "
                       "write. Put the card back on the desk and retry with the same operation id: the card is read, "
                       "never charged twice", op_id=op.op_id, desk=op.desk_terminal_id, card=op.card_no)


def _slot_written(op):
    return [(b, d) for b, d in blocks_of(op) if b in C.SLOT_BLOCKS][0]


def _landed(op, report, keys):
    """True: the card holds the write; False: it holds the state the write started from; None: not known."""
    if len(report.blocks) != len(_STOCK_BLOCKS):
        return None
    block, data = _slot_written(op)
    if report.blocks.get(block) == data:
        return True if all(report.blocks.get(b) == d for b, d in blocks_of(op)) else None
    return False if _unchanged(op, report, keys) else None


def _partly(op, report):
    """True when the card holds the slot an operation writes but not every other block of it."""
    block, data = _slot_written(op)
    return report.blocks.get(block) == data and any(report.blocks.get(b) != d for b, d in blocks_of(op))


def _unchanged(op, report, keys):
    """True when the card read back is as the operation found it: its slot in force has counter_before."""
    slots = C.decode_slots(report.blocks.get(C.SLOT_BLOCKS[0], b""), report.blocks.get(C.SLOT_BLOCKS[1], b""),
                           keys) if len(report.blocks) == len(_STOCK_BLOCKS) else None
    if slots is None:
        return False
    if slots == [None, None]:
        return op.kind in NEW_CARD_KINDS
    current = C.pick_slot(*slots)[0]
    return op.kind in ON_A_LOADED_CARD and current.counter == op.counter_before


async def post_confirmed(desk, actor, op, time_s=None):
    """Apply the record of an operation whose write the card holds (desk source, SPEC.md §4.6), marked posted in
    the same transaction; return DeskDone."""
    async with desk.posting:
        return await _post_one(desk, actor, op, time_s)


async def _post_one(desk, actor, op, time_s):
    desk_state = desk.link.desk_state(op.desk_terminal_id)
    source = await desk_source(desk.storage, desk.registry, desk_state.merchant_id, actor.name)
    slot_data = _slot_written(op)[1]
    time_s = int(time.time()) if time_s is None else time_s

    def build(tx, seq):
        rec = R.Record(KIND_OF[op.kind], D.DESK_SOURCE_ID, seq, time_s, op.card_no, op.uid, op.counter_after,
                       op.amount_cents, op.balance_after_cents, item=op.desk_terminal_id,
                       discount_cents=op.fee_cents if op.kind in _FEE_OPS else op.bonus_cents,
                       card_mac=slot_data[12:], deposit_cents=op.deposit_cents, version=R.RECORD_V2)
        return R.STATUS_COMMITTED, rec.encode(source.record_mac), rec

    paid_by = shifts.paid_by_entries(op, shifts.pay_method_of(op.request))

    def applied(tx, rec):
        if op.kind in ISSUE_KINDS:
            tx.set_card_info(op.card_no, op.uid, op.tier, op.deposit_cents)
            member_no = json.loads(op.request).get("member_no")
            if member_no is not None:
                card_member_in(tx, op.card_no, member_no)
        if op.kind == "staff_card":     # the card belongs to its staff member from the posting on
            staff_store.link_card(tx, json.loads(op.request)["staff_id"], op.card_no)
        elif op.kind == "return":
            card_status_in(tx, op.card_no, CardStatus.RETURNED)
        elif op.kind in TIER_CARRIERS and any(b == C.INFO_BLOCK for b, _d in blocks_of(op)):
            tier_written_in(tx, op.card_no, op.tier)        # the member's new tier is on the card now
        for after in AFTER_POSTED.get(op.kind, ()):
            after(desk, tx, op, rec)
        posted_in(tx, op.op_id, rec.seq)
        if paid_by:         # not paid in cash: what the record took into desk:cash went to the method's account
            paid_by_in(tx, op.op_id, tx.post(None, ledger.TX_PAID_BY, paid_by))

    result, rec = await desk.ingest.apply_built(D.DESK_SOURCE_ID, build, applied, audit=audited(
        actor.name, "card." + op.kind, when=lambda r: r[0].counts[RecordStatus.APPLIED] == 1, op_id=op.op_id,
        card_no=op.card_no, amount_cents=op.amount_cents, bonus_cents=op.bonus_cents, fee_cents=op.fee_cents,
        deposit_cents=op.deposit_cents, desk_terminal_id=op.desk_terminal_id))
    if result.counts[RecordStatus.APPLIED] != 1:
        raise ServiceError("the hub refused the %(kind)s record of card %(card)d (%(reason)s): operation %(op_id)s "
                           "stays pending; tell the park's technician", kind=op.kind, card=op.card_no,
                           reason=result.quarantined, op_id=op.op_id)
    return DeskDone(await desk.storage.desk_operation(op.op_id))
