"""What the vendor sees and hears: screen texts and buzzer patterns for each outcome."""

from terminal import wallet as w

# Buzzer patterns: (on_ms, off_ms) pairs.
BEEP_APPROVED = ((120, 0),)
BEEP_REFUSED = ((80, 60), (80, 60), (80, 0))
BEEP_ERROR = ((600, 0),)
BEEP_KEY = ((15, 0),)

REASON_TEXT = {
    w.NO_CARD: "No card",
    w.READ_FAILED: "Tap again",
    w.BAD_MAC: "Card invalid",
    w.NOT_WALLET: "Not a pay card",
    w.RETURNED: "Card returned",
    w.BLACKLISTED: "Card blocked",
    w.EXPIRED: "Card expired",
    w.PERMISSION: "Not valid here",
    w.NOT_ALLOWED: "Card not valid",
    w.MEMBERS_ONLY: "Members only",
    w.OVER_TX_CAP: "Over limit",
    w.OVER_DAILY_CAP: "Daily limit",
    w.INSUFFICIENT: "Low balance",
    w.STALE: "Sync needed",
    w.OFFLINE_LIMIT: "Offline limit",
    w.JOURNAL_FULL: "Memory full",
    w.NOT_READY: "Not authorised",
    w.UNCERTAIN: "Tap card again",
    w.BAD_AMOUNT: "Bad amount",
}


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

    def amount(self, cents):
        """Amount entry screen."""
        self.display.show("Amount", money(cents))

    def wait_card(self, cents):
        """Waiting for a card for this amount."""
        self.display.show("Pay " + money(cents), "Tap card")

    def result(self, result):
        """Show a tap's outcome and sound its pattern."""
        if result.ok:
            self.display.show("APPROVED " + money(result.amount_cents), "Balance " + money(result.balance_cents))
            self.buzzer.play(BEEP_APPROVED)
        else:
            self.display.show("REFUSED", REASON_TEXT.get(result.reason, result.reason))
            self.buzzer.play(BEEP_ERROR if result.reason == w.JOURNAL_FULL else BEEP_REFUSED)

    def balance(self, result):
        """Tap-to-see-balance outcome."""
        if result.ok:
            self.display.show("Card %d" % result.card_no, "Balance " + money(result.balance_cents))
            self.buzzer.play(BEEP_APPROVED)
        else:
            self.result(result)

    def message(self, line1, line2=""):
        """Any two-line message (authorisation, locked terminal)."""
        self.display.show(line1, line2)
