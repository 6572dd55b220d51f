"""Start the terminal: board, provisioning, TLS, Terminal, then its tasks (main.py calls main())."""

import asyncio

from terminal.blacklist import BlacklistCorrupt
from terminal.journal import JournalCorrupt
from terminal.runtime import SettingsError, Terminal, load_settings


def main(board=None):
    """Build the terminal from the board and its provisioning, then serve taps forever."""
    if board is None:
        from terminal.board import Board
        board = Board()
    try:
        settings = load_settings()
        board.network(settings.get("wifi_ssid", ""), (board.keystore().get("wifi_password") or b"").decode())
        if settings.get("ca"):
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            with open(settings["ca"], "rb") as f:
                ctx.load_verify_locations(cadata=f.read())  # the park CA in DER (parkcard-flash)
            settings["ssl"] = ctx
        terminal = Terminal(board, settings)
    except SettingsError as exc:
        board.display().show("Not provisioned", "See technician")
        print("parkcard:", exc)
        return
    except (JournalCorrupt, BlacklistCorrupt) as exc:
        # Damage a power cut cannot explain: serving could lose records or pass a blocked
        # card, and a restart would fail the same way. Say so instead of a silent REPL.
        board.display().show("Journal damaged" if isinstance(exc, JournalCorrupt) else "Blacklist bad",
                             "See technician")
        print("parkcard:", exc)
        return
    asyncio.run(terminal.run())
