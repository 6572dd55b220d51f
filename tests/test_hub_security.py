"""Hub security: park secrets, bundles, the secure broker, admin system cards, terminal locks, blacklist attempts."""

import asyncio
import json
import os
import queue
import stat

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner

from protocol import admin_card, frames
from protocol import record as R

from parkcard import audit, oplog
from parkcard.cli import main
from parkcard.security import secure
from parkcard.services.admin_cards import ADMIN_CARD_NO_FIRST
from parkcard.services.privileges import ServiceError
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, ScriptedTerminal, desk_issued, start_hub
from parkcard_flash.bundle import parse_bundle
from store_kit import counts, records, terminal

ADMIN_UID = bytes.fromhex("04adadadadad01")
CARD_UID = b"\x04\xa1\xb2\xc3"
WAIT_S = 10


def run(coro, timeout_s=120):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def commands(term):
    return [frames.parse_command(f.body)[0] for f in term.downlinks(frames.T_COMMAND)]


async def wait_command(term, command, count=1):
    await asyncio.to_thread(term.wait, lambda t: commands(t).count(command) >= count, WAIT_S)


async def secured_hub(tmp_path, broker):
    """A hub with the park's keys (as `parkcard up` gives it), on an open broker."""
    park, _ = secure.init_park(tmp_path / "park")
    kwargs = secure.hub_kwargs(park)
    for name in ("tls_ca", "username", "password"):
        del kwargs[name]
    return await start_hub(tmp_path / "hub.db", broker.host, broker.port, **kwargs)


async def booth(hub, broker, terminal_id):
    key = await hub.register_terminal(terminal_id, MERCHANT_ICE, frames.ROLE_POS, "booth %d" % terminal_id)
    return await asyncio.to_thread(ScriptedTerminal(broker.host, broker.port, terminal_id, key).connect)


async def written_admin_card(hub, uid=ADMIN_UID):
    """An admin card issued and reported written by the desk (as its T_CARD_RESULT CARD_OK would settle it)."""
    issued = await hub.issue_admin_card(uid, DESK_ID)
    assert await hub.storage.settle_admin_card(issued.card_no, True) == "written"
    return issued


def tap_admin(term, card_no, uid=ADMIN_UID):
    term.publish(term.frame(frames.T_AUTH, frames.auth_body(card_no, uid)))


# -- parkcard init and the bundle

def test_init_is_idempotent_and_keeps_secrets_private(tmp_path):
    db = tmp_path / "var" / "parkcard.db"
    first = cli("--db", db, "init")
    assert first.exit_code == 0, first.output
    assert "created" in first.output and "park-secrets.json" in first.output
    secrets_file = tmp_path / "var" / "park-secrets.json"
    before = {p: p.read_bytes() for p in (tmp_path / "var").rglob("*") if p.is_file()}
    second = cli("--db", db, "init")
    assert second.exit_code == 0 and "nothing changed" in second.output and "created" not in second.output
    assert {p: p.read_bytes() for p in before} == before
    for private in (secrets_file, tmp_path / "var" / "pki" / "ca.key", tmp_path / "var" / "pki" / "server.key"):
        assert mode(private) == 0o600, private
    park = secure.load_park(tmp_path / "var")
    keys = park.park_keys
    assert len({keys.master_a, keys.master_b, keys.master_mac, park.transport_key}) == 4
    assert all(len(k) == 32 for k in (keys.master_a, keys.master_b, keys.master_mac, park.transport_key))


def test_secrets_readable_by_others_are_refused(tmp_path):
    secure.init_park(tmp_path)
    os.chmod(tmp_path / secure.SECRETS_FILE, 0o644)
    with pytest.raises(secure.SecureParkError, match="chmod 600"):
        secure.load_park(tmp_path)
    assert secure.load_park(tmp_path / "elsewhere") is None


def test_bundle_carries_the_stored_password_transport_key_and_ca(tmp_path):
    db = tmp_path / "hub.db"
    assert cli("--db", db, "init").exit_code == 0
    assert cli("--db", db, "merchant", "add", "--id", 2, "--name", "ice", "--commission-bps", 1000).exit_code == 0
    result = cli("--db", db, "terminal", "add", "--id", 7, "--merchant", 2, "--role", "pos", "--name", "ice 7",
                 "--export", tmp_path / "t7.json", "--wifi-ssid", "park", "--wifi-password", "12345678")
    assert result.exit_code == 0, result.output
    assert mode(tmp_path / "t7.json") == 0o600
    data = json.loads((tmp_path / "t7.json").read_text())
    park = secure.load_park(tmp_path)
    key, password = terminal(db, 7).key, terminal(db, 7).broker_password
    assert data["password"] == password and len(password) >= 32
    assert bytes.fromhex(data["terminal_key"]) == key
    assert bytes.fromhex(data["transport_key"]) == park.transport_key
    assert data["ca_pem"] == park.pki.ca_pem().decode()
    assert (data["username"], data["broker_host"], data["broker_port"]) == ("term-7", "localhost", 8883)
    bundle = parse_bundle(data)                   # what parkcard-flash checks
    assert bundle.password == password and bundle.transport_key == park.transport_key


