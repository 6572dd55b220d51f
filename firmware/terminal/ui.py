"""What the vendor sees and hears: screen texts and buzzer patterns for each outcome."""

from terminal import wallet as w
from terminal.compat import const

# Buzzer patterns: on_ms, off_ms, on_ms, off_ms, ... in one flat tuple (one object on the heap, not one a pair).
BEEP_APPROVED = (120, 0)
BEEP_REFUSED = (80, 60, 80, 60, 80, 0)
BEEP_ERROR = (600, 0)

# What the screen says for each refusal reason (terminal/wallet.py's and terminal/purse.py's words, a gate's
# reason codes 1..11 in protocol/ticket.py's order) and each prompt (UI.prompt's words), at most 16 characters:
# 128 px of 8x8 font. One constant string in the image, "|word=Text" for each, in place of a dict on every
# terminal's heap and a string object per prompt; reason_text() looks one up at the moment it is shown.
_REASON_TEXT = const("|no_card=No card|read_failed=Tap again|bad_mac=Card invalid|not_wallet=Not a pay card"
                     "|returned=Card returned|blacklisted=Card blocked|expired=Card expired|permission=Not valid here"
                     "|not_allowed=Card not valid|members_only=Members only|over_tx_cap=Over limit"
                     "|over_daily_cap=Daily limit|insufficient=Low balance|stale=Sync needed"
                     "|offline_limit=Offline limit|journal_full=Memory full|not_ready=Not authorised"
                     "|uncertain=Tap card again|bad_amount=Bad amount"
                     "|1=Card blocked|2=No ticket|3=Not valid here|4=Ticket expired|5=Not valid today"
                     "|6=Already inside|7=No re-entry|8=No entries left|9=Day limit|10=Not inside|11=Pay at the desk"
                     "|authorise=Authorising|hub_wait=Waiting for hub|c_refused=Card refused|locked=Terminal locked"
                     "|call_tech=Call technician|not_auth=Not authorised|tap_admin=Tap admin card|role=Role ?"
                     "|not_served=not served here|gate=Gate|no_gate=No gate config|entry=Entry|exit=Exit"
                     "|both=Entry / exit|tap=Tap card|welcome=Welcome|goodbye=Goodbye|")


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
        """Any two-line message (a sale's amount, a shift's totals)."""
        self.display.show(line1, line2)

    def prompt(self, word1, word2=""):
        """A two-line prompt by its words in the reason table (a word it has not: shown as it is)."""
        self.display.show(reason_text(word1), reason_text(word2) if word2 else "")
