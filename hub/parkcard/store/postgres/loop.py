"""The store's own event loops: asyncpg's connections live on them, never on the caller's loop.

Why loops of their own: the ingest rules run a batch as a sync function
`fn(tx)` (Storage.write's contract) whose reads must reach the database in the
middle of the function. On SQLite that function runs in aiosqlite's thread; on
PostgreSQL it runs in the store's writer thread, which owns the writer
connection on a loop of its own (`OwnLoop`) and runs it for each statement:
a read inside a batch is a round trip to the server and nothing more, no hop
between threads. The readers live on a loop in a thread of their own
(`LoopThread`), so a read never waits behind a batch. The hub's loop only
awaits whole calls, so it is never blocked, and the store works the same from
any caller's loop (the CLI's asyncio.run, the hub, a test).
"""

import asyncio
import threading

from parkcard.store.postgres.errors import reaching

LOOP_START_TIMEOUT_S = 10


class LoopThread:
    """An asyncio loop running forever in a daemon thread until stop()."""

    def __init__(self, name):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._ready = threading.Event()
        self._thread.start()
        if not self._ready.wait(LOOP_START_TIMEOUT_S):
            raise RuntimeError("the store's event loop thread did not start")

    def _main(self):
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()
        self.loop.close()

    def submit(self, awaitable):
        """Schedule a database call (a coroutine, or a pool's acquire) on this loop; return its Future."""
        return asyncio.run_coroutine_threadsafe(reaching(awaitable), self.loop)

    def wait(self, coro):
        """Run a coroutine on this loop and block the calling thread (never this loop's own) for its result."""
        return self.submit(coro).result()

    async def run(self, coro):
        """Await, from another loop, a coroutine run on this one."""
        return await asyncio.wrap_future(self.submit(coro))

    def stop(self):
        """Stop the loop and join its thread (idempotent)."""
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()


class OwnLoop:
    """An event loop run by the one thread that owns it, an awaitable at a time (the writer's)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()

    def wait(self, awaitable):
        """Run the loop until the database call is done; return its result (only from the owning thread)."""
        return self.loop.run_until_complete(reaching(awaitable))

    def close(self):
        """Close the loop (its connections closed first)."""
        self.loop.close()
