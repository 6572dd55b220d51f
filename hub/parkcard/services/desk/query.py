"""What lies on a desk terminal, read for the cashier's screen: a blank card, card stock, or a park card.

The card is read as the operations read it (identify, then its blocks with key
B, SPEC.md §5.9), so what the screen shows is what an operation would find. A
park card is shown with what the card holds (cash in force, deposit, tier) beside
what the hub knows of it (status, recent uses, operations, pending credits).
"""

from protocol import card as C
from protocol import desk as D
from protocol import frames
from protocol.errors import BadMac, Malformed

from parkcard.services.desk.operations import _visitor_card, identify_and_read
from parkcard.services.privileges import CARD_ISSUE, CARD_QUERY, ServiceError, requires
from parkcard.services.trace import card_trace

HISTORY_SHOWN = 10
BLANK, STOCK, PARK_CARD, STAFF_CARD = "blank", "stock", "park_card", "staff_card"
_STOCK_BLOCKS = (C.INFO_BLOCK,) + C.SLOT_BLOCKS


class OnDesk:
    """The card on a desk: its UID and kind (BLANK, STOCK, PARK_CARD or STAFF_CARD), for a park card what it holds,
    for a staff card whose it is (staff: the rows.StaffMember, None when no member holds it)."""

    def __init__(self, uid, kind, info=None, slot=None, card=None, history=(), operations=(), credits=(), staff=None):
        self.uid = uid
        self.kind = kind
        self.staff = staff
        self.card_no = info.card_no if info is not None else None
        self.tier = info.tier if info is not None else None     # what the card holds (booths give its discounts)
        # The hub's tier when the card holds another (a member's tier changed): written at the next top-up or
        # refund, or by parkcard.services.desk.write_tier.
        self.tier_pending = card.tier if card is not None and info is not None and card.tier != info.tier else None
        self.deposit_cents = info.deposit_cents if info is not None else None
        self.cash_cents = slot.balance_cents if slot is not None else None
        self.counter = slot.counter if slot is not None else None
        self.status = card.status if card is not None else None     # None: the hub does not know the card
        self.history = list(history)
        self.operations = list(operations)
        self.credits = list(credits)


@requires(CARD_QUERY)
async def card_on_desk(desk, actor, desk_terminal_id, timeout_s=None):
    """Read the card lying on desk `desk_terminal_id` (OnDesk); ServiceError when there is none or it left."""
    uid, keys, report = await identify_and_read(desk, desk_terminal_id, timeout_s or desk.read_back_timeout_s)
    if report is not None and report.status == D.DESK_NOT_OURS:
        return OnDesk(uid, BLANK)     # the park's key B does not open it: a card from the box
    if report is None or report.status != D.DESK_OK or len(report.blocks) != len(_STOCK_BLOCKS):
        raise ServiceError("the card left desk %(desk)d before it was read: put it back on the desk and read it "
                           "again", desk=desk_terminal_id)
    if report.blocks[C.INFO_BLOCK] == bytes(C.BLOCK_SIZE):
        return OnDesk(uid, STOCK)
    store = desk.storage
    staff_info = _staff_info(report, keys)
    if staff_info is not None:      # no value on it: what it is and whose (SPEC.md §4.14)
        holder = next((m for m in await store.staff() if m.card_no == staff_info.card_no), None)
        return OnDesk(uid, STAFF_CARD, staff_info, card=await store.card(staff_info.card_no), staff=holder)
    info, slot, _block = _visitor_card(report, keys, desk_terminal_id)
    card = await store.card(info.card_no)
    history = await card_trace(store, actor, info.card_no, HISTORY_SHOWN) if card is not None else []
    operations = [op for op in await store.desk_operations() if op.card_no == info.card_no][-HISTORY_SHOWN:]
    credits = [c for c in await store.pending_credits(info.card_no) if c.state in ("granted", "sent")]
    return OnDesk(uid, PARK_CARD, info, slot, card, history, reversed(operations), credits)


def _staff_info(report, keys):
    """The CardInfo of a staff card the report read, else None (any other card is read as a visitor's)."""
    try:
        info = C.CardInfo.decode(report.blocks[C.INFO_BLOCK], keys)
    except (BadMac, Malformed):
        return None
    return info if info.flags & C.FLAG_STAFF else None


@requires(CARD_QUERY)
async def operation(desk, actor, op_id):
    """The desk operation kept under op_id (rows.DeskOperation), or None: what a retry would resume."""
    return await desk.storage.desk_operation(op_id)


@requires(CARD_ISSUE)
async def desk_terminals(store, actor):
    """[(terminal id, name, online)] of the park's desk terminals, by id: where a cashier may serve (the desk
    page's own check: who issues no card serves none)."""
    return [(t.id, t.name, bool(t.online)) for t in await store.terminals()
            if t.role == frames.ROLE_DESK and t.id != D.DESK_SOURCE_ID]
