"""A whole park on one machine: broker, hub on SQLite, desk-issued cards and simulated
terminals running the real firmware code (terminal/) against virtual readers.

The park is the secure one `parkcard up` runs: `parkcard init`'s PKI and secrets,
Mosquitto TLS-only with anonymous access off, a password per terminal and an
ACL confining each terminal to its own topics; terminals start with no card
keys and are authorised by a technician tapping the admin system card, which
the hub issued at the desk and confirms. (With `broker_url`, an existing
broker is used as it is, in plaintext: its access rules are its own.)

`parkcard demo` drives it and prints; the end-to-end tests drive it and assert.
"""

import asyncio
import os
import random
import time
from urllib.parse import urlparse

from protocol import card as C
from protocol.config import ROLE_DESK, ROLE_GATE, ROLE_POS, ROLE_RIDE
from sim.board import SimBoard
from sim.cards import card_balance
from sim.mifare import MifareClassic1K
from terminal.authorise import SERVING
from terminal.runtime import Terminal

from parkcard import audit
from parkcard.app import Hub
from parkcard.security import secure
from parkcard.services import settlement, shifts
from parkcard.store import is_postgres
from parkcard.store.postgres.url import with_audit_log

from parkcard_devkit.netsim import Relay

DESK_TERMINAL_ID = 1
DESK_MERCHANT_ID = 1
RIDE_PRICE_CENTS = 450
MERCHANTS = ((2, "Food court", 1200), (3, "Rides", 800), (4, "Gift shop", 1500))
GATE_MERCHANT_ID = 3        # gates belong to the rides' merchant: a timed exit's charge is theirs
ADMIN_CARD_UID = bytes.fromhex("04adadadadad01")
DRAIN_POLL_S = 0.05
SHIFT_FLOAT_CENTS = 20000    # the float counted into the desk's drawer at the open of the simulated day
AT_DESK_S = 120            # a desk operation's own timeouts end it in seconds: this bound only names a hang
DESK_POLL_S = 0.002         # the desk terminal's reader loop while a desk operation waits for the card


class SimTerminal:
    """One simulated terminal: the real firmware runtime on a SimBoard behind a cuttable relay."""

    def __init__(self, root, terminal_id, key, transport_key, relay, role, merchant_id, password=None, tls=None):
        self.terminal_id = terminal_id
        self.role = role
        self.merchant_id = merchant_id
        self.relay = relay
        self.board = SimBoard(root)
        # What flashing leaves in the key store: no card keys until an admin card is tapped.
        keys = self.board.keystore()
        keys.set("terminal_key", key)
        keys.set("transport_key", transport_key)
        if password is not None:
            keys.set("broker_password", password.encode())
        settings = {"terminal_id": terminal_id, "broker_host": relay.host, "broker_port": relay.port,
                    "keepalive_s": 5, "retry_delay_ms_max": 1000, "ssl": tls}
        self.terminal = Terminal(self.board, settings)
        self.taps = 0

    @property
    def wallet(self):
        """The terminal's wallet."""
        return self.terminal.wallet

    def tap(self, virtual_card, amount_cents, member_only=False):
        """A visitor holds a card to the reader (member_only: for a member-only item); returns the wallet's Result."""
        result = self._held(virtual_card, lambda: self.wallet.debit(amount_cents, member_only=member_only))
        self.terminal.ui.result(result)
        return result

    def _held(self, virtual_card, serve):
        """Return serve() with the card held in the reader's field (a tap)."""
        field = self.board.field
        field.add(virtual_card)
        try:
            return serve()
        finally:
            field.remove(virtual_card)
            self.taps += 1

    def pass_gate(self, virtual_card, direction=0):
        """A visitor holds a card to a gate (direction 0: the gate's own, or the card's for "both"); returns the
        gate's Passage."""
        role = self.terminal.app.role(ROLE_GATE)
        role.configure(self.wallet.config)
        result = self._held(virtual_card, lambda: role.gate.tap(direction))
        role.show(result)
        return result

    def backlog(self):
        """Records on this terminal not yet acknowledged by the hub."""
        return self.terminal.journal.depth()

    def tap_admin_card(self, admin_card):
        """A technician holds the admin system card to the reader; returns the authoriser's outcome."""
        self.board.field.add(admin_card)
        try:
            return self.terminal.authoriser.poll()
        finally:
            self.board.field.remove(admin_card)

    @property
    def serving(self):
        """True once the hub confirmed the authorisation."""
        return self.terminal.authoriser.state == SERVING


