"""The ingest decisions, pure: duplicate, conflict, booth refunds, clone, chain and uncertain (SPEC.md §4.4-4.8).

The rules read what the hub already holds through a small port, IngestView:
the store's write transaction is one (parkcard.store.interface.WriteTx), a dict is
another (the domain tests). They decide; the ingest pipeline writes what they
decided (records, alarms, the blacklist) in the same transaction.

- Duplicate or conflict: a (terminal, seq) already stored with the same
  bytes is a duplicate (success); a committed or voided copy of a stored
  uncertain record settles it. Other bytes for the key are a conflict.
- Clone: two different records with the same (card, counter) mean a cloned
  or restored card (SPEC.md §1.5): the offline sale is a fact and is applied,
  the card is alarmed and blacklisted.
- Chain: the previous counter's balance_after plus this record's change must
  equal this balance_after, and this balance_after plus the next counter's
  change its balance_after (an alarm otherwise, nothing refused).
- Uncertain (SPEC.md §4.8): another record holding the record's counter
  means it did not happen (voided). It happened when the record holding the
  next counter continues its chain (its balance before, balance_after minus
  its change, is the uncertain record's balance_after): the card was read
  with the uncertain write in force. Until one of the two is known it stays
  open. A newer counter alone decides nothing: the record that holds this one
  may still be on its way from another terminal, and deciding early applied
  a write that never landed and alarmed an honest card as a clone.
  Two writes of one counter that leave the same slot (a torn write retried
  at the same terminal: same counter, balance and card MAC) cannot be told
  apart by the chain: the uncertain one is applied when the next counter
  arrives first, and the retry raises the clone alarm when it comes (known,
  open: undoing an applied record needs a reversing posting).
"""

from typing import NamedTuple, Protocol

from protocol import frames
from protocol import record as R
from protocol import staff as S
from protocol.card import COUNTER_MODULUS

from parkcard.domain.ledger import DESK_ONLY_KINDS, card_delta
from parkcard.domain.lifecycle import UPLOAD_STATUS, QuarantineReason, RecordStatus, UncertainOutcome


class StoredRecord(NamedTuple):
    """A record the hub holds, as the rules see it."""

    id: int
    raw: bytes
    status: str
    card_no: int
    counter: int


class Claim(NamedTuple):
    """The record that holds a (card, counter): written by it, with its change and the balance it left."""

    terminal_id: int
    seq: int
    delta_cents: int
    balance_after_cents: int


class IngestView(Protocol):
    """What the rules read of the hub's state, inside the transaction that applies the batch."""

    def record(self, terminal_id, seq):
        """(id, raw, status, card_no, counter) of the stored record, or None."""

    def counter_rows(self, card_no, counters):
        """{counter: the Claim holding it} of the given counters that are held (a row with Claim's field names)."""

    def refund_of(self, terminal_id, sale_seq):
        """The seq of the refund that claimed this sale, or None."""

    def last_shift_seq(self, terminal_id, below_seq):
        """The seq of the terminal's last applied shift record (kind 18) below below_seq, or None."""

    def staff_merchant(self, card_no):
        """The merchant whose staff member holds staff card card_no, or None."""


DUPLICATE = "duplicate"
CONFLICT = "conflict"


class Resent(NamedTuple):
    """What an upload of a seq already stored is: DUPLICATE or CONFLICT, and whether it settles an uncertain one."""

    outcome: str
    settles: object = None     # None: nothing to settle; True / False: the stored uncertain record happened or not


class CardWrite(NamedTuple):
    """The clone and chain rules' verdict on a record's card write."""

    counter: int
    delta_cents: int
    clone_of: object           # the Claim already holding this counter, or None
    chain_breaks: list         # [(terminal_id, seq, detail)] of the records whose chain does not add up


def next_counter(counter):
    """The counter a card's next write takes (16-bit, SPEC.md §3.5)."""
    return (counter + 1) % COUNTER_MODULUS


def previous_counter(counter):
    """The counter of the card's write before this one."""
    return (counter - 1) % COUNTER_MODULUS


def counters_around(counter):
    """(previous, this, next) counter of a card write: the claims its clone and chain rules read."""
    return (counter - 1) % COUNTER_MODULUS, counter, (counter + 1) % COUNTER_MODULUS


def resent(existing, raw, upload_status):
    """Judge an upload of (terminal, seq) already stored as `existing` (a StoredRecord); return Resent."""
    if existing.raw != raw:
        return Resent(CONFLICT)
    if existing.status == RecordStatus.UNCERTAIN and upload_status in (R.STATUS_COMMITTED, R.STATUS_VOIDED):
        return Resent(DUPLICATE, upload_status == R.STATUS_COMMITTED)
    return Resent(DUPLICATE)


