"""What only the PostgreSQL store has to show: one hub per database by advisory lock, the schema version,
the append-only and overlap triggers, transient errors and reconnecting (a server restart under a running
hub), clear errors, the CLI and the demo on it, and a batch costing O(tables) round trips, not O(records)."""

import asyncio
import os
import re
import subprocess
import sys
import threading
import time

import asyncpg
import pytest
from click.testing import CliRunner

from postgres_server import PostgresServer, bin_dir, with_audit_log

from protocol import record as R

from parkcard import audit
from parkcard.cli import main
from parkcard_devkit.demo import run_demo
from parkcard.hub_lock import HubLockedError
from parkcard.app import Hub
from parkcard.store import DatabaseDamaged, is_transient, open_store
from parkcard.store.postgres import PgHubLock
from parkcard.store.postgres.loop import OwnLoop
from parkcard.store.postgres.migrate import latest_version
from parkcard.store.postgres.url import split
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, desk_issued, start_hub
from test_hub_cli import _populate
from test_hub_ingest import booth, issued_card
from test_hub_records import DAY_S, Booth, park

pytestmark = pytest.mark.postgres

LOCK_FREED_WAIT_S = 30      # bounds the wait for the server to notice a killed holder's closed socket


@pytest.fixture
def pg_url(postgres_server, tmp_path):
    return with_audit_log(postgres_server.create_database(), tmp_path / "hub.audit.log")


def sql(url, *statements):
    """Run statements on the database as its owner; return the last one's rows."""
    async def run():
        conn = await asyncpg.connect(split(url)[0])
        try:
            rows = None
            for statement in statements:
                rows = await conn.fetch(statement)
            return [tuple(r) for r in rows]
        finally:
            await conn.close()
    return asyncio.run(run())


def test_a_second_hub_on_the_same_database_is_refused_until_the_first_stops(pg_url):
    async def scenario():
        first = await Hub(pg_url).open()
        try:
            with pytest.raises(HubLockedError) as refused:
                await Hub(pg_url).open()
        finally:
            await first.stop()
        again = await Hub(pg_url).open()     # the lock went with the first hub's session
        await again.stop()
        return str(refused.value)
    message = asyncio.run(scenario())
    assert message.startswith("another hub is running on postgresql://parkcard@127.0.0.1:")
    assert "stop it first (one hub per database)" in message
    assert re.search(r"\(parkcard-hub pid \d+ on ", message), message
    assert "audit_log" not in message


def test_a_killed_hub_leaves_the_database_to_the_next_one(pg_url):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from parkcard.store.postgres import PgHubLock; "
         "lock = PgHubLock(sys.argv[1]).acquire(); print('locked', flush=True); sys.stdin.read()", pg_url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(HubLockedError):
            PgHubLock(pg_url).acquire()
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + LOCK_FREED_WAIT_S
    while True:     # the server ends the killed session when it reads the closed socket
        try:
            lock = PgHubLock(pg_url).acquire()
            break
        except HubLockedError:
            if time.monotonic() > deadline:
                raise
    assert lock.held
    lock.release()
    assert not lock.held


def test_a_database_of_a_newer_hub_or_of_another_program_is_refused_and_a_cut_short_one_migrated(postgres_server, tmp_path):
    newer = with_audit_log(postgres_server.create_database(), tmp_path / "a.log")
    asyncio.run(_close(open_store(newer)))
    sql(newer, "UPDATE parkcard_schema SET version = 99")
    with pytest.raises(DatabaseDamaged, match="schema version 99 is newer than this hub"):
        asyncio.run(open_store(newer))
    foreign = with_audit_log(postgres_server.create_database(), tmp_path / "b.log")
    sql(foreign, "CREATE TABLE invoices(id BIGINT)")
    result = CliRunner().invoke(main, ["--db", foreign, "merchant", "list"])
    assert result.exit_code == 2, result.output
    assert "holds tables but no ParkCard schema version" in result.output and "Traceback" not in result.output
    cut_short = with_audit_log(postgres_server.create_database(), tmp_path / "c.log")    # stopped before migration 1
    sql(cut_short, "CREATE TABLE parkcard_schema(id BIGINT PRIMARY KEY, version BIGINT NOT NULL)",
        "INSERT INTO parkcard_schema VALUES (1, 0)")
    asyncio.run(_close(open_store(cut_short)))
    assert sql(cut_short, "SELECT version FROM parkcard_schema") == [(latest_version(),)]


async def _close(opening):
    await (await opening).close()