def test_up_refuses_without_init(tmp_path):
    result = cli("--db", tmp_path / "hub.db", "up")
    assert result.exit_code == 2 and "run `parkcard init` first" in result.output


# -- the secure broker

@pytest.mark.broker
def test_secure_park_refuses_anonymous_and_serves_hub_and_terminals_over_tls(tmp_path):
    async def scenario():
        hub_db = tmp_path / "hub.db"
        broker, kwargs, park = secure.start_secure_park(tmp_path / "park")
        try:
            refused = await asyncio.to_thread(anonymous_connack, broker, park)
            assert refused.is_failure and str(refused) == "Not authorized"
            hub = await start_hub(hub_db, broker.host, broker.port,
                                  on_terminals_added=secure.broker_refresher(broker, park), **kwargs)
            try:
                key = await hub.register_terminal(5, MERCHANT_ICE, frames.ROLE_POS, "booth 5")
                await hub.poll_registry()
                creds = await hub.terminal_credentials()
                # The hub registered term-5 itself: the caller refreshes the broker (a CLI one is found by the poll).
                await secure.broker_refresher(broker, park)(hub, [5])
                term = ScriptedTerminal(broker.host, broker.port, 5, key, password=creds[5],
                                        tls_ca=park.pki.ca_cert)
                await asyncio.to_thread(term.connect)
                term.record(R.KIND_ATTEMPT, 123, 4, 0, 0)
                term.upload()
                await asyncio.to_thread(term.wait_acked, 1)
                term.close()
                # Registered by another process (the CLI): the poll loads it and rewrites the password file.
                added = await asyncio.to_thread(cli, "--db", hub_db, "--park-dir", tmp_path / "park", "terminal",
                                                "add", "--id", 6, "--merchant", MERCHANT_ICE, "--role", "pos",
                                                "--name", "booth 6")
                assert added.exit_code == 0, added.output
                await hub.wait_until(lambda: hub.registry.get(6) is not None, WAIT_S)
                state = hub.registry.get(6)
                password = (await hub.terminal_credentials())[6]
                # Mosquitto re-reads the password file on SIGHUP, a moment after the hub sent it:
                # until then term-6 is refused, so connect again until a deadline.
                deadline = asyncio.get_running_loop().time() + WAIT_S
                while True:
                    term6 = ScriptedTerminal(broker.host, broker.port, 6, state.key, password=password,
                                             tls_ca=park.pki.ca_cert)
                    try:
                        await asyncio.to_thread(term6.connect, 1)
                        break
                    except TimeoutError:
                        term6.close()
                        if asyncio.get_running_loop().time() > deadline:
                            raise
                term6.close()
            finally:
                await hub.stop()
        finally:
            broker.stop()
    run(scenario())


def anonymous_connack(broker, park):
    got = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="anon", protocol=mqtt.MQTTv311)
    client.tls_set_context(secure.terminal_tls_context(park.pki.ca_cert))
    client.on_connect = lambda c, u, f, rc, p: got.put(rc)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        return got.get(timeout=WAIT_S)
    finally:
        client.disconnect()
        client.loop_stop()


# -- admin system cards

@pytest.mark.broker
def test_admin_card_authorises_until_revoked(tmp_path, broker):
    async def scenario():
        hub = await secured_hub(tmp_path, broker)
        term = None
        try:
            issued = await written_admin_card(hub)
            assert issued.card_no == ADMIN_CARD_NO_FIRST
            card_no, keys = admin_card.unseal(hub.transport_key, issued.blocks, ADMIN_UID, desk=True)
            assert card_no == issued.card_no and keys.pack() == hub.park_keys.pack()
            assert set(issued.trailers) == {7, 11, 15, 19, 23, 27}
            assert [b for b, _ in issued.write_order()][-6:] == [7, 11, 15, 19, 23, 27]
            term = await booth(hub, broker, 5)
            tap_admin(term, issued.card_no)
            await wait_command(term, frames.CMD_AUTH_CONFIRM)
            await asyncio.to_thread(term.wait, lambda t: t.downlinks(frames.T_CONFIG) and t.downlinks(frames.T_TIME))
            assert hub.registry.get(5).authorised == 1
            assert await hub.revoke_admin_card(issued.card_no, "lost") is True
            assert await hub.revoke_admin_card(issued.card_no, "lost") is False
            tap_admin(term, issued.card_no)
            await wait_command(term, frames.CMD_AUTH_REJECT)
            assert commands(term).count(frames.CMD_AUTH_CONFIRM) == 1
        finally:
            if term is not None:
                term.close()
            await hub.stop()
    run(scenario())
    log = oplog.log_path_for(tmp_path / "hub.db")
    assert oplog.verify(log).ok
    actions = [(e["actor"], e["action"]) for e in oplog.OpLog(log).entries()]
    assert [a for a in actions if a[1].startswith(("admin_card.", "terminal.auth"))] == [
        ("hub", "admin_card.issue"), ("hub", "terminal.authorise"), ("hub", "admin_card.revoke"),
        ("hub", "terminal.auth_reject")]


