"""Start the terminal: build it (terminal/assemble.py, forgotten once built), then run its tasks (main.py calls main())."""

import asyncio

from terminal.compat import forget


def main(board=None):
    """Build the terminal from the board and its provisioning, then serve taps forever."""
    from terminal.assemble import assemble
    terminal = assemble(board)
    assemble = None
    forget("terminal.assemble")
    if terminal is not None:
        asyncio.run(terminal.run())
