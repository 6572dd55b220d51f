"""End to end: real Mosquitto, the hub on SQLite, terminals running the firmware code on virtual readers."""

import asyncio

import pytest

from protocol import card as C
from protocol import record as R
from terminal import wallet as w

from parkcard_devkit.park_sim import ParkSim

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def in_park(tmp_path, scenario, **park):
    """Run `await scenario(sim)` in a freshly started park, stopped whatever happens."""
    async def go():
        async with ParkSim(tmp_path / "park", **park) as sim:
            await scenario(sim)
    asyncio.run(go())


async def _settled_and_balanced(sim):
    await sim.drain(60)
    assert await sim.card_mismatches() == []
    report = await sim.ledger_report()
    assert report.ok, "\n".join(report.lines())
    return report


def test_taps_settle_and_every_shadow_balance_equals_the_card(tmp_path):
    async def scenario(sim):
        approved = []
        for _ in range(120):
            _t, _v, result = await sim.random_tap()
            if result.ok:
                approved.append(result.amount_cents)
        assert len(approved) > 50
        report = await _settled_and_balanced(sim)
        # every approved tap is one applied record with its ledger transaction
        debits = len([r for r in await sim.hub.storage.records() if r.kind == R.KIND_DEBIT and r.status == "applied"])
        assert debits == len(approved)
        assert report.transactions == len(approved) + len(sim.visitors)
        sales = sum(row.sales_cents for row in await sim.settle())
        assert sales == sum(approved)
    in_park(tmp_path, scenario, terminals=3, cards=8, seed=7)


def test_terminal_offline_for_1000_taps_reconnects_and_drains(tmp_path):
    async def scenario(sim):
        offline = sim.terminals[0]
        offline.relay.cut()
        await sim.wait_for(lambda: not offline.terminal.client.connected, 10, "terminal still connected")
        taken = 0
        for i in range(1000):
            visitor = sim.visitors[i % len(sim.visitors)]
            result = offline.tap(visitor.virtual, 10)
            assert result.ok or result.reason in (w.INSUFFICIENT, w.OVER_DAILY_CAP), result
            taken += result.ok
        assert offline.backlog() == taken > 900
        offline.relay.restore()
        await _settled_and_balanced(sim)
        stored = len([r for r in await sim.hub.storage.records(offline.terminal_id) if r.status == "applied"])
        assert stored == taken
    in_park(tmp_path, scenario, terminals=2, cards=30, seed=3)


def test_broker_restart_loses_nothing(tmp_path):
    async def scenario(sim):
        for _ in range(30):
            await sim.random_tap()
        sim.broker.kill()
        before = {t: t.backlog() for t in sim.terminals}
        approved = dict.fromkeys(sim.terminals, 0)
        for _ in range(30):  # the terminals keep serving while the broker is down
            terminal, _v, result = await sim.random_tap()
            approved[terminal] += result.ok
        assert sum(approved.values()) > 0
        for t in sim.terminals:
            # No hub can acknowledge what was taken while the broker is dead: each sale is one more
            # record held (acknowledgements already on their way may still take some of the older ones).
            assert approved[t] <= t.backlog() <= before[t] + approved[t], (t.terminal_id, before[t], approved[t])
        sim.broker.start()
        await sim.hub.wait_connected(30)
        await _settled_and_balanced(sim)
    in_park(tmp_path, scenario, terminals=2, cards=6, seed=5)


def test_card_restored_from_old_dump_is_caught_blacklisted_and_refused_elsewhere(tmp_path):
    async def scenario(sim):
        pos = [t for t in sim.terminals if t.role == 1]
        a, b = pos[0], pos[1]
        other = sim.terminals[-1] if sim.terminals[-1] not in (a, b) else sim.terminals[1]
        victim = sim.visitors[0]
        dump = [bytes(block) for block in victim.virtual.blocks]
        assert a.tap(victim.virtual, 300).ok
        for i, block in enumerate(dump):  # the fraudster writes the old dump back
            victim.virtual.blocks[i][:] = block
        assert b.tap(victim.virtual, 300).ok  # offline rules cannot tell: the sale is made
        await sim.wait_for(lambda: all(t.wallet.blacklist.contains(victim.card_no) for t in sim.terminals),
                           30, "blacklist did not reach the terminals")
        alarms = await sim.hub.storage.alarms()
        assert any(victim.card_no in tuple(row) for row in alarms)
        refused = other.tap(victim.virtual, 100)
        assert not refused.ok and refused.reason == w.BLACKLISTED
        slot = C.read_slots(bytes(victim.virtual.blocks[5]), bytes(victim.virtual.blocks[6]),
                            C.CardKeys(sim.park_keys, victim.uid))[0]
        assert slot.locked  # the card itself is now locked
        await sim.drain(30)
        report = await sim.ledger_report()
        assert report.ok and report.flagged == [victim.card_no]
    in_park(tmp_path, scenario, terminals=3, cards=3, seed=11)