@pytest.mark.broker
def test_unknown_admin_card_and_copied_uid_are_rejected(tmp_path, broker):
    async def scenario():
        hub = await secured_hub(tmp_path, broker)
        term = None
        try:
            issued = await hub.issue_admin_card(ADMIN_UID, DESK_ID, desk=False)
            assert set(issued.trailers) == {7, 11, 15}
            term = await booth(hub, broker, 5)
            tap_admin(term, issued.card_no + 1)                 # never issued
            await wait_command(term, frames.CMD_AUTH_REJECT)
            tap_admin(term, issued.card_no, uid=b"\x04\x99\x99\x99")
            await wait_command(term, frames.CMD_AUTH_REJECT, 2)
            assert frames.CMD_AUTH_CONFIRM not in commands(term)
            assert hub.registry.get(5).authorised == 0
            with pytest.raises(ServiceError, match="not a registered desk terminal"):
                await hub.issue_admin_card(ADMIN_UID, 5)
        finally:
            if term is not None:
                term.close()
            await hub.stop()
    run(scenario())


def test_admin_card_cli_lists_and_revokes(tmp_path):
    async def issue():
        from parkcard.app import Hub
        park, _ = secure.init_park(tmp_path)
        kwargs = {k: v for k, v in secure.hub_kwargs(park).items() if k in ("park_keys", "transport_key")}
        hub = await Hub(tmp_path / "hub.db", **kwargs).open()
        await hub.add_merchant(1, "park", 0)
        await hub.register_terminal(DESK_ID, 1, frames.ROLE_DESK, "desk")
        card_no = (await written_admin_card(hub)).card_no
        await hub.stop()
        return card_no
    card_no = run(issue())
    db = tmp_path / "hub.db"
    listed = cli("--db", db, "admin-card", "list")
    assert listed.exit_code == 0 and str(card_no) in listed.output and "valid" in listed.output
    revoked = cli("--db", db, "admin-card", "revoke", card_no, "--reason", "technician left")
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert "already revoked" in cli("--db", db, "admin-card", "revoke", card_no, "--reason", "x").output
    listed = cli("--db", db, "admin-card", "list")
    assert "revoked" in listed.output and "technician left" in listed.output
    unknown = cli("--db", db, "admin-card", "revoke", 42, "--reason", "x")
    assert unknown.exit_code == 2 and "does not exist" in unknown.output
    shown = cli("--db", db, "audit", "show")
    assert shown.exit_code == 0 and "cli:" in shown.output and "admin_card.revoke" in shown.output
    assert shown.output.count("admin_card.revoke") == 1
    assert cli("--db", db, "audit", "verify").exit_code == 0


# -- locking and de-authorising terminals

@pytest.mark.broker
def test_lock_and_deauthorise_send_their_commands_and_a_locked_terminal_is_refused(tmp_path, broker):
    async def scenario():
        hub = await secured_hub(tmp_path, broker)
        term = None
        try:
            issued = await written_admin_card(hub)
            term = await booth(hub, broker, 5)
            tap_admin(term, issued.card_no)
            await wait_command(term, frames.CMD_AUTH_CONFIRM)
            await hub.deauthorise_terminal(5)
            await wait_command(term, frames.CMD_DEAUTHORISE)
            assert hub.registry.get(5).authorised == 0
            await hub.lock_terminal(5)
            await wait_command(term, frames.CMD_LOCK)
            tap_admin(term, issued.card_no)                     # a good card on a locked terminal
            await wait_command(term, frames.CMD_AUTH_REJECT)
            await hub.unlock_terminal(5)
            tap_admin(term, issued.card_no)
            await wait_command(term, frames.CMD_AUTH_CONFIRM, 2)
            with pytest.raises(ServiceError, match="not registered"):
                await hub.lock_terminal(77)
        finally:
            if term is not None:
                term.close()
            await hub.stop()
    run(scenario())


