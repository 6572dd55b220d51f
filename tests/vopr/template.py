"""The park every seed starts from, built once per process: hub set up, cards issued, terminals authorised.

Built by the same Park and steps as a run, with no faults: merchants and
terminals registered, visitor cards issued at the hub's desk, an admin
system card written by the desk terminal's card writer (the real
CardWriter on the virtual reader) and tapped on every booth, which the hub
confirms. A seed's run copies the directory and boots everything from it.
"""

import asyncio
import atexit
import hashlib
import json
import os
import random
import shutil
import tempfile

from protocol import card as C
from protocol.config import ROLE_DESK, ROLE_POS, ROLE_RIDE
from sim.mifare import MifareClassic1K
from terminal.authorise import SERVING

from parkcard.services import shifts

from vopr.clock import SimClock, hub_reads
from vopr.flash import FlashFiles
from vopr.park import DESK_TERMINAL_ID, PLAN_FILE, Park
from vopr.terminals import TerminalPlan

DESK_ID = DESK_TERMINAL_ID
DESK_MERCHANT = (1, "Front desk", 0)
MERCHANTS = ((2, "Food court", 1200), (3, "Rides", 800), (4, "Gift shop", 1500))
RIDE_PRICE_CENTS = 450
ADMIN_CARD_UID = bytes.fromhex("04adadadadad01")
QUIET_ROUNDS_MAX = 50
_cache = {}


def _key(label):
    return hashlib.sha256(b"parkcard-vopr|" + label.encode()).digest()


def _plans(n_terminals):
    """The desk, then booths in turn: a food-court pos, a ride, a gift-shop pos, ..."""
    plans = [TerminalPlan(DESK_ID, ROLE_DESK, DESK_MERCHANT[0], DESK_MERCHANT[2], _key("term-%d" % DESK_ID))]
    for i in range(n_terminals):
        terminal_id = DESK_ID + 1 + i
        merchant_id, _name, bps = MERCHANTS[i % 3]
        ride = i % 3 == 1
        plans.append(TerminalPlan(terminal_id, ROLE_RIDE if ride else ROLE_POS, merchant_id, bps,
                                  _key("term-%d" % terminal_id), RIDE_PRICE_CENTS if ride else 0))
    return plans


def template(n_terminals, n_cards):
    """The directory of the starting park for this size (built on first use in this process)."""
    size = (n_terminals, n_cards)
    if size not in _cache:
        root = tempfile.mkdtemp(prefix="parkcard-vopr-template-", dir=scratch_root())
        atexit.register(shutil.rmtree, root, True)      # memory-backed: it must not outlive the process
        asyncio.run(_build(root, n_terminals, n_cards))
        _cache[size] = root
    return _cache[size]


def scratch_root():
    """Where parks live: memory-backed when the machine has it (fsync is the firmware's and SQLite's, not ours)."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def copy_of(template_dir, workdir):
    """A fresh park directory holding the template's files."""
    shutil.copytree(template_dir, workdir)
    return workdir


async def _build(root, n_terminals, n_cards):
    rng = random.Random(0)
    plans = _plans(n_terminals)
    park_keys = [_key("master-a").hex(), _key("master-b").hex(), _key("master-mac").hex()]
    plan = {"park_keys": park_keys, "transport_key": _key("transport").hex(),
            "terminals": [p.to_json() for p in plans], "booths": [p.terminal_id for p in plans[1:]] + [DESK_ID],
            "visitors": []}
    _write_plan(root, plan)
    clock = SimClock()
    files = FlashFiles()
    with hub_reads(clock), files.installed():
        park = Park(root, clock, files)
        await park.start_hub()
        hub = park.hub
        for merchant_id, name, bps in (DESK_MERCHANT,) + MERCHANTS:
            await hub.add_merchant(merchant_id, name, bps)
        for p in plans:
            await hub.register_terminal(p.terminal_id, p.merchant_id, p.role, "term-%d" % p.terminal_id, key=p.key,
                                        fixed_price_cents=p.fixed_price_cents)
        for sim_terminal in park.terminals.values():
            sim_terminal.provision(park.transport_key)
            sim_terminal.boot()
        await park.refresh_links()
        await _quiet(park)
        await _authorise(park, hub)
        # The cashier's shift stays open for the whole simulated day: every desk operation belongs to it.
        await shifts.open_shift(hub.storage, hub.actor("vopr-cashier"), DESK_ID, 0)
        await _issue_cards(park, hub, rng, n_cards, plan)
        await park.close()
    plan["booths"].remove(DESK_ID)
    _write_plan(root, plan)


