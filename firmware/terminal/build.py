"""Wire one terminal's parts together (terminal/runtime.py's Terminal, once at start).

Imported for the construction and forgotten after it (compat.forget): the parts stay, this code does not.
"""

from protocol import frames, topics
from protocol.record import RECORD_SIZE, record_mac_for
from terminal.app import TerminalApp
from terminal.atomic import exists
from terminal.authorise import Authoriser
from terminal.blacklist import Blacklist
from terminal.compat import const
from terminal.journal import Journal
from terminal.mqtt import MQTTClient
from terminal.state import TerminalState
from terminal.sync import Sync
from terminal.ui import UI
from terminal.wallet import Wallet

_KEEPALIVE_S = const(30)
_RETRY_DELAY_MS_MAX = const(30000)


def build(t, board, settings, journal_segment_bytes, journal_segments_max):
    """Give Terminal t its parts from the board and the provisioning settings, and register its tasks."""
    t.board = board
    t.settings = settings
    keys = board.keystore()
    terminal_key = keys.get("terminal_key")
    if terminal_key is None:
        from terminal.assemble import SettingsError     # imported by the build that fails only
        raise SettingsError("no terminal key in the key store: provision this terminal with parkcard-flash")
    t.terminal_id = settings["terminal_id"]
    data = board.data_dir()
    t.state = TerminalState(data)
    t.journal = Journal(data + "/journal", RECORD_SIZE, journal_segment_bytes, journal_segments_max)
    t.blacklist = Blacklist(data + "/blacklist")
    t.reader = board.reader()
    t.wallet = Wallet(t.reader, t.journal, t.blacklist, t.terminal_id, record_mac_for(terminal_key), board.clock)
    t.ui = UI(board.display(), board.buzzer())
    t.sync = Sync(t.terminal_id, frames.frame_mac_for(terminal_key), t.wallet, t.journal, t.blacklist, t.state,
                  board, t.on_command)
    t.sync.handle(frames.T_CREDITS, t._credits)    # loaded with the first list (SPEC.md §8)
    if exists(data + "/credits/credits"):
        t._credits(None)
    t.wallet.on_record = t.sync.poke  # a tap's record goes up now, not at the next 30 s round
    # After Sync, which restores the hub's config: its role picks the blob (SPEC.md §6.5).
    t.authoriser = Authoriser(t.reader, keys, t.wallet, t.sync.send_auth, t.blacklist, t._auth_state)
    t.app = TerminalApp(t.wallet, t.ui, board.keypad(), t.authoriser, t)
    # The role module the config names is imported when the config arrives (a desk's T_CARD_WRITE
    # handler must be in place before the hub sends one), and now for the config restored.
    t.sync.watch_config(t.take_role)  # a method, not a closure: nothing here outlives the build
    password = keys.get("broker_password")
    name = topics.client_name(t.terminal_id)
    # MQTT 3.1.1 §3.1.2.9 allows a user name without a password and §5.4.1 lets the server refuse
    # it (RabbitMQ does): with no password provisioned (an open broker) send no user name either.
    t.client = MQTTClient(name, settings["broker_host"], settings["broker_port"],
                          username=settings.get("username", name) if password else None,
                          password=password.decode() if password else None,
                          keepalive_s=settings.get("keepalive_s", _KEEPALIVE_S), ssl=settings.get("ssl"),
                          retry_delay_ms_max=settings.get("retry_delay_ms_max", _RETRY_DELAY_MS_MAX),
                          will_topic=topics.topic(t.terminal_id, topics.STATUS),
                          will_payload=t.sync.status_frame(0), will_retain=True)
    t.sync.attach(t.client)
    t.wallet.link = t.client  # read at each tap: a dropped link journals offline at once
    t.tasks = {}
    t._task_starts = []
    for name, start in (("mqtt", t.client.run), ("upload", t.sync.upload_loop),
                        ("status", t.sync.status_loop), ("watchdog", t._watchdog)):
        t.add_task(name, start)
