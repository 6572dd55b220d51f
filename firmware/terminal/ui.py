"""What the vendor sees and hears: screen texts and buzzer patterns for each outcome."""

from terminal import wallet as w
from terminal.compat import const

# Buzzer patterns: on_ms, off_ms, on_ms, off_ms, ... in one flat tuple (one object on the heap, not one a pair).
BEEP_APPROVED = (120, 0)
BEEP_REFUSED = (80, 60, 80, 60, 80, 0)
BEEP_ERROR = (600, 0)

# What the screen says for each refusal reason (terminal/wallet.py's and terminal/purse.py's words, at most 16
# characters: 128 px of 8x8 font): one constant string in the image, "|reason=Text" for each, in place of a dict
# of nineteen on every terminal's heap. reason_text() looks one up at the moment it is shown.
_REASON_TEXT = const("|no_card=No card|read_failed=Tap again|bad_mac=Card invalid|not_wallet=Not a pay card"
                     "|returned=Card returned|blacklisted=Card blocked|expired=Card expired|permission=Not valid here"
                     "|not_allowed=Card not valid|members_only=Members only|over_tx_cap=Over limit"
                     "|over_daily_cap=Daily limit|insufficient=Low balance|stale=Sync needed"
                     "|offline_limit=Offline limit|journal_full=Memory full|not_ready=Not authorised"
                     "|uncertain=Tap card again|bad_amount=Bad amount|")


def reason_text(reason):
    """The screen text of a refusal reason; the reason itself when it has none."""
    at = _REASON_TEXT.find("|%s=" % reason)
    if at < 0:
        return reason
    at += len(reason) + 2
    return _REASON_TEXT[at:_REASON_TEXT.find("|", at)]


def money(cents):
    """Format integer cents as 12.34 without floats."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return "%s%d.%02d" % (sign, cents // 100, cents % 100)


class UI:
    """Screen and buzzer of one terminal."""

    def __init__(self, display, buzzer):
        self.display = display
        self.buzzer = buzzer

    def idle(self, role_name, price_cents=0):
        """Idle screen: the role, and the price for fixed-price terminals."""
        self.display.show("ParkCard " + role_name, ("Price " + money(price_cents)) if price_cents else "Ready")

    def result(self, result):
        """Show a tap's outcome and sound its pattern."""
        if result.ok:
            self.display.show("APPROVED " + money(result.amount_cents), "Balance " + money(result.balance_cents))
            self.buzzer.play(BEEP_APPROVED)
        else:
            self.display.show("REFUSED", reason_text(result.reason))
            self.buzzer.play(BEEP_ERROR if result.reason == w.JOURNAL_FULL else BEEP_REFUSED)

    def message(self, line1, line2=""):
        """Any two-line message (authorisation, locked terminal)."""
        self.display.show(line1, line2)
