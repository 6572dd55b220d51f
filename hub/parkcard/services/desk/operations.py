"""Desk operations through the real path: desk order -> card -> read back -> record of the desk source -> ledger.

An operation is a rows.DeskOperation kept under the caller's op_id:
- a retry with the same op_id and the same request is the same operation
  (posted: answered as posted; pending: resolved by reading the card);
- the same op_id with another request is refused;
- the write asked for (its blocks) is kept BEFORE the desk is asked to write.

Resolution of a pending write, from the blocks the desk read back (SPEC.md §5.9):
the slot block written holds the bytes asked for -> posted; the card's slot in
force is still the one the write started from (top-up) or the card holds no
valid slot (issue) -> failed, nothing posted, the cashier tries again; anything
else (no read, or the card moved on) -> it stays pending.
"""

import asyncio
import json
import time

from protocol import card as C
from protocol import desk as D
from protocol import hub_credits
from protocol import record as R
from protocol.errors import BadMac, Malformed

from parkcard.domain import ledger
from parkcard.domain.cents import whole
from parkcard.domain.lifecycle import CardStatus, DeskOpState, RecordStatus
from parkcard.services.desk.source import desk_source
from parkcard.services.privileges import CARD_ISSUE, CARD_STOCK, CARD_TOP_UP, ServiceError, requires
from parkcard.store import audited
from parkcard.store.desk_ops import posted_in
from parkcard.store.rows import DeskOperation

ORDER_TIMEOUT_S = 30            # a cashier puts the card on the desk within half a minute
READ_BACK_TIMEOUT_S = 5         # the second look at a card whose write was not confirmed
OP_ID_MAX = 64
KIND_OF = {"issue": R.KIND_ISSUE, "top_up": R.KIND_TOPUP}
_STOCK_BLOCKS = (C.INFO_BLOCK,) + C.SLOT_BLOCKS