def new_status(rec, upload_status):
    """The status a new record is stored with, or None for an upload status the hub does not know."""
    status = UPLOAD_STATUS.get(upload_status)
    if rec.kind in (R.KIND_ATTEMPT, R.KIND_SHIFT) and status == RecordStatus.UNCERTAIN:
        return RecordStatus.APPLIED     # nothing was written to the card: there is nothing to be unsure of
    return status


def booth_refusal(view, role, terminal_id, rec):
    """(reason, detail) when a booth may not credit a card so (SPEC.md §4.4), else (None, None)."""
    if role == frames.ROLE_DESK:
        return None, None
    if rec.kind in DESK_ONLY_KINDS:
        return QuarantineReason.CREDIT_FROM_BOOTH, "kind %d from a %s terminal" % (
            rec.kind, frames.ROLE_NAMES.get(role, "?"))
    if rec.kind != R.KIND_REFUND:
        return None, None
    sale = view.record(terminal_id, rec.ref_seq) if rec.ref_seq else None
    sale_rec = R.Record.decode(sale[1]) if sale is not None else None
    if sale_rec is None or sale[2] != RecordStatus.APPLIED or sale_rec.kind != R.KIND_DEBIT \
            or sale_rec.card_no != rec.card_no:
        return QuarantineReason.REFUND_UNMATCHED, "refund seq %d: ref_seq %d is no applied sale of card %d at " \
            "term-%d" % (rec.seq, rec.ref_seq, rec.card_no, terminal_id)
    if rec.amount_cents > sale_rec.amount_cents:
        return QuarantineReason.REFUND_OVER_SALE, "refund %d cents over the sale's %d (seq %d)" % (
            rec.amount_cents, sale_rec.amount_cents, rec.ref_seq)
    earlier = view.refund_of(terminal_id, rec.ref_seq)
    if earlier is not None:
        return QuarantineReason.REFUND_TWICE, "sale seq %d already refunded by seq %d" % (rec.ref_seq, earlier)
    return None, None


def reversal_refusal(view, terminal_id, merchant_id, rec):
    """(reason, detail) when a reversal (kind 19) is not one whole sale of the open shift authorised by its
    staff card (SPEC.md §4.15), else (None, None)."""
    sale_seq, staff_no = S.reversal_of(rec)
    sale = view.record(terminal_id, sale_seq) if rec.item else None
    sale_rec = R.Record.decode(sale[1]) if sale is not None else None
    if sale_rec is None or sale[2] != RecordStatus.APPLIED or sale_rec.kind != R.KIND_DEBIT \
            or sale_rec.card_no != rec.card_no:
        return QuarantineReason.REVERSAL_UNMATCHED, "reversal seq %d: seq %d is no applied sale of card %d at " \
            "term-%d" % (rec.seq, sale_seq, rec.card_no, terminal_id)
    if rec.amount_cents != sale_rec.amount_cents:
        return QuarantineReason.REVERSAL_AMOUNT, "reversal of %d cents, the sale (seq %d) was %d: a reversal gives " \
            "the whole sale back" % (rec.amount_cents, sale_seq, sale_rec.amount_cents)
    tag = S.tag_of(rec)
    shift_seq = view.last_shift_seq(terminal_id, rec.seq)
    opening = view.record(terminal_id, shift_seq) if shift_seq is not None and shift_seq < sale_seq else None
    shift = R.Record.decode(opening[1]) if opening is not None else None
    if S.tag_of(sale_rec) == S.TAG_NONE or S.tag_of(sale_rec) != tag or shift is None \
            or S.shift_fields(shift)[:2] != (S.PHASE_OPEN, tag):
        return QuarantineReason.REVERSAL_SHIFT, "reversal seq %d: sale seq %d is not of the shift open at term-%d " \
            "(tag %d, sale's %d)" % (rec.seq, sale_seq, terminal_id, tag, S.tag_of(sale_rec))
    if staff_no != shift.card_no or view.staff_merchant(staff_no) != merchant_id:
        return QuarantineReason.REVERSAL_STAFF, "reversal seq %d: staff card %d did not open the shift (card %d) " \
            "or is no staff card of merchant %d" % (rec.seq, staff_no, shift.card_no, merchant_id)
    earlier = view.refund_of(terminal_id, sale_seq)
    if earlier is not None:
        return QuarantineReason.REFUND_TWICE, "sale seq %d already given back by seq %d" % (sale_seq, earlier)
    return None, None


