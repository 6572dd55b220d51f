"""The terminal's tap loop: the role module the hub's config names serves each step; the prompt while not serving.

A terminal imports only the role it serves (roles/pos.py, ride.py, gate.py,
desk.py), when its config first names it: a booth never loads desk card
writing, a ride never loads keypad sale entry.
"""

from protocol.config import ROLE_NAMES
from terminal import wallet as w
from terminal.authorise import DEAUTHORISED, NO_CARD, PENDING, SENT, TERMINAL_LOCKED
from terminal.compat import sleep_ms

POLL_MS = 50
CARD_WAIT_MS = 30000
RESULT_MS = 2000


class Role:
    """What every role module's Role starts from: no work while not serving, no handlers to withdraw."""

    def __init__(self, app):
        self.app = app

    def busy(self):
        """True when the role has work even while the terminal does not serve (the desk's card write)."""
        return False

    def close(self):
        """The terminal takes another role: withdraw what this one registered."""


class TerminalApp:
    """Runs the vendor-facing loop; never waits on the network.

    runtime (optional): what a role registers its downlink handlers with (terminal.runtime.Terminal).
    """

    def __init__(self, wallet, ui, keypad, authoriser=None, runtime=None):
        self.wallet = wallet
        self.ui = ui
        self.keypad = keypad
        self.authoriser = authoriser
        self.runtime = runtime
        self.taps = 0
        self._role = None           # (role number, its module's Role), the one this terminal serves

    def role(self, role):
        """The Role object serving this role number, its module imported on first use; None for an unknown role."""
        if self._role is not None and self._role[0] == role:
            return self._role[1]
        name = ROLE_NAMES.get(role)
        if name is None:
            return None
        if self._role is not None:
            self._role[1].close()       # one role at a time: its handlers go with it
        module = __import__("terminal.roles." + name, None, None, ("Role",))
        self._role = (role, module.Role(self))
        return self._role[1]

    async def run(self):
        """Serve taps forever according to the role in the hub's config."""
        while True:
            cfg = self.wallet.config
            role = self.role(cfg.role) if cfg is not None else None
            if role is not None and role.busy():
                await role.serve(cfg)   # the desk writes a card the hub sent, serving or not
                continue
            outcome = self.authoriser.poll() if self.authoriser is not None else None
            if self.wallet.park_keys is None or cfg is None:
                # The two lines shown while not serving (protocol/SPEC.md §6.6); locked by the hub, the vendor
                # needs the technician (who comes with the admin card).
                authoriser = self.authoriser
                reason = getattr(authoriser, "reason", None)
                if authoriser is not None and authoriser.state == PENDING:
                    self.ui.prompt("authorise", "hub_wait")
                elif outcome not in (None, NO_CARD, SENT):
                    self.ui.prompt("c_refused", outcome)
                elif reason == TERMINAL_LOCKED:
                    self.ui.prompt("locked", "call_tech")
                else:
                    self.ui.prompt("not_auth", "call_tech" if reason == DEAUTHORISED else "tap_admin")
                await sleep_ms(POLL_MS * 4)
            elif role is None:
                self.ui.prompt("role", "not_served")
                await sleep_ms(POLL_MS * 20)
            else:
                await role.serve(cfg)

    # -- what every role uses --------------------------------------------------

    def poll(self):
        """Sleep one poll period (awaitable)."""
        return sleep_ms(POLL_MS)

    async def wait_for(self, attempt):
        """Call attempt() each poll until a card answers; None when cleared with '*' or after CARD_WAIT_MS."""
        waited = 0
        while waited < CARD_WAIT_MS:
            if self.keypad.get_key() == "*":
                return None
            if self.wallet.park_keys is not None and not await self.wallet.card_near():
                await sleep_ms(POLL_MS)    # an empty field: the reader waited without holding the loop
                waited += POLL_MS
                continue
            result = attempt()
            if result.reason == w.READ_FAILED:
                # The card left mid-read, nothing was written: say "Tap again" and keep this sale.
                self.ui.result(result)
            elif result.reason != w.NO_CARD:
                return result
            await sleep_ms(POLL_MS)
            waited += POLL_MS
        return None

    async def show(self, result):
        """Show a tap's outcome for RESULT_MS and count it."""
        self.taps += 1
        self.ui.result(result)
        await sleep_ms(RESULT_MS)
        return result

    async def pause(self):
        """Leave a result on the screen for RESULT_MS."""
        await sleep_ms(RESULT_MS)
