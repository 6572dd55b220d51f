"""The terminal's tap flow for the pos and ride roles: amount, card, result, idle."""

import asyncio

from protocol.config import ROLE_DESK, ROLE_NAMES, ROLE_POS, ROLE_RIDE
from protocol.frames import CARD_OK
from terminal import authorise as au
from terminal import wallet as w

POLL_MS = 50
CARD_WAIT_MS = 30000
RESULT_MS = 2000
AMOUNT_DIGITS_MAX = 7

KEY_ENTER = "#"
KEY_CLEAR = "*"
KEY_BALANCE = "A"


def _sleep_ms(ms):
    sleep_ms = getattr(asyncio, "sleep_ms", None)
    return sleep_ms(ms) if sleep_ms else asyncio.sleep(ms / 1000)


# Locked by the hub: the vendor needs the technician (who comes with the admin card).
_LOCKED_TEXT = {au.TERMINAL_LOCKED: ("Terminal locked", "Call technician"),
                au.DEAUTHORISED: ("Not authorised", "Call technician")}


def _auth_prompt(authoriser, outcome):
    """The two lines shown while not serving (protocol/SPEC.md §6.6)."""
    if authoriser is not None and authoriser.state == au.PENDING:
        return "Authorising", "Waiting for hub"
    if outcome in (None, au.NO_CARD, au.SENT):
        return _LOCKED_TEXT.get(getattr(authoriser, "reason", None), ("Not authorised", "Tap admin card"))
    return "Card refused", outcome


class TerminalApp:
    """Runs the vendor-facing loop; never waits on the network."""

    def __init__(self, wallet, ui, keypad):
        self.wallet = wallet
        self.ui = ui
        self.keypad = keypad
        self.taps = 0
        self.authoriser = None          # terminal.authorise.Authoriser, set by runtime
        self.card_writer = None         # terminal.card_writer.CardWriter (desk role), set by runtime

    async def run(self):
        """Serve taps forever according to the role in the hub's config."""
        while True:
            cfg = self.wallet.config
            if cfg is not None and cfg.role == ROLE_DESK and self.card_writer is not None \
                    and self.card_writer.job is not None:
                await self.write_card_once()
                continue
            outcome = self.authoriser.poll() if self.authoriser is not None else None
            if self.wallet.park_keys is None or cfg is None:
                self.ui.message(*_auth_prompt(self.authoriser, outcome))
                await _sleep_ms(POLL_MS * 4)
            elif cfg.role == ROLE_RIDE:
                await self.ride_once(cfg.fixed_price_cents)
            elif cfg.role == ROLE_POS:
                await self.sale_once()
            else:
                self.ui.message("Role " + ROLE_NAMES.get(cfg.role, "?"), "not served here")
                await _sleep_ms(POLL_MS * 20)

    async def write_card_once(self):
        """Desk: the hub asked for a card to be written; wait for it and say how it went."""
        self.ui.message("Card to write", "Tap blank card")
        status = self.card_writer.poll()
        if status is None:
            await _sleep_ms(POLL_MS)
            return None
        self.ui.message("Card written" if status == CARD_OK else "Write failed", "" if status == CARD_OK
                        else "Use a blank card")
        await _sleep_ms(RESULT_MS)
        return status

    async def read_amount(self):
        """Collect an amount in cents from the keypad; None when cleared on an empty entry."""
        cents = 0
        digits = 0
        self.ui.amount(0)
        while True:
            key = self.keypad.get_key()
            if key is None:
                await _sleep_ms(POLL_MS)
                continue
            if key == KEY_ENTER and cents > 0:
                return cents
            if key == KEY_CLEAR:
                if cents == 0:
                    return None
                cents, digits = 0, 0
            elif key == KEY_BALANCE and cents == 0:
                await self.show_balance()
            elif "0" <= key <= "9" and digits < AMOUNT_DIGITS_MAX:
                cents = cents * 10 + ord(key) - 48
                digits += 1
            self.ui.amount(cents)

    async def show_balance(self):
        """Tap-to-see-balance: wait for a card and show what it holds."""
        self.ui.message("Balance", "Tap card")
        result = await self._wait_for(self.wallet.balance)
        if result is not None:
            self.ui.balance(result)
            await _sleep_ms(RESULT_MS)

    async def sale_once(self):
        """One sale at a pos: amount entry, then a tap."""
        self.ui.idle("pos")
        cents = await self.read_amount()
        if cents is None:
            return None
        self.ui.wait_card(cents)
        result = await self._wait_for(lambda: self.wallet.debit(cents))
        while result is not None and result.reason == w.UNCERTAIN:
            # "Tap card again": the re-tap settles this sale, it does not start a new one (SPEC.md §3.5).
            self.ui.result(result)
            seq = result.seq
            result = await self._wait_for(lambda: self.wallet.debit(cents, retry_seq=seq))
        if result is None:
            self.ui.message("Cancelled")
            return None
        return await self._show(result)

    async def ride_once(self, price_cents):
        """One rider at a fixed-price ride: debit the price; None when locked or the hub's config changed."""
        self.ui.idle("ride", price_cents)
        retry_seq = 0
        while True:
            # The hub may change role or price while we wait for a rider: run() serves the new
            # config. A pending re-tap keeps its price: it settles a ride already charged.
            cfg = self.wallet.config
            if cfg is None or cfg.role != ROLE_RIDE or (cfg.fixed_price_cents != price_cents and not retry_seq):
                return None
            if self.wallet.park_keys is not None and not await self.wallet.card_near():
                await _sleep_ms(POLL_MS)    # an empty field: the reader waited without holding the loop
                continue
            result = self.wallet.debit(price_cents, retry_seq=retry_seq)
            if result.reason == w.NOT_READY:
                return None  # locked by the hub with no card on the reader: no tap, run() says why
            if result.reason == w.UNCERTAIN:
                # "Tap card again" settles this ride, it does not charge a second one (SPEC.md §3.5).
                self.ui.result(result)
                retry_seq = result.seq
            elif result.reason != w.NO_CARD:
                return await self._show(result)
            await _sleep_ms(POLL_MS)

    async def _wait_for(self, attempt):
        waited = 0
        while waited < CARD_WAIT_MS:
            if self.keypad.get_key() == KEY_CLEAR:
                return None
            if self.wallet.park_keys is not None and not await self.wallet.card_near():
                await _sleep_ms(POLL_MS)    # an empty field: the reader waited without holding the loop
                waited += POLL_MS
                continue
            result = attempt()
            if result.reason == w.READ_FAILED:
                # The card left mid-read, nothing was written: say "Tap again" and keep this sale.
                self.ui.result(result)
            elif result.reason != w.NO_CARD:
                return result
            await _sleep_ms(POLL_MS)
            waited += POLL_MS
        return None

    async def _show(self, result):
        self.taps += 1
        self.ui.result(result)
        await _sleep_ms(RESULT_MS)
        return result