def test_the_ledger_and_settlements_refuse_changes_in_the_database_itself(pg_url):
    asyncio.run(_populate(pg_url))
    assert CliRunner().invoke(main, ["--db", pg_url, "settle", "--merchant", MERCHANT_ICE, "--from", "2026-07-01",
                                     "--to", "2026-07-02"]).exit_code == 0
    [(settled,)] = sql(pg_url, "SELECT record_id FROM settlement_records ORDER BY record_id LIMIT 1")
    for statement, refusal in [
            ("UPDATE ledger_entries SET amount_cents = amount_cents + 1", "ledger entries are append-only"),
            ("DELETE FROM ledger_entries", "ledger entries are append-only"),
            ("TRUNCATE ledger_entries CASCADE", "ledger entries are append-only"),
            ("DELETE FROM settlement_records WHERE record_id = %d" % settled, "stays in its settlement"),
            ("UPDATE settlements SET payout_cents = 0", "a closed settlement is final"),
            ("INSERT INTO settlements(merchant_id, period_start, period_end, sales_cents, refunds_cents, "
             "commission_cents, payout_cents, records, closed_at) VALUES (%d, 1782867600, 1782871200, 0, 0, 0, 0, "
             "0, 0)" % MERCHANT_ICE, "the period overlaps a closed settlement of this merchant")]:
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match=refusal):
            sql(pg_url, statement)


def test_a_server_that_goes_away_is_a_transient_error_and_the_next_write_reconnects(tmp_path):
    if bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl): run ./setup.sh")
    server = PostgresServer().start()     # a cluster of its own: this test stops it
    try:
        url = with_audit_log(server.create_database(), tmp_path / "hub.audit.log")

        async def scenario():
            store = await open_store(url)
            try:
                await store.add_merchant(7, "Kiosk", 500)
                server.halt()
                with pytest.raises(Exception) as failed:
                    await store.add_merchant(8, "Carousel", 500)
                with pytest.raises(Exception) as read_failed:
                    await store.merchants()
                server.resume()
                await store.add_merchant(8, "Carousel", 500)    # a new writer session, nothing lost
                return failed.value, read_failed.value, await _merchants_eventually(store)
            finally:
                await store.close()
        error, read_error, merchants = asyncio.run(scenario())
        assert is_transient(error), repr(error)
        assert is_transient(read_error), repr(read_error)
        assert [m[:3] for m in merchants] == [(7, 1, "Kiosk"), (8, 1, "Carousel")]
    finally:
        server.stop()


async def _merchants_eventually(store, tries=10):
    """The readers' pool replaces its dead sessions one failed acquire at a time: read until it has."""
    for _ in range(tries - 1):
        try:
            return await store.merchants()
        except Exception as exc:      # noqa: BLE001 - only transient ones are retried
            if not is_transient(exc):
                raise
    return await store.merchants()


