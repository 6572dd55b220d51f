"""Tell the running hub what another process (the CLI) just committed: one Unix datagram per change.

The datagram only names what changed (NOTICES, space-separated ASCII); the hub
reads the facts from the database, so a datagram carries no authority: any
local process may wake the hub, and the worst it can do is make it re-read.
The address is a Linux abstract socket named after the database's real path:
nothing to clean up after a crash, no path length limit, and one hub per
database (parkcard.hub_lock) means one listener per name.

Sending is best effort: no hub running means nothing to tell, and a full
receive queue means the hub already has news to read.
"""

import asyncio
import hashlib
import os
import socket

BLACKLIST = "blacklist"          # blacklist versions were added
TERMINALS = "terminals"          # terminals were registered or changed
COMMANDS = "commands"            # terminal commands were queued (lock, de-authorise)
CARD_REQUESTS = "card_requests"  # admin card issues were queued
PRICES = "prices"                # a price list or the discount rules took a new version
CREDITS = "credits"              # pending credits were granted or cancelled
TICKET_SALES = "ticket_sales"    # ticket sales at a desk were queued
RULES = "rules"                  # the consumption rules took a new version (SPEC.md §5.10)
STAFF = "staff"                  # a booth's staff list or the park's time zone changed (SPEC.md §5.11)
NOTICES = (BLACKLIST, TERMINALS, COMMANDS, CARD_REQUESTS, PRICES, CREDITS, TICKET_SALES, RULES, STAFF)
DATAGRAM_MAX = 256


def address(db_path):
    """The hub's notification address for a database: an abstract socket name."""
    digest = hashlib.sha256(os.path.realpath(str(db_path)).encode()).hexdigest()[:32]
    return "\0parkcard-hub-" + digest


def send(db_path, *notices):
    """Tell the hub of db_path what changed; return True if a hub was there to tell."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(" ".join(notices).encode("ascii"), address(db_path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False        # no hub runs on this database
    except BlockingIOError:
        return True         # its queue is full of news it has not read yet: it is awake
    return True


class Listener:
    """The hub's end: `await wait()` returns the set of notices that arrived since the last call."""

    def __init__(self, db_path):
        self.address = address(db_path)
        self._sock = None
        self._pending = set()
        self._event = None
        self.received = 0

    def start(self):
        """Bind and start reading on the running loop (non-blocking: the loop wakes on a datagram)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(self.address)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._event = asyncio.Event()
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        return self

    def _readable(self):
        while True:
            try:
                data = self._sock.recv(DATAGRAM_MAX)
            except (BlockingIOError, InterruptedError):
                break
            self.received += 1
            self._pending.update(w for w in data.decode("ascii", "replace").split() if w in NOTICES)
        if self._pending:
            self._event.set()

    async def wait(self):
        """Wait for news; return the notices (a set of NOTICES names)."""
        await self._event.wait()
        self._event.clear()
        news, self._pending = self._pending, set()
        return news

    def close(self):
        """Stop reading and free the address (idempotent)."""
        if self._sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            except RuntimeError:   # no running loop left: the reader went with it
                pass
            self._sock.close()
            self._sock = None
