"""The pos role: the vendor keys an amount, the visitor taps (DESIGN.md, Terminals and roles)."""

from terminal.app import Role as _Role
from terminal import wallet as w

AMOUNT_DIGITS_MAX = 7

_KEY_ENTER = "#"
_KEY_CLEAR = "*"
_KEY_BALANCE = "A"


class Role(_Role):
    """Keyed sales and tap-to-see-balance on the 4x4 keypad."""

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