class Visitor:
    """A visitor's card: the virtual card and what the desk issued."""

    def __init__(self, card_no, uid, virtual, tier):
        self.card_no = card_no
        self.uid = uid
        self.virtual = virtual
        self.tier = tier


class ParkSim:
    """Broker + hub + terminals + visitors, all on loopback."""

    def __init__(self, workdir, terminals=4, cards=20, seed=1, broker_url=None, db=None, api=None, gates=0):
        """db: the hub's database (a postgresql:// URL); by default a SQLite file in workdir.

        api: a parkcard.api.server.ApiServer the hub serves (the API and the operator web app). gates: gate
        terminals after the booths (ids follow theirs), configured by the caller (Hub.configure_gate).
        """
        self.workdir = str(workdir)
        self.api = api
        self.db = db
        self.n_terminals = terminals
        self.n_gates = gates
        self.gates = []
        self.n_cards = cards
        self.rng = random.Random(seed)
        self.broker_url = broker_url
        self.secrets = None
        self.park_keys = None
        self.admin_card = None
        self.tls = None
        self.broker = None
        self.hub = None
        self.terminals = []
        self.desk = None
        self.shift = None           # the desk's open shift (rows.Shift)
        self.visitors = []
        self.loaded_cents = 0
        self.started_s = int(time.time())

    # -- set-up
    async def start(self):
        """Start broker and hub, register merchants and terminals, issue cards, bring terminals online."""
        os.makedirs(self.workdir, exist_ok=True)
        self.secrets, _created = secure.init_park(self.workdir)
        self.park_keys = self.secrets.park_keys
        hub_kwargs = secure.hub_kwargs(self.secrets)
        if self.broker_url:
            url = urlparse(self.broker_url)
            host, port = url.hostname or "127.0.0.1", url.port or 1883
            hub_kwargs.update(tls_ca=None, username=None, password=None)
        else:
            self.broker = secure.start_secure_broker(self.workdir, self.secrets, {})
            host, port = self.broker.host, self.broker.port
            self.tls = secure.terminal_tls_context(self.secrets.pki.ca_cert)
        db = self.db or os.path.join(self.workdir, "parkcard.db")
        if is_postgres(db):     # the park's audit log stays with its other files
            db = with_audit_log(db, os.path.join(self.workdir, "parkcard.audit.log"))
        self._hub_args = (db, dict(broker_host=host, broker_port=port, api=self.api, **hub_kwargs))
        self.hub = Hub(self._hub_args[0], **self._hub_args[1])
        await self.hub.start()
        await self.hub.wait_connected()
        await self.hub.add_merchant(DESK_MERCHANT_ID, "Front desk", 0)
        for merchant_id, name, bps in MERCHANTS:
            await self.hub.add_merchant(merchant_id, name, bps)
        desk_key = await self.hub.register_terminal(DESK_TERMINAL_ID, DESK_MERCHANT_ID, ROLE_DESK, "desk-1")
        # The cashier's day starts with a shift: every desk operation belongs to the desk's open one.
        self.shift = await shifts.open_shift(self.hub.storage, self.hub.actor("sim-cashier"), DESK_TERMINAL_ID,
                                             SHIFT_FLOAT_CENTS)
        plan = [(DESK_TERMINAL_ID, ROLE_DESK, DESK_MERCHANT_ID, desk_key)]
        for i in range(self.n_terminals):
            terminal_id = DESK_TERMINAL_ID + 1 + i
            role = ROLE_RIDE if i % 3 == 1 else ROLE_POS
            merchant_id = MERCHANTS[i % len(MERCHANTS)][0]
            key = await self.hub.register_terminal(terminal_id, merchant_id, role, "term-%d" % terminal_id,
                                                   fixed_price_cents=RIDE_PRICE_CENTS if role == ROLE_RIDE else 0)
            plan.append((terminal_id, role, merchant_id, key))
        for i in range(self.n_gates):
            terminal_id = DESK_TERMINAL_ID + 1 + self.n_terminals + i
            key = await self.hub.register_terminal(terminal_id, GATE_MERCHANT_ID, ROLE_GATE, "gate-%d" % terminal_id)
            plan.append((terminal_id, ROLE_GATE, GATE_MERCHANT_ID, key))
        passwords = await self.hub.terminal_credentials()
        if self.broker is not None:
            # The broker learns the new terminals' passwords (password file rewritten, SIGHUP).
            secure.refresh_terminals(self.broker, self.secrets, passwords)
        for terminal_id, role, merchant_id, key in plan:
            relay = await Relay(host, port).start()
            sim_terminal = SimTerminal(os.path.join(self.workdir, "term-%d" % terminal_id), terminal_id, key,
                                       self.secrets.transport_key, relay, role, merchant_id,
                                       passwords.get(terminal_id) if self.broker else None, self.tls)
            if role == ROLE_DESK:
                self.desk = sim_terminal
            else:
                self.terminals.append(sim_terminal)
                if role == ROLE_GATE:
                    self.gates.append(sim_terminal)
        everyone = [self.desk] + self.terminals
        for t in everyone:
            t.terminal.start()
        await self.wait_for(lambda: all(t.wallet.config is not None for t in everyone), 30,
                            "terminals did not receive their config from the hub")
        await self.make_admin_card()
        await self.authorise_all()
        await self._issue_cards()
        return self

    async def restart_hub(self):
        """Stop the hub and start another on the same database and broker (what a supervisor does after a crash);
        terminals keep their links to the broker and go on with the new hub."""
        await self.hub.stop()
        self.hub = Hub(self._hub_args[0], **self._hub_args[1])
        await self.hub.start()
        await self.hub.wait_connected()
        return self.hub

    async def make_admin_card(self):
        """The hub issues the admin system card and the desk terminal writes it onto a blank card."""
        blank = MifareClassic1K(ADMIN_CARD_UID)
        issued = await self.at_desk(blank, self.hub.issue_admin_card_at_desk(ADMIN_CARD_UID,
                                                                                      DESK_TERMINAL_ID, timeout_s=30))
        self.admin_card = blank
        self.admin_card_no = issued.card_no

    async def sell_ticket(self, visitor, product_id, start_day=None, replace=False):
        """The desk sells a ticket onto the visitor's card and its terminal writes it; returns the TicketSale
        (replace: over a ticket still valid)."""
        return await self.at_desk(visitor.virtual, self.hub.sell_ticket_at_desk(
            DESK_TERMINAL_ID, product_id, visitor.card_no, start_day, timeout_s=30, replace=replace))

    async def authorise_all(self):
        """The technician's round: tap the admin system card on every terminal until the hub confirms."""
        for t in self.terminals:
            outcome = t.tap_admin_card(self.admin_card)
            if outcome != "sent":
                raise RuntimeError("terminal %d refused the admin card: %s" % (t.terminal_id, outcome))
        await self.wait_for(lambda: all(t.serving for t in self.terminals), 30,
                            "the hub did not confirm the terminals' authorisation")

    async def at_desk(self, virtual_card, operation):
        """Hold a card on the desk terminal while the hub runs `operation` (a coroutine); return its result."""
        field = self.desk.board.field
        field.add(virtual_card)
        task = asyncio.ensure_future(operation)
        given_up = time.monotonic() + AT_DESK_S
        try:
            while not task.done():      # the desk's tap loop, one step at a time
                if time.monotonic() > given_up:
                    task.cancel()
                    raise TimeoutError("the desk operation did not end within %d s with the card on the desk"
                                       % AT_DESK_S)
                self.desk.terminal.card_writer.poll()
                await asyncio.sleep(DESK_POLL_S)
            return await task
        finally:
            field.remove(virtual_card)

    async def keep_desk_reading(self):
        """The desk terminal's reader loop for as long as the park runs (a cashier's screen drives the desk):
        a card put on the desk with put_on_desk is there for every order until take_from_desk."""
        while True:
            self.desk.terminal.card_writer.poll()
            await asyncio.sleep(DRAIN_POLL_S)

    def put_on_desk(self, virtual_card):
        """Lay a card on the desk terminal's reader (it stays until take_from_desk)."""
        self.desk.board.field.add(virtual_card)

    def take_from_desk(self, virtual_card):
        """Take a card off the desk terminal's reader."""
        self.desk.board.field.remove(virtual_card)

    async def new_card(self, uid):
        """A blank card from the box, initialised at the desk as card stock (keys, nothing loaded)."""
        virtual = MifareClassic1K(uid)
        await self.at_desk(virtual, self.hub.stock_card(DESK_TERMINAL_ID, uid))
        return virtual

    async def _issue_cards(self):
        """Issue the visitors' cards through the desk: stock, then issue with a first load (the real path)."""
        desk = self.hub.desk(DESK_TERMINAL_ID)
        for i in range(self.n_cards):
            uid = bytes([0x04]) + bytes(self.rng.getrandbits(8) for _ in range(6))
            tier = C.TIER_GOLD if i % 5 == 0 else C.TIER_STANDARD
            cash = self.rng.randrange(50, 201) * 100
            virtual = await self.new_card(uid)
            issued = await self.at_desk(virtual, desk.issue("sim-issue-%s" % uid.hex(), cash, tier=tier,
                                                            deposit_cents=500))
            self.loaded_cents += issued.balance_cents
            self.visitors.append(Visitor(issued.card_no, uid, virtual, tier))

    # -- running
    def amount_for(self, terminal):
        """What this terminal charges for the next tap."""
        if terminal.role == ROLE_RIDE:
            return terminal.wallet.config.fixed_price_cents
        return self.rng.randrange(150, 2500, 10)

    async def random_tap(self):
        """One visitor taps at one terminal; returns (terminal, visitor, result)."""
        terminal = self.rng.choice([t for t in self.terminals if t.role != ROLE_GATE])
        visitor = self.rng.choice(self.visitors)
        result = terminal.tap(visitor.virtual, self.amount_for(terminal))
        await asyncio.sleep(0)  # let the link tasks run between taps
        return terminal, visitor, result

    async def wait_for(self, predicate, timeout_s, what):
        """Wait until predicate() holds; raise TimeoutError(what) at the deadline."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(what)
            await asyncio.sleep(DRAIN_POLL_S)

    async def drain(self, timeout_s=60):
        """Wait until every terminal's journal is acknowledged by the hub."""
        await self.wait_for(lambda: all(t.backlog() == 0 for t in self.terminals), timeout_s,
                            "terminals still hold unacknowledged records")

    # -- results
    async def card_mismatches(self):
        """Cards whose hub shadow balance differs from the balance on the card: [(card_no, card, hub)]."""
        out = []
        for v in self.visitors:
            on_card = card_balance(self.park_keys, v.virtual).balance_cents
            row = await self.hub.storage.card(v.card_no)
            if row is None or row.shadow_balance_cents != on_card:
                out.append((v.card_no, on_card, None if row is None else row.shadow_balance_cents))
        return out

    async def ledger_report(self):
        """The hub's ledger check."""
        return await audit.check(self.hub.storage)

    async def settle(self):
        """Close the demo's settlement period (up to the next whole second) for every merchant; return the rows."""
        end_s = int(time.time()) + 1
        # A period is closed once it is over: wait out the second that holds the last taps.
        while time.time() < end_s:     # asyncio's clock is not the wall clock: check the one that counts
            await asyncio.sleep(end_s - time.time())
        closed = await settlement.close_all(self.hub.storage, [m[0] for m in MERCHANTS], self.started_s - 1, end_s)
        return [row for row, _new in closed]

    async def __aenter__(self):
        try:
            return await self.start()
        except BaseException:
            await self.stop()       # a park that failed half-way must not leave a broker behind
            raise

    async def __aexit__(self, *exc):
        await self.stop()

    async def stop(self):
        """Stop terminals, relays, hub and broker."""
        for t in self.terminals + ([self.desk] if self.desk else []):
            await t.terminal.stop()
            await t.relay.stop()
        if self.hub is not None:
            await self.hub.stop()
        if self.broker is not None:
            self.broker.stop()
