"""Build the terminal at start: provisioning, TLS context, Terminal (terminal/start.py's one job).

Imported once at start and forgotten after (compat.forget): none of this code stays on the heap
while the terminal serves.
"""

import json

from terminal.blacklist import BlacklistCorrupt
from terminal.journal import JournalCorrupt
from terminal.compat import const
from terminal.runtime import Terminal

_SETTINGS_FILE = const("/terminal.json")


class SettingsError(Exception):
    """The terminal was not provisioned (run parkcard-flash)."""


def load_settings(path=_SETTINGS_FILE):
    """Read the non-secret provisioning settings written by the flash tool."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        raise SettingsError("no valid %s: provision this terminal with parkcard-flash" % path)


def assemble(board=None):
    """The Terminal the board and its provisioning make, or None after saying on the screen why not."""
    if board is None:
        from terminal.board import Board
        board = Board()
    board.relay()   # the relay pin driven inactive before anything else: a turnstile never opens at a reset
    try:
        settings = load_settings()
        board.network(settings.get("wifi_ssid", ""), (board.keystore().get("wifi_password") or b"").decode())
        if settings.get("ca"):
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            with open(settings["ca"], "rb") as f:
                ctx.load_verify_locations(cadata=f.read())  # the park CA in DER (parkcard-flash)
            settings["ssl"] = ctx
        return Terminal(board, settings)
    except SettingsError as exc:
        board.display().show("Not provisioned", "See technician")
        print("parkcard:", exc)
    except (JournalCorrupt, BlacklistCorrupt) as exc:
        # Damage a power cut cannot explain: serving could lose records or pass a blocked
        # card, and a restart would fail the same way. Say so instead of a silent REPL.
        board.display().show("Journal damaged" if isinstance(exc, JournalCorrupt) else "Blacklist bad",
                             "See technician")
        print("parkcard:", exc)
    return None
