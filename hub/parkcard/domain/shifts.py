"""Cashier shift arithmetic: a counted float, desk operations by payment method, the close and its Z report.

Pure, integer cents. A shift opens with the float counted into the drawer;
every desk operation of the shift is a DeskOp (what was received from the
holder, what was paid to them, by which payment method); only the cash
method moves the drawer. At the close the cashier counts the drawer: the
cash expected is float + cash received - cash paid out, the difference is
counted - expected (positive: over, negative: short). A shift does not close
while one of its operations is pending (its card write not yet confirmed),
and the Z report is a value computed from the shift's operations only.
"""

import dataclasses

from parkcard.domain.cents import whole
from parkcard.domain.explained import Cents, Explained

CASH = "cash"       # the one payment method that moves the drawer; the others (card, mobile) are park settings

ISSUE = "issue"
TOP_UP = "top_up"
REFUND = "refund"
RETURN = "return"
TICKET = "ticket"           # a ticket sold onto a card at the desk (SPEC.md §3.8), its price paid there
CREDIT = "credit"           # a pending credit granted at the desk (SPEC.md §8), paid there: a top-up without the card
REPLACE = "replace"     # a lost card replaced: its balance moves card to card, no money at the drawer
KINDS = (ISSUE, TOP_UP, REFUND, RETURN, TICKET, CREDIT, REPLACE)


class ShiftError(Explained):
    """A shift step that cannot be done as asked; the message says what to do."""


def _cents(value, what):
    """value as whole non-negative cents, or ShiftError naming `what`."""
    return whole(value, what, ShiftError)


@dataclasses.dataclass(frozen=True)
class DeskOp:
    """One desk operation's money: what the holder paid for the load, bonus, deposits, fee, what was paid back."""

    kind: str
    method: str
    load_cents: int = 0             # paid in for value on the card (issue, top-up), bonus not included
    bonus_cents: int = 0            # bonus given on top of the load
    deposit_in_cents: int = 0
    paid_out_cents: int = 0         # balance paid back (refund, return), after the fee
    fee_cents: int = 0
    deposit_out_cents: int = 0
    bonus_back_cents: int = 0       # unspent bonus gone back to the park (return)
    price_cents: int = 0            # a ticket's price, paid at the desk

    def __post_init__(self):
        """A known kind, a named method, whole non-negative cents, and only the fields the kind moves."""
        if self.kind not in KINDS:
            raise ShiftError("%(kind)r is not a desk operation: one of %(kinds)s", kind=self.kind,
                             kinds=", ".join(KINDS))
        if not isinstance(self.method, str) or not self.method.strip():
            raise ShiftError("a desk operation needs a payment method (e.g. %(method)s)", method=CASH)
        for field in dataclasses.fields(self)[2:]:
            _cents(getattr(self, field.name), field.name)
        incoming = self.load_cents or self.bonus_cents or self.deposit_in_cents or self.price_cents
        outgoing = self.paid_out_cents or self.fee_cents or self.deposit_out_cents or self.bonus_back_cents
        if self.kind in (ISSUE, TOP_UP, TICKET, CREDIT) and outgoing or self.kind in (REFUND, RETURN) and incoming:
            raise ShiftError("a %(kind)s moves money one way only: %(op)r", kind=self.kind, op=self)
        if self.kind != TICKET and self.price_cents or self.kind == TICKET and (
                self.load_cents or self.bonus_cents or self.deposit_in_cents):
            raise ShiftError("a ticket sale, and only a ticket sale, is paid a price: %(op)r", op=self)
        if self.kind == TOP_UP and self.load_cents == 0:
            raise ShiftError("a top-up loads a positive amount")
        if self.kind == REFUND and (self.deposit_out_cents or self.bonus_back_cents):
            raise ShiftError("a refund pays back cash balance only: no deposit, no bonus")

    @property
    def received_cents(self):
        """What the holder paid at the desk."""
        return self.load_cents + self.deposit_in_cents + self.price_cents

    @property
    def paid_cents(self):
        """What the desk paid the holder."""
        return self.paid_out_cents + self.deposit_out_cents