def test_a_server_that_cannot_be_reached_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(main, ["--db", "postgresql://parkcard@127.0.0.1:1/nothing", "merchant", "list"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: cannot use PostgreSQL at postgresql://parkcard@127.0.0.1:1/nothing")
    assert "check that the server runs" in result.output and "Traceback" not in result.output


def test_errors_in_the_data_are_not_transient(pg_url):
    async def scenario():
        store = await open_store(pg_url)
        try:
            with pytest.raises(ValueError, match="merchant 3 does not exist"):
                await store.add_terminal(9, 3, 1, b"k" * 32, "orphan")
            with pytest.raises(asyncpg.PostgresError) as bad:
                await store.write(lambda tx: tx.conn.execute("INSERT INTO parks(id, name) VALUES (1, NULL)"))
            return bad.value
        finally:
            await store.close()
    assert not is_transient(asyncio.run(scenario()))


@pytest.mark.broker
def test_the_demo_balances_on_postgresql(postgres_server, tmp_path):
    lines = []
    url = postgres_server.create_database()
    code = asyncio.run(run_demo(str(tmp_path / "park"), terminals=3, taps=60, cards=3, offline=True,
                                broker_url=None, seed=2, echo=lines.append, tap_interval_ms=0, db=url))
    out = "\n".join(lines)
    assert code == 0, out
    assert "park running: hub on postgresql://parkcard@127.0.0.1:" in out
    assert "RESULT: OK: the ledger balances" in out
    assert (tmp_path / "park" / "parkcard.audit.log").exists()     # the park's audit log stays in its folder


def test_a_batch_costs_the_same_round_trips_for_4_records_as_for_32_or_80(pg_url, monkeypatch):
    hops = []
    wait = OwnLoop.wait

    def counted(loop, awaitable):
        if threading.current_thread().name.startswith("parkcard-pg-writer"):
            hops.append(awaitable)
        return wait(loop, awaitable)
    monkeypatch.setattr(OwnLoop, "wait", counted)

    async def scenario():
        hub = await park(pg_url)
        try:
            cards = [(await desk_issued(hub, bytes((4, 1, 2, n)), 100000, time_s=DAY_S)).card_no
                     for n in range(32)]
            five = Booth(hub, 5)
            counts = []
            # The first batch prepares the statements; 80 records go in by COPY (write_tx.COPY_ROWS_MIN).
            for size, first in ((2, 0), (4, 2), (32, 6), (80, 38)):
                raws = [five.make(R.KIND_DEBIT, cards[i % 32], 2 + i // 32, 10, 100000 - 10 * (1 + i // 32))
                        for i in range(first, first + size)]
                del hops[:]
                result = await hub.ingest.apply_local(5, [(R.STATUS_COMMITTED, r) for r in raws])
                assert result.counts["applied"] == size
                counts.append(len(hops))
            report = await audit.check(hub.storage)
            return counts, report.ok, report.records, await hub.storage.account_balance("merchant:%d" % MERCHANT_ICE)
        finally:
            await hub.stop()
    (_warm_up, four, thirty_two, eighty), ok, records, merchant_cents = asyncio.run(scenario())
    # BEGIN; what the upload reads (records, cards, counters, the terminal); its writes and COMMIT
    assert (four, thirty_two, eighty) == (3, 3, 3)
    assert ok and records == 32 + 118 and merchant_cents == 118 * 9     # 10 cents a sale, 10 % commission


def test_the_cli_and_the_audit_log_work_on_a_postgresql_url(pg_url, tmp_path):
    def cli(*args):
        return CliRunner().invoke(main, ["--db", pg_url, *[str(a) for a in args]])
    assert cli("merchant", "add", "--id", 3, "--name", "Carousel", "--commission-bps", 800).exit_code == 0
    listed = cli("merchant", "list")
    assert listed.exit_code == 0 and "Carousel" in listed.output
    verified = cli("audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert (tmp_path / "hub.audit.log").exists()
    shown = cli("audit", "show")
    assert "merchant.add" in shown.output, shown.output

    async def hold():
        hub = await Hub(pg_url).open()
        try:
            return cli("up", "--insecure", "--no-broker", "--broker-port", 1)
        finally:
            await hub.stop()
    refused = asyncio.run(hold())
    assert refused.exit_code == 2, refused.output
    assert "another hub is running on postgresql://" in refused.output and "Traceback" not in refused.output


@pytest.mark.broker
def test_a_database_server_restart_stops_acks_quarantines_nothing_and_the_hub_resumes(tmp_path, broker):
    if bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl): run ./setup.sh")
    server = PostgresServer().start()     # a cluster of its own: this test stops it
    url = with_audit_log(server.create_database(), tmp_path / "hub.audit.log")

    async def scenario():
        hub = await start_hub(url, broker.host, broker.port)
        five = None
        try:
            card_no, bal = await issued_card(hub)
            five = await booth(hub, broker, 5)
            five.record(R.KIND_DEBIT, card_no, 2, 10, bal - 10)
            five.upload()
            await asyncio.to_thread(five.wait_acked, 1, 30)
            server.halt()
            for i in range(2, 10):
                five.record(R.KIND_DEBIT, card_no, 1 + i, 10, bal - 10 * i)
            five.upload_all(records_max=4)
            await hub.wait_until(lambda: hub.stats()["storage_errors"] >= 2, 30)   # retried, never given up
            stuck = (hub.registry.get(5).acked_upto, five.acked_upto)
            server.resume()
            await asyncio.to_thread(five.wait_acked, 9, 60)
            stats = hub.stats()
            return (stuck, stats["storage_unavailable"], stats["failed_messages"],
                    await hub.storage.account_balance("card:%d" % card_no) - bal, await hub.storage.quarantined(),
                    [a[1] for a in await hub.storage.alarms()])
        finally:
            if five is not None:
                five.close()
            await hub.stop()
    try:
        stuck, unavailable, failed, moved, quarantined, alarms = asyncio.run(asyncio.wait_for(scenario(), 120))
    finally:
        server.stop()
    assert stuck == (1, 1) and (unavailable, failed) == (0, 0)
    assert moved == -90 and quarantined == [] and alarms == ["storage"]


def test_the_hub_lock_is_taken_again_after_a_server_restart(tmp_path):
    if bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl): run ./setup.sh")
    server = PostgresServer().start()     # a cluster of its own: this test stops it
    try:
        url = server.create_database()
        lock = PgHubLock(url).acquire()
        server.halt()
        server.resume()
        deadline = time.monotonic() + LOCK_FREED_WAIT_S
        while not sql(url, "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")[0][0]:
            assert time.monotonic() < deadline, "the lock was not taken again"
        with pytest.raises(HubLockedError, match=r"\(parkcard-hub pid %d on " % os.getpid()):
            PgHubLock(url).acquire()
        assert lock.held and lock.lost_to is None
        lock.release()
        assert not lock.held
        PgHubLock(url).acquire().release()
    finally:
        server.stop()
