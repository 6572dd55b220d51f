"""A card's two purses: the card holds one balance, the hub tracks how much of it is bonus. Pure, integer cents.

Spend order: CASH FIRST, then bonus. Why:
- The bonus is a reward for spending what was paid in; spending cash first
  means a holder who tops up, takes the bonus and asks for the cash back
  cannot walk away with value the bonus paid for: a refund can pay back only
  unspent cash, and with cash spent first no debit ever turned bonus into
  refundable cash.
- Consequence at refund and return: whatever has been spent came off the
  cash first, so the refundable amount is the cash purse (never more than
  was paid in, less what was spent); the bonus a holder has not spent when
  the card comes back is not paid out and goes back to the park.
- It is the order the card's holder can check on a receipt: the bonus shows
  as untouched until the cash is gone.

A replaced card's purse (held_bonus) is the hold's: what the hold holds is
its cash and bonus, spent cash first, whatever the lost card itself still shows.

Invariants (tests/test_domain_desk_purses.py): cash + bonus == balance, no
purse is ever negative, no function here pays bonus out.
"""

import dataclasses

from protocol.card import BALANCE_MAX_CENTS

from parkcard.domain.cents import whole
from parkcard.domain.explained import Cents, Explained


class PurseError(Explained):
    """An operation the purses cannot take; the message says what and what to do."""


def _cents(value, what):
    """value as whole non-negative cents, or PurseError naming `what`."""
    return whole(value, what + " (cents)", PurseError)


@dataclasses.dataclass(frozen=True)
class Purse:
    """A card's balance split into the cash paid in and the bonus given."""

    cash_cents: int = 0
    bonus_cents: int = 0

    def __post_init__(self):
        """Both parts whole, non-negative cents; together within what a card can hold."""
        _cents(self.cash_cents, "the cash purse")
        _cents(self.bonus_cents, "the bonus purse")
        if self.balance_cents > BALANCE_MAX_CENTS:
            raise PurseError("a card holds at most %(most)s, not %(cents)s", most=Cents(BALANCE_MAX_CENTS),
                             cents=self.balance_cents)

    @property
    def balance_cents(self):
        """The card's balance: cash plus bonus."""
        return self.cash_cents + self.bonus_cents


@dataclasses.dataclass(frozen=True)
class Split:
    """How much of an amount is cash and how much bonus."""

    cash_cents: int
    bonus_cents: int

    @property
    def amount_cents(self):
        """The whole amount."""
        return self.cash_cents + self.bonus_cents


def split_debit(purse, amount_cents):
    """The cash and bonus parts of a debit of amount_cents (cash first); PurseError over the balance."""
    _cents(amount_cents, "a debit")
    if amount_cents > purse.balance_cents:
        raise PurseError("a debit of %(cents)s is over the balance of %(balance)s", cents=Cents(amount_cents),
                         balance=Cents(purse.balance_cents))
    cash = min(amount_cents, purse.cash_cents)
    return Split(cash, amount_cents - cash)


def debit(purse, amount_cents):
    """The purse after a debit of amount_cents."""
    part = split_debit(purse, amount_cents)
    return Purse(purse.cash_cents - part.cash_cents, purse.bonus_cents - part.bonus_cents)


def top_up(purse, cash_cents, bonus_cents):
    """The purse after a top-up: the cash paid into the cash purse, the tier's bonus into the bonus purse."""
    return Purse(purse.cash_cents + _cents(cash_cents, "the cash paid"),
                 purse.bonus_cents + _cents(bonus_cents, "the bonus"))


def refundable_cents(purse):
    """What a refund may pay back: the cash purse only, never bonus."""
    return purse.cash_cents


def refund(purse, amount_cents):
    """The purse after amount_cents of cash is refunded; PurseError over the refundable cash."""
    _cents(amount_cents, "a refund")
    if amount_cents > purse.cash_cents:
        raise PurseError("a refund of %(cents)s is over the refundable %(refundable)s (bonus is never "
                         "refunded)", cents=Cents(amount_cents), refundable=Cents(purse.cash_cents))
    return Purse(purse.cash_cents - amount_cents, purse.bonus_cents)


@dataclasses.dataclass(frozen=True)
class Closing:
    """A card coming back: the cash balance paid out, the unspent bonus back to the park; the purse is empty."""

    paid_out_cents: int
    bonus_to_park_cents: int


def close(purse):
    """What a return (card back) does with the purses: pay the cash out, give the bonus back to the park."""
    return Closing(purse.cash_cents, purse.bonus_cents)


def held_bonus(bonus_cents, held_cents, amount_cents=0, spent_cents=0, restored_cents=0):
    """A replaced card's bonus purse after a late record's settlement against its hold (SPEC.md §4.13).

    The hold is spent cash first, so the purse is at most what the hold holds after the settlement (held_cents):
    a late debit that takes the hold's cash spends its bonus. A give-back of amount_cents first brings back the bonus
    its late sale spent (spent_cents, on the card and from the hold), less what its own record restored already
    (restored_cents); the rest of it is cash.
    """
    back = max(0, min(spent_cents, amount_cents) - restored_cents)
    return max(0, min(bonus_cents + back, held_cents))
