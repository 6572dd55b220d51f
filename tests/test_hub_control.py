"""Operator control: input limits shared with the codecs, downlinks that cannot be encoded, blacklisting
unissued cards, merchant changes, admin card states, truthful terminal commands, broker certificate names."""

import asyncio

import pytest
from click.testing import CliRunner

from protocol import card, card_write, config, frames, hub_frames, topics
from protocol.desk import DESK_SOURCE_ID
from protocol.errors import Malformed

from parkcard import bounds, oplog
from parkcard.app import Hub
from parkcard.cli import main
from parkcard.ingest.pipeline import BatchResult
from parkcard.security import pki, secure
from parkcard.services import terminals
from parkcard.services.privileges import ServiceError
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, MERCHANT_PARK, desk_issued
from store_kit import counts, read

UID = b"\x04\x01\x02\x03"
ADMIN_UID = bytes.fromhex("04adadadadad01")
TOO_BIG = 999999999999


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def run(coro, timeout_s=60):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


def stored(db):
    """What an operator's change could touch: blacklist history, terminals, merchants."""
    return read(db, lambda s: asyncio.gather(s.blacklist_changes(0), s.terminals(), s.merchants()))


def audited(db):
    return [e["action"] for e in oplog.OpLog(oplog.log_path_for(db)).entries()]


async def _populate(db, park=None):
    """Merchants 1 and 2, the desk and booth 5 of merchant 2, one issued card; park keys if given."""
    keys = {k: v for k, v in secure.hub_kwargs(park).items() if k in ("park_keys", "transport_key")} if park else {}
    hub = await Hub(db, **keys).open()
    await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
    await hub.add_merchant(MERCHANT_ICE, "Ice cream", 1000)
    await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "front desk")
    await hub.register_terminal(5, MERCHANT_ICE, frames.ROLE_POS, "ice booth")
    issued = await desk_issued(hub, UID, 10000)
    await hub.stop()
    return issued.card_no


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "hub.db"
    run(_populate(path))
    return str(path)


# -- 1. every operator input is range-checked where it enters, with the protocol's limits

def test_limits_are_the_codecs_own():
    assert (bounds.CARD_NO.low, bounds.CARD_NO.high) == (card.CARD_NO_MIN, card.CARD_NO_MAX) == (1, 2 ** 32 - 1)
    assert (bounds.TERMINAL_ID.low, bounds.TERMINAL_ID.high) == (hub_frames.TERMINAL_ID_MIN, hub_frames.TERMINAL_ID_MAX)
    assert bounds.MERCHANT_ID.high == hub_frames.MERCHANT_ID_MAX == 0xFFFF
    assert bounds.FIXED_PRICE_CENTS.high == card.BALANCE_MAX_CENTS == 2 ** 23 - 1
    for cfg in (config.Config(merchant_id=hub_frames.MERCHANT_ID_MAX + 1),
                config.Config(fixed_price_cents=card.BALANCE_MAX_CENTS + 1),   # fits the I, not a card
                config.Config(fixed_price_cents=-1)):
        with pytest.raises(Malformed):
            cfg.encode()
    top = config.Config(merchant_id=hub_frames.MERCHANT_ID_MAX, fixed_price_cents=card.BALANCE_MAX_CENTS)
    assert config.Config.decode(top.encode()).fixed_price_cents == card.BALANCE_MAX_CENTS
    with pytest.raises(Malformed, match="outside"):
        hub_frames.blacklist_body(0, 1, frames.BL_DELTA, 0, 1, [card.CARD_NO_MAX + 1], [])
    assert frames.parse_blacklist(hub_frames.blacklist_body(0, 1, frames.BL_DELTA, 0, 1, [card.CARD_NO_MAX], []))[5] \
        == (card.CARD_NO_MAX,)


TERMINAL = ("terminal", "add", "--id", 9, "--merchant", MERCHANT_ICE, "--role", "ride", "--name", "wheel")


