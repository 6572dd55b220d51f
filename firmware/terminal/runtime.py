"""Assemble one terminal from a board and its settings, and run its long-lived tasks."""

import asyncio

from protocol.config import ROLE_DESK
from terminal.authorise import SERVING
from terminal.compat import borrow, const, sleep_ms

# const(): folded into the code by mpy-cross, no name on the terminal's heap (no qstr, no globals slot).
_WATCHDOG_TIMEOUT_MS = const(30000)
_WATCHDOG_FEED_MS = const(1000)
_STOP_REPORT_TIMEOUT_MS = const(2000)
_TASK_RESTARTS_MAX = const(8)    # a task out of memory this often is let die: the watchdog then resets the board
_TASK_RESTART_MS = const(500)


class Terminal:
    """Everything one terminal runs: tap loop, MQTT link, sync, watchdog.

    The journal gets 24 segments of 64 KB (1.5 MB, the ESP32's filesystem
    partition): about 20,000 records, days of offline taps. Few large segments
    keep its RAM index small and unfragmented (measured: 10,000 queued records
    fit the heap budget with 64 KB segments, not with 16 KB ones).
    """

    def __init__(self, board, settings, journal_segment_bytes=65536, journal_segments_max=24):
        # Built once: the wiring (terminal/build.py) leaves the heap once the parts are in place.
        borrow("terminal.build", "build", self, board, settings, journal_segment_bytes, journal_segments_max)

    def _credits(self, frame):
        """Pending credits: the module comes in with the first list the hub sends, or one kept in flash."""
        from terminal.credits import Credits
        store = Credits(self.board.data_dir() + "/credits")
        store.register(self.sync, self.wallet)
        if frame is not None:
            store.on_frame(frame)

    def take_role(self, cfg):
        """Serve the role a config names (its module imported on first use)."""
        self.app.role(cfg.role)

    def add_task(self, name, start):
        """Register a long-lived task: start() returns its coroutine; start() of the terminal runs it, kept by name."""
        self._task_starts.append((name, start))

    @property
    def card_writer(self):
        """The desk role's card writer (the desk role module is imported for it)."""
        return self.app.role(ROLE_DESK).writer

    def on_command(self, command, argument):
        """Hub commands: authorisation answers, lock or de-authorise this terminal."""
        # The screen follows the authoriser's reason in the app's prompt (terminal/app.py, TerminalApp.run).
        self.authoriser.on_command(command, argument)

    def _auth_state(self, state):
        self.sync.set_authorised(state == SERVING)

    async def _watchdog(self):
        # Fed only while the event loop turns and every task still runs: a
        # stuck loop or a task that died resets the board.
        wdt = self.board.watchdog(_WATCHDOG_TIMEOUT_MS)
        while True:
            if self.healthy():
                wdt.feed()
            await sleep_ms(_WATCHDOG_FEED_MS)

    def healthy(self):
        """True while every long-lived task runs (a dead upload task would strand the journal)."""
        return not any(task.done() for task in self.tasks.values())

    def start(self):
        """Start the named long-lived tasks and keep references to them."""
        for name, start in self._task_starts:
            self.tasks[name] = asyncio.create_task(self._supervise(start))
        return self.tasks

    async def _supervise(self, start):
        """Run one long-lived task; a MemoryError (a fragmented heap) is counted for the status report and the
        task started again, at most _TASK_RESTARTS_MAX times. Anything else ends it, and the watchdog resets."""
        restarts = 0
        while True:
            try:
                return await start()
            except MemoryError:
                self.sync.count_memory_error()
                print("parkcard: MemoryError recovered")  # a constant: the log line needs no heap
                restarts += 1
                if restarts > _TASK_RESTARTS_MAX:
                    raise
            await sleep_ms(_TASK_RESTART_MS)

    async def run(self):
        """Run the terminal forever (ESP32 main)."""
        self.start()
        # The tap loop too: a MemoryError mid-tap leaves its record open (PENDING), which the card's next
        # tap settles like an uncertain one (wallet._resolve_uncertain); the terminal serves on.
        await self._supervise(self.app.run)

    async def stop(self):
        """Report offline, cancel the background tasks and close the link (host use)."""
        if self.client.connected:
            # A clean DISCONNECT makes the broker drop the last will: say it ourselves.
            try:
                await self.client.publish(self.sync.status_topic, self.sync.status_frame(0), 1, True,
                                          _STOP_REPORT_TIMEOUT_MS)
            except Exception:  # noqa: BLE001 - the hub then counts the silence (parkcard.ingest.fleet)
                pass
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            try:
                await task
            except BaseException:  # noqa: BLE001 - cancelled tasks end here
                pass
        self.tasks = {}
        self.client.close()
