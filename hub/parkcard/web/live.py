"""A change counter the hub bumps when it commits what a live page shows; Server-Sent Event streams wait on it."""

import asyncio


class Beacon:
    """A version that wakes every waiter when bumped (one asyncio loop: the hub's)."""

    def __init__(self):
        self.version = 0
        self._bumped = asyncio.Event()

    def bump(self):
        """Something changed: wake every waiter."""
        self.version += 1
        self._bumped.set()
        self._bumped = asyncio.Event()

    async def wait(self, seen, timeout_s):
        """Return the version once it differs from seen, or after timeout_s (the caller re-reads either way)."""
        bumped = self._bumped
        if self.version == seen:
            # asyncio.timeout, not wait_for: on Python 3.11 a cancel landing as wait_for times out comes back as
            # TimeoutError, and a stream would swallow the server's stop.
            try:
                async with asyncio.timeout(timeout_s):
                    await bumped.wait()
            except TimeoutError:
                pass
        return self.version