@pytest.mark.parametrize("args, allowed", [
    (("blacklist", "add", TOO_BIG, "--reason", "x"), "from 1 to 4294967295"),
    (("blacklist", "add", 0, "--reason", "x"), "from 1 to 4294967295"),
    (("blacklist", "add", "12ab", "--reason", "x"), "not a whole number"),
    ((*TERMINAL, "--fixed-price", "-5"), "--fixed-price: '-5' is not an amount in CNY"),
    ((*TERMINAL, "--fixed-price", "4.505"), "at most 2 decimals"),
    ((*TERMINAL, "--fixed-price", 999999999), "at most CNY 83,886.07, what a card can hold"),
    ((*TERMINAL, "--fixed-price", "83886.08"), "at most CNY 83,886.07, what a card can hold"),
    ((*TERMINAL, "--fixed-price-cents", 450), "give --fixed-price, e.g. --fixed-price 4.50"),
    ((*TERMINAL, "--broker-port", 99999), "from 1 to 65535"),
    ((*TERMINAL[:-1], ""), "1 to 64 printable characters"),
    ((*TERMINAL[:-1], "   "), "1 to 64 printable characters"),
    ((*TERMINAL, "--broker-host", "bad host!"), "neither a DNS name"),
    (("terminal", "add", "--id", 70000, *TERMINAL[4:]), "from 1 to 65535"),
    (("terminal", "add", "--id", 9, "--merchant", 70000, *TERMINAL[6:]), "from 1 to 65535"),
    (("merchant", "add", "--id", -4, "--name", "m", "--commission-bps", 0), "from 1 to 65535"),
    (("merchant", "add", "--id", 99999999999, "--name", "m", "--commission-bps", 0), "16 bits"),
    (("merchant", "add", "--id", 7, "--name", "", "--commission-bps", 0), "1 to 64 printable characters"),
    (("merchant", "add", "--id", 7, "--name", "m", "--commission-bps", 10001), "from 0 to 10000"),
    (("admin-card", "issue", "--desk", 70000, "--uid", "04010203"), "from 1 to 65535"),
    (("terminal", "lock", 0), "from 1 to 65535"),
])
def test_out_of_range_input_is_refused_saying_what_is_allowed_and_nothing_is_stored(db, args, allowed):
    before = stored(db)
    result = cli("--db", db, *args)
    assert result.exit_code == 2, result.output
    assert allowed in result.output and "Traceback" not in result.output
    assert stored(db) == before


def test_the_service_checks_the_same_limits(db):
    async def check():
        hub = await Hub(db).open()
        try:
            with pytest.raises(ServiceError, match="from 1 to 4294967295"):
                await hub.blacklist_add(TOO_BIG, "lost", force=True)
            with pytest.raises(ServiceError, match="from 0 to 8388607"):
                await hub.register_terminal(9, MERCHANT_ICE, frames.ROLE_RIDE, "wheel", fixed_price_cents=2 ** 24)
            with pytest.raises(ServiceError, match="from 1 to 65535"):
                await hub.add_merchant(70000, "m", 0)
            with pytest.raises(ServiceError, match="printable"):
                await hub.register_terminal(9, MERCHANT_ICE, frames.ROLE_RIDE, "")
        finally:
            await hub.stop()
    run(check())
    assert counts(db).blacklist == 0
    assert read(db, lambda s: s.terminal_ids()) == [5, DESK_ID, DESK_SOURCE_ID]    # the source of the desk's records


# -- 2. a downlink that cannot be encoded for one terminal stops no other

def test_a_value_stored_out_of_range_costs_its_frame_only_and_raises_an_alarm(db):
    async def scenario():
        hub = await Hub(db).open()
        sent = []
        hub.downlink.publish = lambda topic, payload: sent.append((topics.terminal_of(topic), payload))
        try:
            # What an older hub could store: a card number and a ride price no frame can carry.
            await hub.storage.write(lambda tx: tx.blacklist_add(TOO_BIG, "typo"))
            await hub.storage.blacklist_change(4242, "lost")
            await hub.storage.set_terminal(5, fixed_price_cents=2 ** 24)
            await hub.registry.reload_terminal(5)

            def received(terminal_id, ftype):
                mac = hub.registry.get(terminal_id).frame_mac
                return [f for f in (frames.decode(mac, p) for t, p in sent if t == terminal_id) if f.type == ftype]

            await hub.downlink.push_blacklist(0)
            for terminal_id in (5, DESK_ID):
                [delta] = received(terminal_id, frames.T_BLACKLIST)
                assert frames.parse_blacklist(delta.body) == (0, 2, frames.BL_DELTA, 0, 1, (4242,), ())
            result = BatchResult()
            result.syncs = [(5, 0, 0), (DESK_ID, 0, 0)]       # both ask for everything, booth 5 first
            await hub._after_commit(result)
            assert received(5, frames.T_CONFIG) == [] and len(received(5, frames.T_TIME)) == 1
            assert len(received(DESK_ID, frames.T_CONFIG)) == 1 and len(received(DESK_ID, frames.T_TIME)) == 1
            assert frames.parse_blacklist(received(5, frames.T_BLACKLIST)[-1].body)[5] == (4242,)
            await hub._after_commit(result)                            # again: counted again, but one alarm per cause
            return hub.stats(), await hub.storage.alarms()
        finally:
            await hub.stop()
    stats, alarms = run(scenario())
    assert stats["downlinks_unencodable"] == 1 + 2 * 2 + 2     # push; two syncs x (blacklist, config of 5)
    assert {(a[1], a[2], a[3]) for a in alarms} == {("downlink", None, 5), ("downlink", TOO_BIG, None)}
    assert any(a[3] == 5 and a[5].startswith("T_CONFIG not sent: config") for a in alarms)
    assert any("remove it with `parkcard blacklist remove %d`" % TOO_BIG in a[5] for a in alarms)
    listed = cli("--db", db, "alarms")
    assert listed.exit_code == 0 and listed.output.count("downlink") == 2
    removed = cli("--db", db, "blacklist", "remove", TOO_BIG)
    assert removed.exit_code == 0 and "taken off the blacklist" in removed.output


