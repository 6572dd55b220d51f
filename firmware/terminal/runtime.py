"""Assemble one terminal from a board and its settings, and run its long-lived tasks."""

import asyncio
import json

from protocol import frames, topics
from protocol.record import RECORD_SIZE, record_mac_for
from protocol.config import ROLE_DESK
from terminal.app import TerminalApp
from terminal.authorise import SERVING, Authoriser
from terminal.blacklist import Blacklist
from terminal.atomic import exists
from terminal.compat import const, sleep_ms
from terminal.journal import Journal
from terminal.mqtt import MQTTClient
from terminal.state import TerminalState
from terminal.sync import Sync
from terminal.ui import UI
from terminal.wallet import Wallet

# const(): folded into the code by mpy-cross, no name on the terminal's heap (no qstr, no globals slot).
_SETTINGS_FILE = const("/terminal.json")
_WATCHDOG_TIMEOUT_MS = const(30000)
_WATCHDOG_FEED_MS = const(1000)
_KEEPALIVE_S = const(30)
_RETRY_DELAY_MS_MAX = const(30000)
_STOP_REPORT_TIMEOUT_MS = const(2000)
_TASK_RESTARTS_MAX = const(8)    # a task out of memory this often is let die: the watchdog then resets the board
_TASK_RESTART_MS = const(500)


class SettingsError(Exception):
    """The terminal was not provisioned (run parkcard-flash)."""


def load_settings(path=_SETTINGS_FILE):
    """Read the non-secret provisioning settings written by the flash tool."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        raise SettingsError("no valid %s: provision this terminal with parkcard-flash" % path)


class Terminal:
    """Everything one terminal runs: tap loop, MQTT link, sync, watchdog.

    The journal gets 24 segments of 64 KB (1.5 MB, the ESP32's filesystem
    partition): about 20,000 records, days of offline taps. Few large segments
    keep its RAM index small and unfragmented (measured: 10,000 queued records
    fit the heap budget with 64 KB segments, not with 16 KB ones).
    """

    def __init__(self, board, settings, journal_segment_bytes=65536, journal_segments_max=24):
        self.board = board
        self.settings = settings
        keys = board.keystore()
        terminal_key = keys.get("terminal_key")
        if terminal_key is None:
            raise SettingsError("no terminal key in the key store: provision this terminal with parkcard-flash")
        self.terminal_id = settings["terminal_id"]
        data = board.data_dir()
        self.state = TerminalState(data)
        self.journal = Journal(data + "/journal", RECORD_SIZE, journal_segment_bytes, journal_segments_max)
        self.blacklist = Blacklist(data + "/blacklist")
        self.reader = board.reader()
        self.wallet = Wallet(self.reader, self.journal, self.blacklist, self.terminal_id,
                             record_mac_for(terminal_key), board.clock)
        self.ui = UI(board.display(), board.buzzer())
        self.sync = Sync(self.terminal_id, frames.frame_mac_for(terminal_key), self.wallet, self.journal,
                         self.blacklist, self.state, board, self.on_command)
        self.sync.handle(frames.T_CREDITS, self._credits)    # loaded with the first list (SPEC.md §8)
        if exists(data + "/credits/credits"):
            self._credits(None)
        self.wallet.on_record = self.sync.poke  # a tap's record goes up now, not at the next 30 s round
        # After Sync, which restores the hub's config: its role picks the blob (SPEC.md §6.5).
        self.authoriser = Authoriser(self.reader, keys, self.wallet, self.sync.send_auth, self.blacklist,
                                     self._auth_state)
        self.app = TerminalApp(self.wallet, self.ui, board.keypad(), self.authoriser, self)
        # The role module the config names is imported when the config arrives (a desk's T_CARD_WRITE
        # handler must be in place before the hub sends one), and now for the config restored.
        self.sync.watch_config(lambda cfg: self.app.role(cfg.role))
        password = keys.get("broker_password")
        name = topics.client_name(self.terminal_id)
        # MQTT 3.1.1 §3.1.2.9 allows a user name without a password and §5.4.1 lets the server refuse
        # it (RabbitMQ does): with no password provisioned (an open broker) send no user name either.
        self.client = MQTTClient(name, settings["broker_host"], settings["broker_port"],
                                 username=settings.get("username", name) if password else None,
                                 password=password.decode() if password else None,
                                 keepalive_s=settings.get("keepalive_s", _KEEPALIVE_S), ssl=settings.get("ssl"),
                                 retry_delay_ms_max=settings.get("retry_delay_ms_max", _RETRY_DELAY_MS_MAX),
                                 will_topic=topics.topic(self.terminal_id, topics.STATUS),
                                 will_payload=self.sync.status_frame(0), will_retain=True)
        self.sync.attach(self.client)
        self.wallet.link = self.client  # read at each tap: a dropped link journals offline at once
        self.tasks = {}
        self._task_starts = []
        for name, start in (("mqtt", self.client.run), ("upload", self.sync.upload_loop),
                            ("status", self.sync.status_loop), ("watchdog", self._watchdog)):
            self.add_task(name, start)

    def _credits(self, frame):
        """Pending credits: the module comes in with the first list the hub sends, or one kept in flash."""
        from terminal.credits import Credits
        store = Credits(self.board.data_dir() + "/credits")
        store.register(self.sync, self.wallet)
        if frame is not None:
            store.on_frame(frame)

    def add_task(self, name, start):
        """Register a long-lived task: start() returns its coroutine; start() of the terminal runs it, kept by name."""
        self._task_starts.append((name, start))

    @property
    def card_writer(self):
        """The desk role's card writer (the desk role module is imported for it)."""
        return self.app.role(ROLE_DESK).writer

    def on_command(self, command, argument):
        """Hub commands: authorisation answers, lock or de-authorise this terminal."""
        # The screen follows the authoriser's reason in the app's prompt (app._auth_prompt).
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
