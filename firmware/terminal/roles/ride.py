"""The ride role: a fixed price, one tap one ride (DESIGN.md, Terminals and roles)."""

from protocol.config import ROLE_RIDE
from terminal.app import Role as _Role
from terminal import wallet as w


class Role(_Role):
    """Charges the config's fixed price to each card presented, by the park's consumption rules."""

    def __init__(self, app):
        _Role.__init__(self, app)
        self._rules = None          # terminal.spend.RulesTail, loaded with the first config that has rules

    def close(self):
        """No longer a ride: its consumption rules go."""
        if self._rules is not None:
            self._rules.close()

    def _take_rules(self, cfg):
        """Follow the consumption rules in the config's tail (SPEC.md §5.10). A ride whose config never had any
        does not load them: the whole terminal's heap has no room to spare for code it does not run."""
        if self._rules is None:
            if not cfg.tail:
                return
            from terminal.spend import RulesTail
            self._rules = RulesTail(self.app.wallet, self.app.runtime)
        self._rules.take(cfg)

    async def serve(self, cfg):
        """One step of the loop: wait for a rider at the configured price."""
        self._take_rules(cfg)
        return await self.ride_once(cfg.fixed_price_cents)

    async def ride_once(self, price_cents):
        """One rider: debit the price; None when locked or the hub's config changed."""
        app = self.app
        app.ui.idle("ride", price_cents)
        retry_seq = 0
        while True:
            # The hub may change role or price while we wait for a rider: run() serves the new
            # config. A pending re-tap keeps its price: it settles a ride already charged.
            cfg = app.wallet.config
            if cfg is None or cfg.role != ROLE_RIDE or (cfg.fixed_price_cents != price_cents and not retry_seq):
                return None
            self._take_rules(cfg)   # new rules apply to the next rider
            if app.wallet.park_keys is not None and not await app.wallet.card_near():
                await app.poll()    # an empty field: the reader waited without holding the loop
                continue
            result = app.wallet.debit(price_cents, retry_seq=retry_seq)
            if result.reason == w.NOT_READY:
                return None  # locked by the hub with no card on the reader: no tap, run() says why
            if result.reason == w.UNCERTAIN:
                # "Tap card again" settles this ride, it does not charge a second one (SPEC.md §3.5).
                app.ui.result(result)
                retry_seq = result.seq
            elif result.reason != w.NO_CARD:
                return await app.show(result)
            await app.poll()