# -- 3. blacklisting a card never issued needs --force

def test_blacklist_add_of_a_card_never_issued_needs_force(db):
    [issued] = read(db, lambda s: s.card_numbers())
    refused = cli("--db", db, "blacklist", "add", issued + 1, "--reason", "lost")
    assert refused.exit_code == 2 and "was never issued here" in refused.output and "--force" in refused.output
    assert counts(db).blacklist_versions == 0
    assert cli("--db", db, "blacklist", "add", issued, "--reason", "lost").exit_code == 0
    forced = cli("--db", db, "blacklist", "add", issued + 1, "--reason", "found, other park", "--force")
    assert forced.exit_code == 0 and "version 2" in forced.output

    async def service():
        hub = await Hub(db).open()
        try:
            with pytest.raises(ServiceError, match="never issued"):
                await hub.blacklist_add(issued + 2, "lost")
        finally:
            await hub.stop()
    run(service())


# -- 4. merchants: add refuses an existing id, set changes one explicitly, list shows them

def test_merchant_add_refuses_an_existing_id_and_set_changes_it_for_the_running_hub(db):
    refused = cli("--db", db, "merchant", "add", "--id", MERCHANT_ICE, "--name", "Hot dogs", "--commission-bps", 0)
    assert refused.exit_code == 2 and "already exists (Ice cream, 1000 bps" in refused.output
    assert "merchant set --id 2" in refused.output
    same = cli("--db", db, "merchant", "add", "--id", MERCHANT_ICE, "--name", "Ice cream", "--commission-bps", 1000)
    assert same.exit_code == 0 and "nothing changed" in same.output
    assert [(m.name, m.commission_bps) for m in read(db, lambda s: s.merchants()) if m.id == 2] == [("Ice cream", 1000)]

    async def running_hub():
        hub = await Hub(db).open()
        try:
            assert hub.registry.get(5).rate_bps == 1000
            changed = await asyncio.to_thread(cli, "--db", db, "merchant", "set", "--id", MERCHANT_ICE,
                                              "--commission-bps", 750)
            assert changed.exit_code == 0 and "was Ice cream, 1000 bps" in changed.output, changed.output
            await hub.poll_registry()                       # what the running hub does every REGISTRY_POLL_S
            return hub.registry.get(5).rate_bps
        finally:
            await hub.stop()
    assert run(running_hub()) == 750

    assert "nothing changed" in cli("--db", db, "merchant", "set", "--id", 2, "--commission-bps", 750).output
    assert cli("--db", db, "merchant", "set", "--id", 2).exit_code == 2
    unknown = cli("--db", db, "merchant", "set", "--id", 77, "--name", "x")
    assert unknown.exit_code == 2 and "merchant 77 does not exist" in unknown.output
    assert audited(db).count("merchant.set") == 1 and audited(db).count("merchant.add") == 2

    async def service():
        hub = await Hub(db).open()
        try:
            with pytest.raises(ServiceError, match="already exists"):
                await hub.add_merchant(MERCHANT_ICE, "Hot dogs", 0)
            assert await hub.add_merchant(MERCHANT_ICE, "Ice cream", 750) is False
            assert await hub.set_merchant(MERCHANT_ICE, commission_bps=800) == (("Ice cream", 750), ("Ice cream", 800))
            return hub.registry.get(5).rate_bps
        finally:
            await hub.stop()
    assert run(service()) == 800
    assert audited(db).count("merchant.set") == 2
    assert cli("--db", db, "merchant", "set", "--id", 2, "--commission-bps", 750).exit_code == 0

    listed = cli("--db", db, "merchant", "list")
    assert listed.exit_code == 0
    assert listed.output.splitlines()[0].split() == ["id", "name", "commission", "bps", "park", "terminals"]
    assert [line.split() for line in listed.output.splitlines()[1:]] == [
        ["1", "Park", "desk", "0", "1", "%d," % DESK_ID, str(DESK_SOURCE_ID)], ["2", "Ice", "cream", "750", "1", "5"]]


