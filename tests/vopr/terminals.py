"""Booth terminals and visitors of a simulated park: the real firmware runtime on a SimBoard, rebootable."""

from protocol.record import Record
from sim.board import SimBoard
from sim.cards import card_balance, card_from_blocks
from terminal.runtime import Terminal

from parkcard_devkit import park_sim

from vopr.net import SimClient

# Small segments: the journal rolls and trims segments within a short run, where the
# defects of recovery and trimming live (the product's 64 KB segments would never roll).
JOURNAL_SEGMENT_BYTES = 2048
JOURNAL_SEGMENTS_MAX = 24


class TerminalPlan:
    """What the hub registered: id, role, merchant, commission, key."""

    def __init__(self, terminal_id, role, merchant_id, rate_bps, key, fixed_price_cents=0):
        self.terminal_id = terminal_id
        self.role = role
        self.merchant_id = merchant_id
        self.rate_bps = rate_bps
        self.key = key
        self.fixed_price_cents = fixed_price_cents

    def to_json(self):
        """For the template's plan file."""
        return dict(vars(self), key=self.key.hex())

    @classmethod
    def from_json(cls, data):
        """From the template's plan file."""
        return cls(**dict(data, key=bytes.fromhex(data["key"])))


class SimTerminal:
    """One terminal: the firmware's Terminal object while powered, its flash directory always."""

    def __init__(self, plan, root, clock, network, flash):
        self.plan = plan
        self.terminal_id = plan.terminal_id
        self.root = root
        self.clock = clock
        self.network = network
        self.flash = flash
        self.terminal = None
        self.client = None
        self.board = None
        self.alive = False
        self.clock_offset_s = 0
        self.boots = 0
        self.history = []           # every message this terminal produced (replays pick from it)

    def provision(self, transport_key):
        """What flashing leaves in the key store (before the first boot)."""
        keys = SimBoard(self.root).keystore()
        keys.set("terminal_key", self.plan.key)
        keys.set("transport_key", transport_key)

    def boot(self):
        """Power on: the firmware rebuilds everything from its flash (journal recovery, state, keys)."""
        self.flash.restore()
        self.board = SimBoard(self.root, clock=self.clock.terminal_time)
        self.board.clock_offset_s = self.clock_offset_s
        settings = {"terminal_id": self.terminal_id, "broker_host": "sim", "broker_port": 0}
        self.terminal = Terminal(self.board, settings, JOURNAL_SEGMENT_BYTES, JOURNAL_SEGMENTS_MAX)
        self.client = SimClient(self.terminal_id, self.network)
        self.terminal.sync.attach(self.client)
        self.terminal.wallet.link = self.client    # records are FLAG_OFFLINE unless connected
        self.alive = True
        self.boots += 1

    def power_lost(self):
        """The supply died: nothing in RAM survives; what is on flash stays."""
        if self.board is not None:
            self.clock_offset_s = self.board.clock_offset_s
        if self.terminal is not None:
            try:
                self.terminal.journal.close()
            except Exception:  # noqa: BLE001 - a dead terminal's files are closed however they can be
                pass
        self.alive = False
        self.terminal = None
        if self.client is not None:
            self.client.connected = False

    def skew_clock(self, seconds):
        """The terminal's RTC jumps (drift, a flat RTC battery)."""
        if self.board is not None:
            self.board.clock_offset_s += seconds
        self.clock_offset_s += seconds

    @property
    def wallet(self):
        """The firmware wallet (while powered)."""
        return self.terminal.wallet

    @property
    def sync(self):
        """The firmware sync (while powered)."""
        return self.terminal.sync

    def backlog(self):
        """Records not acknowledged by the hub (while powered)."""
        return self.terminal.journal.depth()

    def open_records(self):
        """[(seq, record)] still pending or uncertain on this terminal."""
        return list(self.terminal.journal.uncertain())

    def charge_for(self, rng):
        """What the next tap costs here."""
        if self.plan.fixed_price_cents:
            return self.plan.fixed_price_cents
        return rng.randrange(150, 2500, 10)


class Visitor(park_sim.Visitor):
    """A visitor of the demo park whose card the simulation can also read, dump and restore."""

    def __init__(self, card_no, uid, blocks, park_keys):
        park_sim.Visitor.__init__(self, card_no, uid, card_from_blocks(uid, blocks), tier=None)
        self.park_keys = park_keys
        self.issued_counter = self.slot().counter
        self.issued_cents = self.slot().balance_cents

    def slot(self):
        """The wallet slot in force, read straight from the card's memory."""
        return card_balance(self.park_keys, self.virtual)

    def restore(self, image):
        """Write a saved memory image back (a dump-and-restore fraud)."""
        for block, data in enumerate(image):
            self.virtual.blocks[block][:] = data

    def image(self):
        """The card's memory now."""
        return [bytes(b) for b in self.virtual.blocks]


def uncertain_on(sim_terminal):
    """Card numbers with a record still open on this terminal."""
    return {Record.decode(raw).card_no for _seq, raw in sim_terminal.open_records()}