@dataclasses.dataclass(frozen=True)
class Shift:
    """An open shift: its number, the counted float, the operations so far."""

    number: int
    float_cents: int
    ops: tuple = ()

    def __post_init__(self):
        """A positive shift number, a whole float."""
        whole(self.number, "a shift number", ShiftError, 1)
        _cents(self.float_cents, "the float (cents)")

    @property
    def cash_expected_cents(self):
        """What the drawer should hold: float + cash received - cash paid out."""
        cash = [op for op in self.ops if op.method == CASH]
        return self.float_cents + sum(op.received_cents for op in cash) - sum(op.paid_cents for op in cash)


def refund_op(method, quote):
    """The DeskOp of a refund paid by method (quote: parkcard.domain.refund_rules.RefundQuote)."""
    return DeskOp(REFUND, method, paid_out_cents=quote.paid_cents, fee_cents=quote.fee_cents)


def return_op(method, quote):
    """The DeskOp of a card return paid by method (quote: parkcard.domain.refund_rules.ReturnQuote)."""
    return DeskOp(RETURN, method, paid_out_cents=quote.balance_cents - quote.fee_cents, fee_cents=quote.fee_cents,
                  deposit_out_cents=quote.deposit_cents, bonus_back_cents=quote.bonus_to_park_cents)


# How a kept desk operation (its kind; amount on the card or a ticket's price, bonus in it, deposit, fee)
# counts in a shift: a kind of desk operation adds its entry here.
def _issued(method, amount_cents, bonus_cents, deposit_cents, fee_cents):
    return DeskOp(ISSUE, method, load_cents=amount_cents - bonus_cents, bonus_cents=bonus_cents,
                  deposit_in_cents=deposit_cents)


def _topped_up(method, amount_cents, bonus_cents, deposit_cents, fee_cents):
    return DeskOp(TOP_UP, method, load_cents=amount_cents - bonus_cents, bonus_cents=bonus_cents,
                  deposit_in_cents=deposit_cents)


def _ticket_sold(method, amount_cents, bonus_cents, deposit_cents, fee_cents):
    return DeskOp(TICKET, method, price_cents=amount_cents, bonus_cents=bonus_cents, deposit_in_cents=deposit_cents)


def _credit_granted(method, amount_cents, bonus_cents, deposit_cents, fee_cents):
    return DeskOp(CREDIT, method, load_cents=amount_cents, bonus_cents=bonus_cents, deposit_in_cents=deposit_cents)


def _refunded(method, amount_cents, bonus_cents, deposit_cents, fee_cents):
    # amount: taken off the card; the holder is paid it less the fee (SPEC.md §4.12)
    return DeskOp(REFUND, method, paid_out_cents=amount_cents - fee_cents, fee_cents=fee_cents)


def _returned(method, amount_cents, bonus_cents, deposit_cents, fee_cents):
    # amount: the card's whole balance; bonus: the unspent bonus gone back to the park, never paid out
    return DeskOp(RETURN, method, paid_out_cents=amount_cents - bonus_cents - fee_cents, fee_cents=fee_cents,
                  deposit_out_cents=deposit_cents, bonus_back_cents=bonus_cents)


def _staff_card(method, amount_cents, bonus_cents, deposit_cents, fee_cents):
    return DeskOp(ISSUE, method)        # a staff card: issued at the desk, no value, no deposit


def _replaced(method, amount_cents, bonus_cents, deposit_cents, fee_cents):
    return DeskOp(REPLACE, method)      # the lost card's balance and deposit move onto the new card (SPEC.md §4.13)


_OF_KIND = {ISSUE: _issued, TOP_UP: _topped_up, TICKET: _ticket_sold, CREDIT: _credit_granted, REFUND: _refunded,
            RETURN: _returned, "staff_card": _staff_card,
            REPLACE: _replaced}