# -- 5. an admin card is valid only once the desk reported it written

def test_admin_card_is_pending_until_written_and_a_cancelled_issue_is_abandoned(tmp_path):
    park, _ = secure.init_park(tmp_path)
    db = tmp_path / "hub.db"
    run(_populate(db, park))
    keys = {k: v for k, v in secure.hub_kwargs(park).items() if k in ("park_keys", "transport_key")}

    async def scenario():
        hub = await Hub(db, **keys).open()
        sent = []
        hub.downlink.publish = lambda topic, payload: sent.append(payload)
        try:
            # The CLI's request, started by the hub: the desk answers CARD_OK.
            first = await hub.storage.request_admin_card(DESK_ID, ADMIN_UID, True, "cli:test")
            assert await hub.run_card_requests() == 1
            await hub.wait_until(lambda: hub._card_writes)
            [card_no] = [c.card_no for c in await hub.storage.admin_cards()]
            assert await terminals.auth_refusal(hub.storage, 5, card_no, ADMIN_UID) == "admin_card_not_written"
            [write_id] = hub._card_writes
            result = BatchResult()
            result.card_results = [(DESK_ID, write_id, ADMIN_UID, card_write.CARD_OK, 0)]
            await hub._after_commit(result)
            await asyncio.gather(*hub._card_tasks.values())
            assert (await hub.storage.card_request(first))[1:] == (card_no, None)
            assert await terminals.auth_refusal(hub.storage, 5, card_no, ADMIN_UID) is None

            # A second one nobody answers; the CLI gives up and cancels it.
            second = await hub.storage.request_admin_card(DESK_ID, ADMIN_UID, True, "cli:test")
            assert await hub.run_card_requests() == 1
            await hub.wait_until(lambda: hub._card_writes)
            assert await hub.storage.cancel_card_request(second) is True
            tasks = list(hub._card_tasks.values())
            await hub.run_card_requests()                   # the next poll stops waiting for the desk
            await asyncio.gather(*tasks, return_exceptions=True)
            assert hub._card_writes == {}
            abandoned = (await hub.storage.admin_cards())[-1].card_no
            assert await terminals.auth_refusal(hub.storage, 5, abandoned, ADMIN_UID) == "admin_card_not_written"
            assert "abandoned" in (await hub.storage.card_request(second))[2]

            # The desk reports a failure: failed, never valid.
            await hub.storage.request_admin_card(DESK_ID, ADMIN_UID, True, "cli:test")
            assert await hub.run_card_requests() == 1
            await hub.wait_until(lambda: hub._card_writes)
            [write_id] = hub._card_writes
            result = BatchResult()
            result.card_results = [(DESK_ID, write_id, ADMIN_UID, card_write.CARD_NOT_BLANK, 7)]
            await hub._after_commit(result)
            await asyncio.gather(*hub._card_tasks.values())
            failed = (await hub.storage.admin_cards())[-1]
            assert failed.state == "failed"
            refusal = await terminals.auth_refusal(hub.storage, 5, failed.card_no, ADMIN_UID)
            assert refusal == "admin_card_not_written"

            # Cancelled before the hub saw it: never started.
            third = await hub.storage.request_admin_card(DESK_ID, ADMIN_UID, True, "cli:test")
            assert await hub.storage.cancel_card_request(third) is True
            assert await hub.run_card_requests() == 0
            return card_no, abandoned
        finally:
            await hub.stop()
    written, abandoned = run(scenario())
    listed = cli("--db", db, "admin-card", "list")
    states = {int(line.split()[0]): line for line in listed.output.splitlines()[1:]}
    assert "valid" in states[written] and "abandoned (cancelled)" in states[abandoned]
    assert "failed (not written)" in states[abandoned + 1] and len(states) == 3
    assert [a for a in audited(db) if a.startswith("admin_card.")] == [
        "admin_card.issue", "admin_card.written", "admin_card.issue", "admin_card.abandoned", "admin_card.issue",
        "admin_card.failed"]


