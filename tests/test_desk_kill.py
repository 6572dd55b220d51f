"""The hub as a real process (`parkcard up`), SIGKILLed between a desk operation kept pending and its posting.

The park (Mosquitto with TLS, the desk terminal's firmware on a virtual reader, a card issued at the desk's open
shift) runs in the test; the hub runs as `parkcard up --no-broker` on the park's database, and the cashier's
top-up is the real command `parkcard card top-up`. The moment is chosen by the desk terminal: it writes the card
but its report never leaves (its network is cut as it takes the write order), so the hub holds the operation
pending, the card holds the top-up, and the hub is killed there. Restarted, the hub queues the unfinished
request again; the cashier's retry with the same operation id posts it exactly once: the card and the ledger
agree and `parkcard ledger check` passes.
"""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from protocol import desk as D
from protocol import record as R
from sim.cards import card_balance

from parkcard.domain.lifecycle import DeskOpState
from parkcard.money import format_cents
from parkcard.store import store_for
from parkcard_devkit.park_sim import DESK_POLL_S, DESK_TERMINAL_ID, ParkSim

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARKCARD = str(Path(sys.executable).with_name("parkcard"))
OP_ID = "killed-top-up"
WAIT_S = 60         # bounds every wait below: a hub that never answers fails the test, it does not hang it


def _parkcard(db, *args):
    """`parkcard --db db ARGS` started as a process of its own (output to a file beside the database)."""
    log = open(Path(db).with_name("cli-%s.log" % "-".join(args[:2])), "a")
    return subprocess.Popen([PARKCARD, "--db", db, *args], stdout=log, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))


class HubProcess:
    """`parkcard up --no-broker` on the park's database and broker, its log in a file."""

    def __init__(self, db, broker_port, name):
        self.log_path = Path(db).with_name("%s.log" % name)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([PARKCARD, "--db", db, "up", "--no-broker", "--broker-port",
                                          str(broker_port)], stdout=log, stderr=subprocess.STDOUT,
                                         env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def log(self):
        """What the hub printed so far."""
        return self.log_path.read_text()

    def started(self):
        """True once the hub reports it has connected and started its tasks (it exits with its reason else)."""
        if self.proc.poll() is not None:
            raise AssertionError("parkcard up exited with %s:\n%s" % (self.proc.returncode, self.log()))
        return "event=hub_started" in self.log()


async def until(predicate, what, drive=None):
    """Poll predicate (driving the desk terminal's loop each time, when given) until true; fail after WAIT_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("no %s within %d s" % (what, WAIT_S))
        if drive is not None:
            drive()
        await asyncio.sleep(DESK_POLL_S)


def _desk_order(sim):
    """The order the desk terminal holds now (SPEC.md §5.9 op), or None."""
    job = sim.desk.terminal.card_writer.job
    return job[2][0] if job is not None and isinstance(job[2], tuple) else None


async def _kept(db):
    storage = await store_for(db).open()
    try:
        return (await storage.desk_operation(OP_ID), await storage.desk_request(OP_ID),
                [r for r in await storage.records(D.DESK_SOURCE_ID) if r.kind == R.KIND_TOPUP])
    finally:
        await storage.close()


def test_a_hub_killed_between_pending_and_posted_posts_the_top_up_once_on_the_retry(tmp_path):
    async def scenario():
        async with ParkSim(tmp_path / "park", terminals=0, cards=1) as sim:
            visitor = sim.visitors[0]
            db = os.path.join(sim.workdir, "parkcard.db")
            before = card_balance(sim.park_keys, visitor.virtual).balance_cents
            await sim.hub.stop()            # the in-process hub hands the database to a hub process
            hub = HubProcess(db, sim.broker.port, "up-1")
            cashier = None
            desk = sim.desk.terminal.card_writer
            sim.desk.board.field.add(visitor.virtual)
            try:
                await until(hub.started, "start of the hub process")
                cashier = _parkcard(db, "card", "top-up", "40", "--desk", str(DESK_TERMINAL_ID), "--op-id", OP_ID)
                await until(lambda: _desk_order(sim) == D.OP_WRITE, "write order at the desk", drive=desk.poll)
                kept, request, records = await _kept(db)
                assert (kept.state, request.state, records) == (DeskOpState.PENDING, "started", [])
                loaded = kept.amount_cents          # 40.00 and the card's tier bonus
                assert loaded >= 4000
                sim.desk.relay.cut()        # the desk writes the card; its report never reaches the hub
                desk.poll()
                assert card_balance(sim.park_keys, visitor.virtual).balance_cents == before + loaded
                hub.proc.send_signal(signal.SIGKILL)
                assert hub.proc.wait(WAIT_S) == -signal.SIGKILL
                cashier.terminate()         # the cashier's window closed with the hub
                cashier.wait(WAIT_S)
                kept, request, records = await _kept(db)
                assert (kept.state, request.state, records) == (DeskOpState.PENDING, "started", [])

                sim.desk.relay.restore()
                await until(lambda: sim.desk.terminal.client.connected, "reconnect of the desk terminal",
                            drive=desk.poll)
                hub = HubProcess(db, sim.broker.port, "up-2")
                await until(hub.started, "restart of the hub process", drive=desk.poll)
                retry = _parkcard(db, "card", "top-up", "40", "--desk", str(DESK_TERMINAL_ID), "--op-id", OP_ID)
                await until(lambda: retry.poll() is not None, "answer to the retry", drive=desk.poll)
                said = Path(db).with_name("cli-card-top-up.log").read_text()
                assert retry.returncode == 0, said
                assert "card %d topped up by %s" % (visitor.card_no, format_cents(loaded, "CNY")) in said
                assert "balance %s [operation %s]" % (format_cents(before + loaded, "CNY"), OP_ID) in said
            finally:
                sim.desk.board.field.remove(visitor.virtual)
                for proc in (cashier, hub.proc):
                    if proc is not None and proc.poll() is None:
                        proc.terminate()
                        proc.wait(WAIT_S)
            on_card = card_balance(sim.park_keys, visitor.virtual).balance_cents
            assert on_card == before + loaded       # written once
            kept, request, records = await _kept(db)
            assert (kept.state, request.state, len(records)) == (DeskOpState.POSTED, "done", 1)
            assert kept.record_seq == records[0].seq
            storage = await store_for(db).open()
            try:
                assert await storage.account_balance("card:%d" % visitor.card_no) == on_card
                assert (await storage.card(visitor.card_no)).shadow_balance_cents == on_card
            finally:
                await storage.close()
            check = subprocess.run([PARKCARD, "--db", db, "ledger", "check"], capture_output=True, text=True,
                                   timeout=WAIT_S)
            assert check.returncode == 0, check.stdout + check.stderr
    asyncio.run(asyncio.wait_for(scenario(), 300))