async def _authorise(park, hub):
    """The hub has the desk terminal's card writer write an admin card; a technician taps it on every booth."""
    desk = park.terminals[DESK_ID]
    admin = MifareClassic1K(ADMIN_CARD_UID)
    issuing = asyncio.create_task(hub.issue_admin_card_at_desk(ADMIN_CARD_UID, DESK_ID))
    await _until(lambda: issuing.done() or any(p.dst == DESK_ID for p in park.network.in_flight),
                 "the hub sent no card write to the desk")
    await _quiet(park)                              # T_CARD_WRITE reaches the desk
    desk.board.field.add(admin)
    status = desk.terminal.card_writer.poll()
    desk.board.field.remove(admin)
    if status != 0:
        raise RuntimeError("the desk could not write the admin card: status %r" % status)
    await asyncio.sleep(0)                          # T_CARD_RESULT goes out from a task of the firmware's
    await _quiet(park)
    await _until(issuing.done, "the hub did not take the desk's card result")
    issuing.result()
    await _quiet(park)
    for sim_terminal in park.terminals.values():
        if sim_terminal.terminal_id == DESK_ID:
            continue
        sim_terminal.board.field.add(admin)
        outcome = sim_terminal.terminal.authoriser.poll()
        sim_terminal.board.field.remove(admin)
        if outcome != "sent":
            raise RuntimeError("term-%d refused the admin card: %s" % (sim_terminal.terminal_id, outcome))
        await asyncio.sleep(0)      # T_AUTH goes out from a task of the firmware's
        await _quiet(park)
        if sim_terminal.terminal.authoriser.state != SERVING:
            raise RuntimeError("the hub did not confirm term-%d" % sim_terminal.terminal_id)


async def _issue_cards(park, hub, rng, n_cards, plan):
    """Cashier's work: each blank card made card stock at the desk, then issued there (the real path)."""
    desk = hub.desk(DESK_ID)
    for i in range(n_cards):
        uid = bytes([0x04]) + bytes(rng.getrandbits(8) for _ in range(6))
        virtual = MifareClassic1K(uid)
        stocked, _pulled = await park.at_desk(virtual, hub.stock_card(DESK_ID, uid))
        if isinstance(stocked, BaseException):
            raise RuntimeError("the desk could not make card %s stock: %r" % (uid.hex(), stocked))
        issued, _pulled = await park.at_desk(virtual, desk.issue(
            "template-issue-%d" % i, rng.randrange(50, 201) * 100,
            tier=C.TIER_GOLD if i % 5 == 0 else C.TIER_STANDARD, deposit_cents=500))
        if isinstance(issued, BaseException):
            raise RuntimeError("the desk could not issue card %s: %r" % (uid.hex(), issued))
        plan["visitors"].append({"card_no": issued.card_no, "uid": uid.hex(),
                                 "blocks": {str(b): bytes(virtual.blocks[b]).hex() for b in range(4, 8)}})
    await _quiet(park)


async def _quiet(park):
    """Deliver everything until nothing moves (no faults)."""
    for _ in range(QUIET_ROUNDS_MAX):
        moved = False
        while park.network.in_flight:
            await park.deliver(0)
            moved = True
        if park.broker.hub_queue:
            await park.hub_consume(len(park.broker.hub_queue))
            moved = True
        if not moved:
            return
    raise RuntimeError("the template park did not come to rest")


async def _until(predicate, what, turns_max=20000):
    """Let the hub's own tasks run (database round trips) until predicate() holds; bounded, never timed."""
    for _ in range(turns_max):
        if predicate():
            return
        await asyncio.sleep(0.0005)
    raise RuntimeError(what)


def _write_plan(root, plan):
    with open(os.path.join(root, PLAN_FILE), "w") as f:
        json.dump(plan, f, indent=1)