def test_admin_card_issue_that_times_out_cancels_its_request(tmp_path, monkeypatch):
    from parkcard.cli import admin_card as cli_module
    monkeypatch.setattr(cli_module, "CARD_REQUEST_POLL_S", 0.05)
    park, _ = secure.init_park(tmp_path)
    db = tmp_path / "hub.db"
    run(_populate(db, park))
    result = cli("--db", db, "admin-card", "issue", "--desk", DESK_ID, "--uid", ADMIN_UID.hex(), "--wait", 1)
    assert result.exit_code == 2 and "the request is cancelled" in result.output
    [(started, cancelled)] = [(r.started_at, r.cancelled_at) for r in read(db, lambda s: s.card_write_requests())]
    assert started is None and cancelled is not None

    async def later_hub():
        hub = await Hub(db, **{k: v for k, v in secure.hub_kwargs(park).items()
                               if k in ("park_keys", "transport_key")}).open()
        try:
            return await hub.run_card_requests()
        finally:
            await hub.stop()
    assert run(later_hub()) == 0                # the hub never writes it behind the operator's back
    assert counts(db).admin_cards == 0


# -- 6. terminal commands say what was true

def test_terminal_commands_that_change_nothing_say_so_and_are_not_audited(db):
    for args, message in ((("unlock", 5), "terminal 5 was not locked: nothing changed"),
                          (("deauthorise", 5), "terminal 5 was not authorised: nothing changed")):
        result = cli("--db", db, "terminal", *args)
        assert result.exit_code == 0 and message in result.output, result.output
    assert cli("--db", db, "terminal", "lock", 5).output.startswith("terminal 5 locked")
    again = cli("--db", db, "terminal", "lock", 5)
    assert again.exit_code == 0 and "terminal 5 was already locked: nothing changed" in again.output
    assert cli("--db", db, "terminal", "unlock", 5).output.startswith("terminal 5 unlocked")
    assert [c.command for c in read(db, lambda s: s.terminal_commands())] == [frames.CMD_LOCK]
    assert [a for a in audited(db) if a.startswith("terminal.") and a != "terminal.add"] == [
        "terminal.lock", "terminal.unlock"]

    async def service():
        hub = await Hub(db).open()
        try:
            return [await hub.unlock_terminal(5), await hub.lock_terminal(5), await hub.lock_terminal(5)]
        finally:
            await hub.stop()
    assert run(service()) == [False, True, False]


# -- 7. broker certificate names accumulate and are checked

def init(park, *hostnames):
    return cli("--db", park.parent / "hub.db", "--park-dir", park, "init",
               *[arg for name in hostnames for arg in ("--hostname", name)])


def test_init_hostnames_accumulate(tmp_path):
    park = tmp_path / "park"
    assert init(park, "a.park.lan").exit_code == 0
    server = park / secure.PKI_DIR / pki.SERVER_CERT
    result = init(park, "b.park.lan", "10.0.0.7")
    assert result.exit_code == 0, result.output
    assert pki.san_names(pki.load_cert(server)) == {"localhost", "127.0.0.1", "a.park.lan", "b.park.lan",
                                                    "10.0.0.7"}
    kept = server.read_bytes()
    again = init(park, "A.Park.LAN.")
    assert "nothing changed" in again.output and server.read_bytes() == kept     # DNS names are case-blind


def test_invalid_hostnames_are_refused_and_write_nothing(tmp_path):
    park = tmp_path / "park"
    assert init(park, "a.park.lan").exit_code == 0
    server = park / secure.PKI_DIR / pki.SERVER_CERT
    second = server.read_bytes()
    for bad in ("bad host!", "-x.lan", "a..lan", "x" * 64 + ".lan", "under_score.lan", ""):
        refused = init(park, bad)
        assert refused.exit_code == 2 and "neither a DNS name" in refused.output and "nothing was written" \
            in refused.output, (bad, refused.output)
    assert server.read_bytes() == second
    fresh = tmp_path / "fresh"
    refused = init(fresh, "bad host!")
    assert refused.exit_code == 2 and not fresh.exists()