def test_park_runs_over_tls_with_acls_and_admin_card_authorisation(tmp_path):
    import paho.mqtt.client as mqtt

    from terminal.authorise import LOCKED

    async def scenario(sim):
        # every terminal was authorised by the admin card tap the hub confirmed
        assert all(t.serving for t in sim.terminals)
        # and every operation so far is in the hash-chained audit log
        from parkcard.oplog import verify
        actions = [e["action"] for e in sim.hub.storage.oplog.entries()]
        for action, count in (("merchant.add", 4), ("terminal.add", 3), ("card.issue", 2),
                              ("admin_card.issue", 1), ("card.stock", 2), ("desk.pending", 2), ("desk.source", 1),
                              ("card.written", 3), ("terminal.authorise", 2)):   # the admin card, two stock cards
            assert actions.count(action) == count, (action, actions)
        assert verify(sim.hub.storage.oplog.path, await sim.hub.storage.audit_anchor()).ok
        # the broker speaks TLS only: even term-2's own password gets nowhere in plaintext
        plain = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="term-2")
        plain.username_pw_set("term-2", (await sim.hub.terminal_credentials())[2])
        try:
            plain.connect(sim.broker.host, sim.broker.port, keepalive=5)
            for _ in range(3):      # a CONNACK, if the broker ever sent one, arrives in these loops
                plain.loop(timeout=0.5)
            connected = plain.is_connected()
        except OSError:             # the broker dropped the plaintext connection
            connected = False
        assert not connected
        # the hub locks a terminal: it forgets its keys and takes no money
        victim, other = sim.terminals
        await sim.hub.lock_terminal(victim.terminal_id)
        await sim.wait_for(lambda: victim.terminal.authoriser.state == LOCKED, 15, "terminal not locked")
        refused = victim.tap(sim.visitors[0].virtual, 100)
        assert not refused.ok and refused.reason == w.NOT_READY
        assert victim.board.keystore().get("park_keys") is None
        # a revoked admin card authorises nothing, even on an unlocked terminal
        await sim.hub.unlock_terminal(victim.terminal_id)
        await sim.hub.revoke_admin_card(sim.admin_card_no, "lost")
        assert victim.tap_admin_card(sim.admin_card) == "sent"
        await sim.wait_for(lambda: victim.terminal.authoriser.state == LOCKED
                           and victim.terminal.authoriser.reason is not None, 15, "no answer from the hub")
        assert not victim.serving
        assert not victim.tap(sim.visitors[0].virtual, 100).ok
        # the other terminal still serves (its ACL and password are tested in test_broker_security)
        assert other.tap(sim.visitors[1].virtual, 100).ok
        await _settled_and_balanced(sim)
    in_park(tmp_path, scenario, terminals=2, cards=2, seed=13)


def test_operator_issues_an_admin_card_through_the_desk_terminal(tmp_path):
    from click.testing import CliRunner

    from protocol import admin_card
    from sim.mifare import MifareClassic1K

    from parkcard.cli import main

    async def issue(sim, card, uid):
        sim.desk.board.field.add(card)
        args = ["--db", str(sim.hub.storage.path), "admin-card", "issue", "--desk", "1", "--uid", uid.hex(),
                "--wait", "30"]
        cli = asyncio.create_task(asyncio.to_thread(CliRunner().invoke, main, args))
        while not cli.done():   # the desk terminal's tap loop
            sim.desk.terminal.card_writer.poll()
            await asyncio.sleep(0.05)
        sim.desk.board.field.remove(card)
        return await cli

    async def scenario(sim):
        uid = bytes.fromhex("04aabbccddee02")
        blank = MifareClassic1K(uid)
        result = await issue(sim, blank, uid)
        assert result.exit_code == 0, result.output
        assert "written at desk terminal 1" in result.output
        number, keys = admin_card.unseal(sim.secrets.transport_key, {b: bytes(blank.blocks[b]) for b in range(64)},
                                         uid, desk=True)
        assert keys.pack() == sim.park_keys.pack() and "admin card %d" % number in result.output
        # the new card authorises a terminal like the first one
        terminal = sim.terminals[0]
        await sim.hub.deauthorise_terminal(terminal.terminal_id)
        await sim.wait_for(lambda: not terminal.serving, 15, "terminal still serving")
        assert terminal.tap_admin_card(blank) == "sent"
        await sim.wait_for(lambda: terminal.serving, 15, "the new admin card was not confirmed")
        # a card that is not blank is refused with a clear message and left as it was
        used = MifareClassic1K(bytes.fromhex("04aabbccddee03"))
        used.blocks[7][:] = bytes(6) + bytes.fromhex("ff078069") + bytes(6)
        before = [bytes(b) for b in used.blocks]
        refused = await issue(sim, used, used.uid)
        assert refused.exit_code != 0 and "not a blank card" in refused.output
        assert [bytes(b) for b in used.blocks] == before
    in_park(tmp_path, scenario, terminals=1, cards=1, seed=17)


@pytest.mark.brokers
def test_demo_on_an_existing_plaintext_broker_settles_and_balances(tmp_path, broker):
    """`parkcard demo --broker mqtt://host:port` on each broker the tests know (conftest)."""
    from click.testing import CliRunner

    from parkcard.cli import main

    url = "mqtt://%s:%d" % (broker.host, broker.port)
    result = CliRunner().invoke(main, ["demo", "--broker", url, "--terminals", "2", "--taps", "40", "--cards", "5",
                                       "--dir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "broker %s (plaintext" % url in result.output
    assert "cards whose balance at the hub differs from the card itself: 0" in result.output
    assert "RESULT: OK" in result.output