@pytest.mark.broker
def test_cli_lock_reaches_the_running_hub_and_the_terminal(tmp_path, broker):
    async def scenario():
        hub = await secured_hub(tmp_path, broker)
        term = None
        try:
            issued = await written_admin_card(hub)
            term = await booth(hub, broker, 5)
            db = tmp_path / "hub.db"
            result = await asyncio.to_thread(cli, "--db", db, "terminal", "lock", 5)
            assert result.exit_code == 0, result.output
            await wait_command(term, frames.CMD_LOCK)          # sent by the hub's registry poll
            tap_admin(term, issued.card_no)
            await wait_command(term, frames.CMD_AUTH_REJECT)
            result = await asyncio.to_thread(cli, "--db", db, "terminal", "deauthorise", 5)
            assert result.exit_code == 0, result.output
            # the lock de-authorised it already: nothing is queued, nothing is sent, nothing is audited
            assert "terminal 5 was not authorised: nothing changed" in result.output
            # the hub marks a command sent right after publishing it: wait for that, bounded
            for _ in range(100):
                if await hub.storage.pending_commands() == []:
                    break
                await asyncio.sleep(0.05)
            assert await hub.storage.pending_commands() == []
            assert commands(term).count(frames.CMD_LOCK) == 1
            assert frames.CMD_DEAUTHORISE not in commands(term)
        finally:
            if term is not None:
                term.close()
            await hub.stop()
    run(scenario())
    unknown = cli("--db", tmp_path / "hub.db", "terminal", "lock", 99)
    assert unknown.exit_code == 2 and "not registered" in unknown.output


# -- taps of blacklisted cards

@pytest.mark.broker
def test_lock_and_attempt_records_are_listed_and_move_no_money(tmp_path, broker):
    async def scenario():
        hub = await secured_hub(tmp_path, broker)
        term = None
        try:
            issued = await desk_issued(hub, CARD_UID, 10000)
            card_no = issued.card_no
            term = await booth(hub, broker, 5)
            term.record(R.KIND_DEBIT, card_no, 2, 500, 9500)
            await hub.blacklist_add(card_no, "lost")
            term.record(R.KIND_LOCK, card_no, 3, 0, 9500, time_s=1782864000)        # locked on tap: counter + 1
            term.record(R.KIND_ATTEMPT, card_no, 3, 0, 9500, time_s=1782864060)     # tapped again: counter in force
            term.record(R.KIND_ATTEMPT, card_no, 3, 0, 9500, time_s=1782864120)
            term.record(R.KIND_ATTEMPT, card_no, 3, 0, 9500, status=R.STATUS_UNCERTAIN, time_s=1782864180)
            term.upload()
            await asyncio.to_thread(term.wait_acked, 5)
            entries_before = (await hub.storage.counts()).ledger_entries
            assert await hub.storage.alarms() == []           # no clone alarm, no other
            assert await hub.storage.account_balance("card:%d" % card_no) == 9500
            assert (await hub.storage.card(card_no)).last_counter == 3
            assert await hub.storage.uncertain_cards() == []
            assert hub.stats()["attempts"] == 4
            assert (await audit.check(hub.storage)).ok
        finally:
            if term is not None:
                term.close()
            await hub.stop()
        return card_no, entries_before
    card_no, entries = run(scenario())
    db = tmp_path / "hub.db"
    assert counts(db).ledger_entries == entries
    assert [r for r in records(db) if r.kind in (R.KIND_LOCK, R.KIND_ATTEMPT) and r.posted] == []
    listing = cli("--db", db, "blacklist")
    assert listing.exit_code == 0, listing.output
    row = [line for line in listing.output.splitlines() if line.startswith(str(card_no))][0]
    assert row.split()[2] == "4"
    assert "2026-07-01T00:03:00Z t5" in row and "2026-07-01T00:00:00Z" not in row   # the last three
    check = cli("--db", db, "ledger", "check")
    assert check.exit_code == 0 and "RESULT: OK" in check.output


def test_blacklist_cli_add_and_remove(tmp_path):
    db = tmp_path / "hub.db"
    assert cli("--db", db, "merchant", "add", "--id", 1, "--name", "park", "--commission-bps", 0).exit_code == 0
    added = cli("--db", db, "blacklist", "add", 100123, "--reason", "stolen", "--force")   # never issued here
    assert added.exit_code == 0 and "version 1" in added.output
    assert "already blacklisted" in cli("--db", db, "blacklist", "add", 100123, "--reason", "x").output
    listing = cli("--db", db, "blacklist")
    assert "100123" in listing.output and "stolen" in listing.output
    assert "version 2" in cli("--db", db, "blacklist", "remove", 100123).output
    assert "100123" not in cli("--db", db, "blacklist").output