def given_back_seq(rec):
    """The seq of the sale a booth refund or reversal claims (SPEC.md §4.4, §4.15)."""
    return S.reversal_of(rec)[0] if rec.kind == R.KIND_REVERSAL else rec.ref_seq


class CreditDelivery(NamedTuple):
    """What a credit record (kind 15) delivers: the credits' numbers, and the cents new to the card or seen before."""

    credit_nos: tuple
    fresh_cents: int        # credits the card had not received: from park:pending_credits
    again_cents: int        # credits delivered before by another record: a restored card, the park's loss
    moved_cents: int = 0    # a lost card's credits moved to the card in use (SPEC.md §4.13): no value moves here
    bonus_cents: int = 0    # of the fresh credits, what lands in the card's bonus purse (SPEC.md §8.1)


def credit_delivery(credits, rec):
    """Judge a credit record against the card's credits at the hub (SPEC.md §8.4): (CreditDelivery, None, None)
    or (None, reason, detail) when the record is quarantined.

    credits: {credit_no: (amount_cents, delivered[, bonus_cents, moved])} of the card's credits the hub granted
    and did not cancel, or cancelled by their move to the card in use (parkcard.store.credits.CardCredit).
    The record delivers credits discount_cents + 1 .. item (the card's marker before and after).
    """
    first, last = rec.discount_cents + 1, rec.item
    numbers = tuple(range(first, last + 1))
    unknown = [n for n in numbers if n not in credits]
    if not numbers or unknown:
        return None, QuarantineReason.CREDIT_UNKNOWN, "card %d: credits %d..%d, the hub granted no credit %s" % (
            rec.card_no, first, last, unknown[0] if unknown else "in an empty range")
    total = sum(credits[n][0] for n in numbers)
    if total != rec.amount_cents:
        return None, QuarantineReason.CREDIT_MISMATCH, "card %d: credits %d..%d are %d cents, the record adds %d" % (
            rec.card_no, first, last, total, rec.amount_cents)
    moved = [n for n in numbers if credits[n][3:4] == (True,)]
    again = sum(credits[n][0] for n in numbers if credits[n][1] and n not in moved)
    moved_cents = sum(credits[n][0] for n in moved)
    bonus = sum(credits[n][2] for n in numbers if credits[n][2:3] and not credits[n][1] and n not in moved)
    return CreditDelivery(numbers, total - again - moved_cents, again, moved_cents, bonus), None, None


def card_write(view, rec):
    """Judge the card write of a record being applied (clone and chain rules); return CardWrite.

    An attempt record writes nothing (it repeats the counter in force): the caller does not ask.
    """
    around = counters_around(rec.card_counter)
    prev_k, k, next_k = around
    claims = view.counter_rows(rec.card_no, around)
    delta = card_delta(rec)
    breaks = []
    if rec.kind == R.KIND_ISSUE:
        if rec.balance_after_cents != rec.amount_cents:
            breaks.append((rec.terminal_id, rec.seq, "issue balance %d != first load %d" % (
                rec.balance_after_cents, rec.amount_cents)))
    elif prev_k in claims and claims[prev_k].balance_after_cents + delta != rec.balance_after_cents:
        breaks.append((rec.terminal_id, rec.seq, "counter %d: %d %+d != %d" % (
            k, claims[prev_k].balance_after_cents, delta, rec.balance_after_cents)))
    nxt = claims.get(next_k)
    if nxt is not None and rec.balance_after_cents + nxt.delta_cents != nxt.balance_after_cents:
        breaks.append((nxt.terminal_id, nxt.seq, "counter %d: %d %+d != %d" % (
            next_k, rec.balance_after_cents, nxt.delta_cents, nxt.balance_after_cents)))
    return CardWrite(k, delta, claims.get(k), breaks)


def clone_detail(rec, clone_of):
    """The alarm text of a counter used twice."""
    return "card %d counter %d used by term-%d seq %d and term-%d seq %d" % (
        rec.card_no, rec.card_counter, clone_of.terminal_id, clone_of.seq, rec.terminal_id, rec.seq)


def decide_uncertain(view, rec):
    """The counter rule for one uncertain record (see the module doc); return an UncertainOutcome."""
    k = rec.card_counter
    next_k = next_counter(k)
    claims = view.counter_rows(rec.card_no, (k, next_k))
    if k in claims:
        return UncertainOutcome.VOIDED
    nxt = claims.get(next_k)
    if nxt is not None and nxt.balance_after_cents - nxt.delta_cents == rec.balance_after_cents:
        return UncertainOutcome.HAPPENED
    return UncertainOutcome.OPEN
