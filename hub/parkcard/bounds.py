"""Limits of every operator input that reaches a card, a record or a frame, checked where it enters.

The numbers come from the protocol's codecs (protocol.card, protocol.config,
protocol.frames), named there once; this module gives them the words a person
reads. The CLI uses them as click parameter types (BoundParam, NameParam); a
service method checks them with Bound.check before anything is stored.
"""

import click

from protocol import card, config, hub_frames

from parkcard.domain.explained import Explained, Word

NAME_LENGTH_MAX = 64           # terminal and merchant names: one line of a table


class BoundError(Explained):
    """An input outside its limit; the message says what is allowed (the input's name and the reason for its range
    are words of the catalogs)."""


class Bound:
    """An integer input with a name and an inclusive range."""

    def __init__(self, what, low, high, why=""):
        self.what = what
        self.low = low
        self.high = high
        self.why = why

    def allowed(self):
        """What is allowed, in words."""
        return "%s is a whole number from %d to %d%s" % (self.what, self.low, self.high,
                                                           " (%s)" % self.why if self.why else "")

    def check(self, value):
        """Return value if it is an int within the range; raise BoundError saying what is allowed."""
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            if self.why:
                raise BoundError("%(value)r is out of range: %(what)s is a whole number from %(low)d to %(high)d "
                                 "(%(why)s)", value=value, what=Word(self.what), low=self.low, high=self.high,
                                 why=Word(self.why))
            raise BoundError("%(value)r is out of range: %(what)s is a whole number from %(low)d to %(high)d",
                             value=value, what=Word(self.what), low=self.low, high=self.high)
        return value


CARD_NO = Bound("a card number", card.CARD_NO_MIN, card.CARD_NO_MAX, "32 bits on the card and the wire")
TERMINAL_ID = Bound("a terminal id", hub_frames.TERMINAL_ID_MIN, hub_frames.TERMINAL_ID_MAX)
MERCHANT_ID = Bound("a merchant id", 1, hub_frames.MERCHANT_ID_MAX, "16 bits in the terminal's config")
PARK_ID = Bound("a park id", 1, hub_frames.PARK_ID_MAX)
FIXED_PRICE_CENTS = Bound("a fixed price", 0, card.BALANCE_MAX_CENTS,
                          "cents, at most what a card can hold")
COMMISSION_BPS = Bound("a commission", 0, 10000, "basis points: 10000 is 100 %")
PORT = Bound("a port", 1, 65535)
CREDIT_CENTS = Bound("a credit", 1, card.BALANCE_MAX_CENTS, "cents, at most what a card can hold")
CREDIT_NO = Bound("a credit number", 1, 0xFFFF, "16 bits on the card (SPEC.md §3.7)")


def check_name(value, what="a name"):
    """Return the name stripped; raise BoundError if it is empty, too long or more than one line."""
    name = (value or "").strip()
    if not name or len(name) > NAME_LENGTH_MAX or not name.isprintable():
        raise BoundError("%(what)s must be 1 to %(most)d printable characters on one line, not %(value)r",
                         what=Word(what), most=NAME_LENGTH_MAX, value=value)
    return name


class BoundParam(click.ParamType):
    """A click parameter checked against a Bound: a bad value is a usage error (exit 2) saying what is allowed."""

    name = "integer"

    def __init__(self, bound):
        self.bound = bound

    def convert(self, value, param, ctx):
        """Parse and range-check one value."""
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(str(value).strip(), 10)
            except ValueError:
                self.fail("%r is not a whole number: %s" % (value, self.bound.allowed()), param, ctx)
        try:
            return self.bound.check(number)
        except BoundError as exc:
            self.fail(str(exc), param, ctx)


class NameParam(click.ParamType):
    """A click parameter for a name: non-empty, one line, at most NAME_LENGTH_MAX characters."""

    name = "text"

    def convert(self, value, param, ctx):
        """Strip and check one name."""
        try:
            return check_name(value)
        except BoundError as exc:
            self.fail(str(exc), param, ctx)