def desk_op_of(kind, method, amount_cents, bonus_cents, deposit_cents, fee_cents=0):
    """The DeskOp of a desk operation as the hub keeps it (parkcard.store.rows.DeskOperation's amounts)."""
    make = _OF_KIND.get(kind)
    if make is None:
        raise ShiftError("a desk operation of kind %(kind)r has no place in a shift's figures", kind=kind)
    return make(method, amount_cents, bonus_cents, deposit_cents, fee_cents)


def open_shift(number, float_cents):
    """A shift opened with float_cents counted into the drawer."""
    return Shift(number, float_cents)


def record(shift, op):
    """The shift with op added; a cash payout beyond what the drawer holds is refused."""
    if not isinstance(op, DeskOp):
        raise ShiftError("a shift records DeskOp values, not %(op)r", op=op)
    if op.method == CASH and op.paid_cents > shift.cash_expected_cents:
        raise ShiftError("the drawer holds %(drawer)s, not the %(cents)s to pay out: pay by another method or "
                         "add cash", drawer=Cents(shift.cash_expected_cents), cents=Cents(op.paid_cents))
    return dataclasses.replace(shift, ops=shift.ops + (op,))


@dataclasses.dataclass(frozen=True)
class MethodTotal:
    """Count and cents of one kind of operation paid by one method."""

    count: int = 0
    cents: int = 0


@dataclasses.dataclass(frozen=True)
class ZReport:
    """A closed shift's figures, computed from its operations (immutable once made)."""

    shift_number: int
    float_cents: int
    issues: int
    issue_loads: tuple          # ((method, MethodTotal), ...) of the loads paid at issue, by method name
    top_ups: tuple              # ((method, MethodTotal), ...) of the top-ups' loads, by method name
    bonus_given_cents: int
    refunds: int
    refunds_paid_cents: int
    returns: int
    returns_paid_cents: int
    fees_cents: int
    bonus_back_cents: int
    deposits_in_cents: int
    deposits_out_cents: int
    cash_expected_cents: int
    cash_counted_cents: int
    tickets: int = 0
    tickets_cents: int = 0
    credits: int = 0                # pending credits granted at the desk
    credits_cents: int = 0
    replacements: int = 0           # lost cards replaced (no money at the drawer)

    @property
    def difference_cents(self):
        """Counted - expected: positive over, negative short."""
        return self.cash_counted_cents - self.cash_expected_cents


def _by_method(ops):
    """((method, MethodTotal), ...) of the ops' loads, sorted by method."""
    totals = {}
    for op in ops:
        seen = totals.get(op.method, MethodTotal())
        totals[op.method] = MethodTotal(seen.count + 1, seen.cents + op.load_cents)
    return tuple(sorted(totals.items()))


def close_shift(shift, counted_cents, pending_ops=0):
    """The Z report of shift closed with counted_cents in the drawer; refused while an operation is pending."""
    _cents(counted_cents, "the counted cash (cents)")
    if pending_ops:
        raise ShiftError("%(pending)d operation(s) of shift %(shift)d are pending: finish them (the card write must "
                         "be confirmed) before closing", pending=pending_ops, shift=shift.number)
    of = {kind: [op for op in shift.ops if op.kind == kind] for kind in KINDS}
    return ZReport(
        shift.number, shift.float_cents, len(of[ISSUE]), _by_method(of[ISSUE]), _by_method(of[TOP_UP]),
        sum(op.bonus_cents for op in shift.ops),
        len(of[REFUND]), sum(op.paid_out_cents for op in of[REFUND]),
        len(of[RETURN]), sum(op.paid_out_cents for op in of[RETURN]),
        sum(op.fee_cents for op in shift.ops), sum(op.bonus_back_cents for op in shift.ops),
        sum(op.deposit_in_cents for op in shift.ops), sum(op.deposit_out_cents for op in shift.ops),
        shift.cash_expected_cents, counted_cents, len(of[TICKET]), sum(op.price_cents for op in of[TICKET]),
        len(of[CREDIT]), sum(op.load_cents for op in of[CREDIT]), len(of[REPLACE]))
