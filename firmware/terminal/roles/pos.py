"""The pos role: the vendor keys an amount, the visitor taps (DESIGN.md, Terminals and roles).

A booth keeps its merchant's price list and discount rules (terminal/prices.py, SPEC.md §7): it takes
T_PRICE_LIST and T_DISCOUNTS from the hub while it is a booth, and its T_SYNC names the versions it
holds, so the hub sends what changed. Only a booth imports them.
"""

from protocol import frames
from protocol.price_list import parse_price_list
from terminal.app import Role as _Role
from terminal import atomic
from terminal import prices as pr
from terminal import wallet as w

AMOUNT_DIGITS_MAX = 7

_KEY_ENTER = "#"
_KEY_CLEAR = "*"
_KEY_BALANCE = "A"


class Role(_Role):
    """Keyed sales and tap-to-see-balance on the 4x4 keypad."""

    def __init__(self, app):
        _Role.__init__(self, app)
        self.prices = self.rules = None
        runtime = app.runtime
        if runtime is None:
            return                  # a terminal without a link: keyed amounts only
        folder = runtime.board.data_dir() + "/prices"
        try:
            self.prices = pr.PriceList(folder)
        except pr.PricesCorrupt:
            atomic.remove(folder + "/prices")   # damaged: version 0, and the hub sends the whole list
            self.prices = pr.PriceList(folder)
        self.rules = pr.Rules(folder)
        sync = runtime.sync
        sync.handle(frames.T_PRICE_LIST, self._on_price_list)
        sync.handle(frames.T_DISCOUNTS, self._on_discounts)
        sync.prices_versions = self._versions
        if sync.client is not None and sync.client.connected:
            sync.ask_sync()         # made a booth while linked: the connect's T_SYNC named no price list

    def _versions(self):
        return pr.sync_versions(self.prices, self.rules)

    def _on_price_list(self, frame):
        sync = self.app.runtime.sync
        sync.state.save()           # the counter is spent: a replayed chunk stays refused after a reboot
        try:
            self.prices.take(parse_price_list(frame.body))
        except OSError as exc:      # flash full or failing: the list in force stays, the hub sends it again
            raise pr.PricesError("flash", "price list not stored: %s" % exc)

    def _on_discounts(self, frame):
        self.app.runtime.sync.state.save()
        try:
            self.rules.take(frame.body)
        except OSError as exc:
            raise pr.PricesError("flash", "discount rules not stored: %s" % exc)

    def close(self):
        """No longer a booth: the price list downlinks are refused again."""
        if self.prices is None:
            return
        sync = self.app.runtime.sync
        sync.handle(frames.T_PRICE_LIST, None)
        sync.handle(frames.T_DISCOUNTS, None)
        sync.prices_versions = None
        self.prices.close()

    async def serve(self, cfg):
        """One step of the loop: one sale."""
        return await self.sale_once()

    async def read_amount(self):
        """Collect an amount in cents from the keypad; None when cleared on an empty entry."""
        app = self.app
        cents = 0
        digits = 0
        app.ui.amount(0)
        while True:
            key = app.keypad.get_key()
            if key is None:
                await app.poll()
                continue
            if key == _KEY_ENTER and cents > 0:
                return cents
            if key == _KEY_CLEAR:
                if cents == 0:
                    return None
                cents, digits = 0, 0
            elif key == _KEY_BALANCE and cents == 0:
                await self.show_balance()
            elif "0" <= key <= "9" and digits < AMOUNT_DIGITS_MAX:
                cents = cents * 10 + ord(key) - 48
                digits += 1
            app.ui.amount(cents)

    async def show_balance(self):
        """Tap-to-see-balance: wait for a card and show what it holds."""
        app = self.app
        app.ui.message("Balance", "Tap card")
        result = await app.wait_for(app.wallet.balance)
        if result is not None:
            app.ui.balance(result)
            await app.pause()

    async def sale_once(self):
        """One sale: amount entry, then a tap."""
        app = self.app
        app.ui.idle("pos")
        cents = await self.read_amount()
        if cents is None:
            return None
        app.ui.wait_card(cents)
        wallet = app.wallet
        result = await app.wait_for(lambda: wallet.debit(cents))
        while result is not None and result.reason == w.UNCERTAIN:
            # "Tap card again": the re-tap settles this sale, it does not start a new one (SPEC.md §3.5).
            app.ui.result(result)
            seq = result.seq
            result = await app.wait_for(lambda: wallet.debit(cents, retry_seq=seq))
        if result is None:
            app.ui.message("Cancelled")
            return None
        return await app.show(result)