class DeskPath:
    """What a desk operation runs on: the store, the hub's registry, ingest and desk link, the park's keys."""

    def __init__(self, storage, registry, ingest, link, park_keys, bonus_table=None, timeout_s=ORDER_TIMEOUT_S,
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
        self.bonus_table = bonus_table or ledger.TIER_BONUS_PERCENT


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
        self.record_seq = op.record_seq


def _cents(value, what, minimum=0):
    """A whole number of cents within a card's range, else a ServiceError that says so."""
    return whole(value, what, lambda detail: ServiceError("%s (amounts are counted in cents)" % detail),
                 minimum=minimum, maximum=C.BALANCE_MAX_CENTS)


def check_op_id(op_id):
    """The operation id as given; ServiceError when a person could not read it back."""
    if not isinstance(op_id, str) or not 0 < len(op_id) <= OP_ID_MAX or not op_id.isprintable():
        raise ServiceError("an operation id is 1..%d printable characters, made once by the caller and used again "
                           "on every retry" % OP_ID_MAX)
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
    raise ServiceError("operation id %s was used for another request (%s): a new operation needs a new id"
                       % (op.op_id, op.request))


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
        raise ServiceError("the card left the desk before it was read: put it back on desk %d and try again"
                           % desk_terminal_id)
    if report.status == D.DESK_NOT_OURS:
        raise ServiceError("the card on desk %d is not a card of this park (or not initialised as card stock): "
                           "take a card of the park" % desk_terminal_id)
    return uid, keys, report


def _visitor_card(report, keys, desk_terminal_id):
    """(CardInfo, slot in force, block for the next slot) of a loaded park card; ServiceError otherwise."""
    try:
        info = C.CardInfo.decode(report.blocks[C.INFO_BLOCK], keys)
        slot, write_block = C.read_slots(report.blocks[C.SLOT_BLOCKS[0]], report.blocks[C.SLOT_BLOCKS[1]], keys)
    except (BadMac, Malformed):
        raise ServiceError("the card on desk %d holds no card of this park (a stock card is issued first)"
                           % desk_terminal_id) from None
    if info.flags & (C.FLAG_ADMIN | C.FLAG_STAFF):
        raise ServiceError("card %d is not a visitor card" % info.card_no)
    if info.flags & C.FLAG_RETURNED:
        raise ServiceError("card %d was returned: it takes no money; issue a new card" % info.card_no)
    return info, slot, write_block


async def _known_card(desk, card_no):
    card = await desk.storage.card(card_no)
    if card is None:
        raise ServiceError("card %d is unknown at this hub: is it a card of another park?" % card_no)
    if card.status != CardStatus.ACTIVE:
        raise ServiceError("card %d is %s: it takes no money until the blacklist entry is removed" % (
            card_no, card.status))
    return card


@requires(CARD_TOP_UP)
async def top_up(desk, actor, op_id, desk_terminal_id, cash_cents, timeout_s=None):
    """Top up the card on desk `desk_terminal_id` with cash_cents paid (plus its tier's bonus); return DeskDone."""
    op_id = check_op_id(op_id)
    cash = _cents(cash_cents, "the top-up", minimum=1)
    request = request_of("top_up", desk_terminal_id, cash_cents=cash)
    done = await _earlier(desk, actor, op_id, request)
    if done is not None:
        return done
    uid, keys, report = await _card_on_desk(desk, desk_terminal_id, timeout_s)
    info, slot, write_block = _visitor_card(report, keys, desk_terminal_id)
    card = await _known_card(desk, info.card_no)
    bonus = ledger.bonus_cents(card.tier, cash, desk.bonus_table)
    balance = slot.balance_cents + cash + bonus
    if balance > C.BALANCE_MAX_CENTS:
        raise ServiceError("card %d would hold %d cents, over the card's %d: top up less" % (
            info.card_no, balance, C.BALANCE_MAX_CENTS))
    new = slot.next(balance, slot.spend_day, slot.day_spend_cents, desk_terminal_id)
    op = DeskOperation(op_id, "top_up", request, desk_terminal_id, actor.name, DeskOpState.PENDING, info.card_no,
                       uid, slot.counter, new.counter, _packed([(write_block, new.encode(keys, write_block))]),
                       cash + bonus, bonus, 0, balance, card.tier, None, None, 0.0, None)
    return await _keep_and_write(desk, actor, op, request)


@requires(CARD_ISSUE)
async def issue(desk, actor, op_id, desk_terminal_id, cash_cents, tier=C.TIER_STANDARD, deposit_cents=0,
                expiry_day=0, perms=0xFFFF, timeout_s=None):
    """Issue the stock card on the desk with a first load (cash_cents plus its tier's bonus); return DeskDone."""
    op_id = check_op_id(op_id)
    cash = _cents(cash_cents, "the first load")
    deposit = _cents(deposit_cents, "the deposit")
    if deposit % 100 or deposit > 25500:
        raise ServiceError("a deposit is whole units of 100 cents, at most 25500 (the card holds it, SPEC.md §3.3), "
                           "not %d" % deposit)
    if not 0 <= tier <= 15:
        raise ServiceError("tier %r is none of the park's tiers" % (tier,))
    request = request_of("issue", desk_terminal_id, cash_cents=cash, tier=tier, deposit_cents=deposit,
                       expiry_day=expiry_day, perms=perms)
    done = await _earlier(desk, actor, op_id, request)
    if done is not None:
        return done
    uid, keys, report = await _card_on_desk(desk, desk_terminal_id, timeout_s)
    if report.blocks[C.INFO_BLOCK] != bytes(C.BLOCK_SIZE):
        stored = await desk.storage.desk_operation(op_id)
        if stored is None or stored.uid != uid:     # only a failed issue of this very card may have left its info
            raise ServiceError("the card on desk %d is already issued: take a card from stock" % desk_terminal_id)
    kept = await issue_kept(desk, actor, op_id, request, desk_terminal_id, uid, keys, cash, tier, deposit,
                            expiry_day, perms)
    return await _settle(desk, actor, kept, write=kept.state == DeskOpState.PENDING)


async def issue_kept(desk, actor, op_id, request, desk_terminal_id, uid, keys, cash, tier, deposit, expiry_day, perms,
                     time_s=None, card_no=None):
    """Keep an issue as pending with its card number (card_no, else the next one) and the blocks that carry it."""
    bonus = ledger.bonus_cents(tier, cash, desk.bonus_table)
    op = DeskOperation(op_id, "issue", request, desk_terminal_id, actor.name, DeskOpState.PENDING, card_no, uid, 0, 1,
                       None, cash + bonus, bonus, deposit, cash + bonus, tier, None, None, 0.0, None)
    kept = await _keep(desk, actor, op, request)
    if kept.state != DeskOpState.PENDING or kept.blocks:
        return kept
    # The card number is taken as the operation is kept: the blocks that carry it are made now, and kept too.
    day = C.day_of(int(time.time()) if time_s is None else time_s)
    info = C.CardInfo(kept.card_no, tier, 0, expiry_day, perms, day, deposit)
    slot = C.WalletSlot(1, cash + bonus, 0, day, desk_terminal_id)
    blocks = [(C.INFO_BLOCK, info.encode(keys)), (C.SLOT_BLOCKS[0], slot.encode(keys, C.SLOT_BLOCKS[0]))]
    return await desk.storage.keep_desk_blocks(kept.op_id, _packed(blocks))


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
        raise ServiceError("a card UID is 4 or 7 bytes in hex (8 or 14 digits), not %r" % (uid_hex,))
    keys = C.CardKeys(_need_keys(desk), uid)
    blank = bytes(C.BLOCK_SIZE)
    blocks = {C.INFO_BLOCK: blank, C.SLOT_BLOCKS[0]: blank, C.SLOT_BLOCKS[1]: blank,
              C.TRAILER_BLOCK: C.trailer_block(keys)}
    blocks.update(hub_credits.credit_blocks(keys))     # sector 2: where pending credits land (SPEC.md §3.7)
    await desk.write_card(desk_terminal_id, uid, blocks, actor=actor.name)
    report = await _read(desk, desk_terminal_id, uid, keys, desk.read_back_timeout_s)
    if report is None or report.status != D.DESK_OK:
        raise ServiceError("card %s was written but does not open with its new keys: put it on desk %d again"
                           % (uid.hex(), desk_terminal_id))
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
    try:
        kept = await desk.storage.keep_desk_operation(op, audit=audited(
            actor.name, "desk.pending", when=lambda k: k.op_id == op.op_id and k.state == DeskOpState.PENDING,
            op_id=op.op_id, kind=op.kind, desk_terminal_id=op.desk_terminal_id, uid=op.uid.hex()))
    except ValueError as exc:
        raise ServiceError(str(exc)) from None
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
        if report is not None and _landed(op, report, keys) is False and _unchanged(op, report, keys):
            write = True        # the card is as the operation found it: the write is asked again, same bytes
    if write:
        try:
            report = await desk.link.order(op.desk_terminal_id, D.OP_WRITE, op.uid, D.KEY_B, keys.key_b(),
                                           blocks_of(op), timeout_s=desk.timeout_s)
        except ServiceError:
            report = None
        if report is None or _landed(op, report, keys) is None:
            report = await _read(desk, op.desk_terminal_id, op.uid, keys, desk.read_back_timeout_s) or report
    landed = None if report is None else _landed(op, report, keys)
    if landed is None and op.kind == "top_up" and await desk.storage.counter_claim(op.card_no, op.counter_after):
        landed = False      # another write holds the counter this one would have taken: it never landed
    if landed:
        return await post_confirmed(desk, actor, op)
    if landed is False:
        await desk.storage.fail_desk_operation(op.op_id, "the card was not written", audit=audited(
            actor.name, "desk.failed", op_id=op.op_id, kind=op.kind))
        raise ServiceError("card %s does not hold operation %s (the card left desk %d before it was written): "
                           "nothing was charged; put the card on the desk and try again" % (
                               op.card_no, op.op_id, op.desk_terminal_id))
    raise ServiceError("operation %s is pending: desk %d did not show whether card %s holds the write. Put the card "
                       "back on the desk and retry with the same operation id: the card is read, never charged "
                       "twice" % (op.op_id, op.desk_terminal_id, op.card_no))


def _slot_written(op):
    return [(b, d) for b, d in blocks_of(op) if b in C.SLOT_BLOCKS][0]


def _landed(op, report, keys):
    """True: the card holds the write; False: it holds the state the write started from; None: not known."""
    if len(report.blocks) != len(_STOCK_BLOCKS):
        return None
    block, data = _slot_written(op)
    if report.blocks.get(block) == data:
        return True
    return False if _unchanged(op, report, keys) else None


def _unchanged(op, report, keys):
    """True when the card read back is as the operation found it: its slot in force has counter_before."""
    slots = C.decode_slots(report.blocks.get(C.SLOT_BLOCKS[0], b""), report.blocks.get(C.SLOT_BLOCKS[1], b""),
                           keys) if len(report.blocks) == len(_STOCK_BLOCKS) else None
    if slots is None:
        return False
    if slots == [None, None]:
        return op.kind == "issue"
    current = C.pick_slot(*slots)[0]
    return op.kind == "top_up" and current.counter == op.counter_before


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
                       op.amount_cents, op.balance_after_cents, item=op.desk_terminal_id, discount_cents=op.bonus_cents,
                       card_mac=slot_data[12:], deposit_cents=op.deposit_cents, version=R.RECORD_V2)
        return R.STATUS_COMMITTED, rec.encode(source.record_mac), rec

    def applied(tx, rec):
        if op.kind == "issue":
            tx.set_card_info(op.card_no, op.uid, op.tier, op.deposit_cents)
        posted_in(tx, op.op_id, rec.seq)

    result, rec = await desk.ingest.apply_built(D.DESK_SOURCE_ID, build, applied, audit=audited(
        actor.name, "card." + op.kind, when=lambda r: r[0].counts[RecordStatus.APPLIED] == 1, op_id=op.op_id,
        card_no=op.card_no, amount_cents=op.amount_cents, bonus_cents=op.bonus_cents,
        deposit_cents=op.deposit_cents, desk_terminal_id=op.desk_terminal_id))
    if result.counts[RecordStatus.APPLIED] != 1:
        raise ServiceError("the hub refused the %s record of card %d (%s): operation %s stays pending; tell the "
                           "park's technician" % (op.kind, op.card_no, result.quarantined, op.op_id))
    return DeskDone(await desk.storage.desk_operation(op.op_id))
