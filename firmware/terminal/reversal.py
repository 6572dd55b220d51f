"""A booth gives one sale of the open shift back to its card, the shift's staff card tapped first (protocol/SPEC.md
§4.15). Loaded by roles/pos.py only when a sale is reversed.

Journal first, as a debit (SPEC.md §1): the reversal record (kind 19) is durable before the card is written,
committed once the card holds it, uncertain when that is not known (settled on the card's next tap).
"""

import struct

from protocol import card
from protocol.record import KIND_REVERSAL
from terminal import wallet as w
from terminal.compat import const
from terminal.shift import SALE_SIZE, SALES

OTHER_CARD = "other_card"       # the card tapped is not the one that paid the sale
NOT_STAFF = "not_staff"         # the card tapped to authorise is not the open shift's staff card
_DISTANCE_MAX = 0xFFFF          # the record's item field: seq - the sale's seq (SPEC.md §4.15)
_SALES_READ = const(20)         # sales read at a time by a lookup: a 240-byte buffer


def read_staff(wallet):
    """Read the card in the field as a staff card: a Result with info and uid, NOT_STAFF for any other card."""
    if wallet.park_keys is None:
        return w.Result(False, w.NOT_READY)
    cr, refused = wallet._tap()
    if refused:
        return refused
    wallet._finish()
    found = w.Result(bool(cr.info.flags & card.FLAG_STAFF), None, cr.info.card_no, info=cr.info)
    if not found.ok:
        found.reason = NOT_STAFF
    found.uid = cr.uid
    return found


def reverse(wallet, sale, staff_no, staff_uid, now, retry_seq=0):
    """Give sale [seq, card_no, amount_cents, reversed] back to the card in the field; return a Result.

    The staff card still in the field is no card yet (the vendor swaps the cards). retry_seq: this reversal's
    record whose write was uncertain; when the card shows it landed, it is approved without a second credit."""
    if wallet.journal.free_records() < 2:
        return w.Result(False, w.JOURNAL_FULL)
    seq, card_no, amount = sale[0], sale[1], sale[2]
    if wallet.journal.last_seq() + 1 - seq > _DISTANCE_MAX:
        return w.Result(False, OTHER_CARD)
    cr, refused = wallet._tap()
    if refused:
        return refused
    if cr.uid == staff_uid:
        wallet._finish()
        return w.Result(False, w.NO_CARD)
    if wallet._resolve_uncertain(cr, retry_seq):
        wallet._finish()        # SPEC.md §3.5: the uncertain write is on the card; never credit twice
        return w.Result(True, None, cr.info.card_no, cr.slot.balance_cents, amount, retry_seq, cr.info)
    slot = cr.slot
    info = cr.info
    if info.card_no != card_no:
        wallet._finish()
        return w.Result(False, OTHER_CARD, info.card_no, slot.balance_cents, info=info)
    if slot.locked or info.flags & (card.FLAG_RETURNED | card.FLAG_ADMIN) \
            or slot.balance_cents + amount > card.BALANCE_MAX_CENTS:
        wallet._finish()
        return w.Result(False, w.NOT_WALLET, info.card_no, slot.balance_cents, info=info)
    today = card.day_of(now)
    spent = slot.spent_on(today)
    new = slot.next(slot.balance_cents + amount, slot.spend_day, spent - amount if spent > amount else 0,
                    wallet.terminal_id)
    item = wallet.journal.last_seq() + 1 - seq
    return wallet._write(cr, new, KIND_REVERSAL, amount, item, staff_no, now)


def shift_sale(shift, seq):
    """(seq, card_no, amount_cents) of this shift's sale seq, or None: read from the sales file by seq."""
    if not shift.is_open() or seq <= shift.open_seq:
        return None
    for kept in shift.unsaved:
        if kept[0] == seq:
            return kept
    buf = bytearray(SALE_SIZE * _SALES_READ)
    try:
        f = open(shift.path(SALES), "rb")
    except OSError:
        return None
    try:
        while True:
            got = f.readinto(buf)
            if not got:
                return None
            for at in range(0, got - got % SALE_SIZE, SALE_SIZE):
                found = struct.unpack_from(">III", buf, at)
                if found[0] == seq:
                    return found
                if found[0] > seq:
                    return None         # appended in seq order
    finally:
        f.close()
