"""`parkcard` CLI: ledger check on good and tampered databases, settlement, fleet table, user errors."""

import asyncio
import csv
import sqlite3

import pytest

import postgres_server
from click.testing import CliRunner

from protocol import frames, topics
from protocol import record as R
from protocol.desk import DESK_SOURCE_ID

from parkcard.app import Hub
from parkcard.cli import main
from parkcard.ingest.downlink import Downlink
from parkcard.store import is_postgres
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, MERCHANT_PARK, desk_issued
from store_kit import damage_a_page, read, terminal

UID = b"\x04\x01\x02\x03"
DAY_S = 1782864000          # 2026-07-01T00:00:00Z


async def _populate(db):
    """A park with one issued card and three sales at booth 5 on 2026-07-01 (no broker needed)."""
    hub = await Hub(db).open()
    await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
    await hub.add_merchant(MERCHANT_ICE, "Ice cream", 1000)
    await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "front desk")
    key = await hub.register_terminal(5, MERCHANT_ICE, frames.ROLE_POS, "ice booth")
    issued = await desk_issued(hub, UID, 10000, time_s=DAY_S)
    mac = R.record_mac_for(key)
    entries = []
    for seq, (kind, amount, balance, fields) in enumerate([
            (R.KIND_DEBIT, 1250, 8750, {}), (R.KIND_DEBIT, 999, 7751, {}),
            (R.KIND_REFUND, 999, 8750, {"ref_seq": 2, "version": R.RECORD_V2})], start=1):   # refunds sale seq 2
        rec = R.Record(kind, 5, seq, DAY_S + 3600 * seq, issued.card_no, UID, seq + 1, amount, balance, **fields)
        entries.append((R.STATUS_COMMITTED, rec.encode(mac)))
    await hub.ingest.apply_local(5, entries)
    await hub.stop()


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "hub.db"
    asyncio.run(_populate(path))
    return str(path)


@pytest.fixture
def any_db(store_url):
    """The same park on each store backend (conftest.STORE_BACKENDS)."""
    asyncio.run(_populate(store_url))
    return str(store_url)


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_ledger_check_passes_on_a_good_database(any_db):
    result = cli("--db", any_db, "ledger", "check")
    assert result.exit_code == 0, result.output
    assert "RESULT: OK" in result.output


def test_ledger_check_fails_on_an_altered_entry(db):
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER ledger_entries_append_only_u")   # what a tamperer must do first
        conn.execute("UPDATE ledger_entries SET amount_cents = amount_cents + 100 WHERE account LIKE 'merchant:%'")
    result = cli("--db", db, "ledger", "check")
    assert result.exit_code == 1
    assert "DISCREPANCIES FOUND" in result.output and "sums to +100 cents" in result.output


def test_ledger_check_fails_on_a_changed_shadow_balance(db):
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE cards SET shadow_balance_cents = shadow_balance_cents + 1")
    result = cli("--db", db, "ledger", "check")
    assert result.exit_code == 1
    assert "balance mismatches: 1" in result.output


def _tamper(db, *statements):
    """Change the database behind the hub's back, as an attacker with the file would (triggers dropped first)."""
    if is_postgres(db):
        return postgres_server.tamper(db, *statements)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER ledger_entries_append_only_u")
        conn.execute("DROP TRIGGER ledger_entries_append_only_d")
        for sql in statements:
            conn.execute(sql)


def _ledger_check_fails(db, *expected):
    result = cli("--db", db, "ledger", "check")
    assert result.exit_code == 1, result.output
    assert "DISCREPANCIES FOUND" in result.output
    for text in expected:
        assert text in result.output, result.output
    return result.output


def test_ledger_check_finds_value_moved_to_another_merchant_within_a_sale(any_db):
    # The sale's transaction still sums to zero and the card's account is untouched.
    _tamper(any_db, "UPDATE ledger_entries SET amount_cents = amount_cents - 100 "
            "WHERE tx_id = 2 AND account = 'merchant:%d'" % MERCHANT_ICE,
            "INSERT INTO ledger_entries(tx_id, account, amount_cents) VALUES (2, 'merchant:%d', 100)" % MERCHANT_PARK)
    _ledger_check_fails(any_db, "not what their record posts: 1", "record 2 (term-5 seq 1): posted")


def test_ledger_check_finds_value_moved_between_cash_and_deposits_within_an_issue(any_db):
    _tamper(any_db, "UPDATE ledger_entries SET amount_cents = amount_cents + 500 WHERE tx_id = 1 AND account = 'desk:cash'",
            "INSERT INTO ledger_entries(tx_id, account, amount_cents) VALUES (1, 'park:deposits', -500)")
    _ledger_check_fails(any_db, "not what their record posts: 1", "record 1 (term-%d seq 1)" % DESK_SOURCE_ID)


def test_ledger_check_accepts_sales_booked_before_a_commission_change(any_db):
    assert cli("--db", any_db, "merchant", "set", "--id", MERCHANT_ICE, "--commission-bps", 2000).exit_code == 0
    result = cli("--db", any_db, "ledger", "check")
    assert result.exit_code == 0, result.output
    assert "posted at another commission rate than today's: 3" in result.output


def test_ledger_check_finds_value_moved_from_a_merchant_to_the_commission(any_db):
    # 225 of 1250 cents is a rate of 18 %: the audit log says the merchant only ever had 10 %.
    _tamper(any_db, "UPDATE ledger_entries SET amount_cents = 1125 - 100 WHERE tx_id = 2 AND account = 'merchant:%d'"
            % MERCHANT_ICE,
            "UPDATE ledger_entries SET amount_cents = 125 + 100 WHERE tx_id = 2 AND account = 'park:commission'")
    _ledger_check_fails(any_db, "not what their record posts: 1", "the commission 225 is the amount at none of the "
                        "merchant's rates (1000 bps)")


def test_ledger_check_finds_a_changed_record_amount(any_db):
    # settlement sums records.amount_cents: the column must say what the record's bytes say.
    _tamper(any_db, "UPDATE records SET amount_cents = amount_cents + 100 WHERE terminal_id = 5 AND seq = 1")
    _ledger_check_fails(any_db, "bad: 1", "stored amount_cents=1350, its bytes say amount_cents=1250")


def test_ledger_check_finds_a_record_whose_mac_is_broken(db):
    with sqlite3.connect(db) as conn:
        raw = bytearray(conn.execute("SELECT raw FROM records WHERE terminal_id = 5 AND seq = 2").fetchone()[0])
        raw[33] ^= 0x01         # the low byte of amount (SPEC.md §4.1 offset 30..33)
        conn.execute("UPDATE records SET raw = ? WHERE terminal_id = 5 AND seq = 2", (bytes(raw),))
    _ledger_check_fails(db, "record 3 (term-5 seq 2): its MAC does not verify under term-5's key")


def test_ledger_check_finds_a_deleted_applied_record(any_db):
    # Everything derived from the sale goes with it: the card's chain then only looks incomplete.
    _tamper(any_db, "DELETE FROM ledger_entries WHERE tx_id = 2", "DELETE FROM ledger_tx WHERE record_id = 2",
            "DELETE FROM card_counters WHERE card_no = 100001 AND counter = 2",
            "DELETE FROM records WHERE id = 2")
    _ledger_check_fails(any_db, "term-5 acknowledged seqs 1..3; no record holds seq 1")


def test_ledger_check_finds_a_deleted_record_whose_booking_stays(any_db):
    _tamper(any_db, "DELETE FROM records WHERE id = 3")
    _ledger_check_fails(any_db, "transaction 3 belongs to record 3, which does not exist")


@pytest.mark.parametrize("ledger_too", [False, True])
def test_ledger_check_finds_a_card_whose_whole_history_is_deleted(any_db, ledger_too):
    statements = ["DELETE FROM records WHERE card_no = 100001", "DELETE FROM card_counters WHERE card_no = 100001"]
    if ledger_too:
        statements = ["DELETE FROM ledger_entries", "DELETE FROM ledger_tx"] + statements
    _tamper(any_db, *statements)
    _ledger_check_fails(any_db, "history missing: 1", "card 100001: ")


def _hub_refuses(db, *expected):
    result = cli("--db", db, "up", "--insecure", "--no-broker", "--broker-port", "1")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, sqlite3.Error)
    for text in expected:
        assert text in result.output, result.output


def test_a_damaged_file_fails_ledger_check_and_the_hub_refuses_it(db):
    damage_a_page(db)
    _ledger_check_fails(db, "database file: DAMAGED", "integrity_check: ")
    _hub_refuses(db, "%s is damaged" % db, "restore the last backup", "nothing they hold is lost")


def test_a_negative_schema_version_fails_ledger_check_and_the_hub_refuses_it(db):
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = -3")
    message = "database schema version -3 is not one this hub knows: restore a backup"
    _ledger_check_fails(db, message)
    _hub_refuses(db, message)
    with pytest.raises(sqlite3.DatabaseError, match="version -3"):
        asyncio.run(Hub(db).open())


def test_ledger_entries_are_append_only(db):
    with sqlite3.connect(db) as conn, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM ledger_entries")


def test_settle_is_final_idempotent_and_exports_csv(db, tmp_path):
    first = cli("--db", db, "settle", "--merchant", MERCHANT_ICE, "--from", "2026-07-01", "--to", "2026-07-02",
                "--csv", tmp_path / "a.csv")
    assert first.exit_code == 0, first.output
    assert "closed now" in first.output
    second = cli("--db", db, "settle", "--merchant", MERCHANT_ICE, "--from", "2026-07-01", "--to", "2026-07-02",
                 "--csv", tmp_path / "b.csv")
    assert "already closed" in second.output
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    with open(tmp_path / "a.csv") as fh:
        row = next(csv.DictReader(fh))
    # sales 1250 + 999, refund 999; commission 125 + 99 - 99; payout = sales - refunds - commission
    assert {k: int(row[k]) for k in ("sales_cents", "refunds_cents", "commission_cents", "payout_cents",
                                     "records")} == {"sales_cents": 2249, "refunds_cents": 999,
                                                     "commission_cents": 125, "payout_cents": 1125, "records": 3}
    assert len(read(db, lambda s: s.settlements())) == 1


def test_settle_all_covers_every_merchant(any_db, tmp_path):
    result = cli("--db", any_db, "settle", "--all", "--from", DAY_S, "--to", DAY_S + 86400, "--csv", tmp_path / "c.csv")
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "c.csv").read_text().splitlines()) == 3


def test_terminals_table(any_db):
    result = cli("--db", any_db, "terminals")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["id", "name", "role", "merchant"]
    assert any("ice booth" in line and "pos" in line for line in lines)


def test_terminal_add_exports_a_bundle(db, tmp_path):
    import json

    assert cli("--db", db, "init").exit_code == 0
    result = cli("--db", db, "terminal", "add", "--id", 9, "--merchant", MERCHANT_ICE, "--role", "ride", "--name",
                 "wheel", "--export", tmp_path / "t9.json", "--broker-port", 8883)
    assert result.exit_code == 0, result.output
    bundle = json.loads((tmp_path / "t9.json").read_text())
    assert bundle["terminal_id"] == 9 and len(bytes.fromhex(bundle["terminal_key"])) == 32
    assert bundle["username"] == "term-9" and bundle["broker_port"] == 8883
    assert bundle["ca_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert set(bundle) == {"terminal_id", "terminal_key", "transport_key", "username", "password", "broker_host",
                           "broker_port", "ca_pem", "wifi_ssid", "wifi_password"}


def test_a_rides_fixed_price_is_typed_in_the_parks_currency(any_db):
    result = cli("--db", any_db, "terminal", "add", "--id", 9, "--merchant", MERCHANT_ICE, "--role", "ride",
                 "--name", "wheel", "--fixed-price", "4.50")
    assert result.exit_code == 0, result.output
    assert terminal(any_db, 9).fixed_price_cents == 450


def test_the_old_fixed_price_in_cents_is_refused_naming_the_new_option(db):
    result = cli("--db", db, "terminal", "add", "--id", 9, "--merchant", MERCHANT_ICE, "--role", "ride",
                 "--name", "wheel", "--fixed-price-cents", 450)
    assert result.exit_code == 2 and "--fixed-price 4.50" in result.output and "Traceback" not in result.output
    with pytest.raises(IndexError):
        terminal(db, 9)


def test_terminal_bundle_export_needs_init(db, tmp_path):
    result = cli("--db", db, "terminal", "add", "--id", 9, "--merchant", MERCHANT_ICE, "--role", "ride", "--name",
                 "wheel", "--export", tmp_path / "t9.json")
    assert result.exit_code == 2 and "run `parkcard init` first" in result.output
    assert not (tmp_path / "t9.json").exists()


@pytest.mark.parametrize("args, message", [
    (("terminal", "add", "--id", 5, "--merchant", 2, "--role", "pos", "--name", "x"), "already registered"),
    (("terminal", "add", "--id", 8, "--merchant", 77, "--role", "pos", "--name", "x"), "merchant 77 does not exist"),
    (("terminal", "lock", 99), "terminal 99 is not registered"),
    (("terminal", "unlock", 99), "terminal 99 is not registered"),
    (("terminal", "deauthorise", 99), "terminal 99 is not registered"),
    (("settle", "--from", "2026-07-01", "--to", "2026-07-02"), "--merchant ID or --all"),
    (("settle", "--all", "--from", "yesterday", "--to", "2026-07-02"), "neither epoch seconds nor an ISO date"),
    (("settle", "--all", "--from", "2026-07-02", "--to", "2026-07-01"), "--to must be after --from"),
])
def test_user_mistakes_get_a_clear_message_and_exit_2(db, args, message):
    result = cli("--db", db, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_unlock_clears_the_lock_and_queues_no_command(db):
    assert cli("--db", db, "terminal", "lock", 5).exit_code == 0
    result = cli("--db", db, "terminal", "unlock", 5)
    assert result.exit_code == 0, result.output
    assert (terminal(db, 5).locked, terminal(db, 5).authorised) == (0, 0)
    assert [c.command for c in read(db, lambda s: s.terminal_commands())] == [frames.CMD_LOCK]


def test_registry_reload_reads_one_terminal_with_its_merchant_rate(any_db):
    async def check():
        hub = await Hub(any_db).open()
        assert await hub.registry.reload_terminal(99) is None and hub.registry.get(99) is None
        state = await hub.registry.reload_terminal(5)
        assert state is hub.registry.get(5)
        assert (state.rate_bps, state.park_id, state.name) == (1000, 1, "ice booth")
        assert hub.registry.get(DESK_ID).rate_bps == 0
        await hub.stop()
    asyncio.run(check())


def test_missing_database_is_a_user_error(tmp_path):
    result = cli("--db", tmp_path / "nothing.db", "ledger", "check")
    assert result.exit_code == 2 and "no database at" in result.output


def _rows(output):
    """The rows of a CLI table, its header line left off."""
    return output.splitlines()[1:]


def test_alarms_and_quarantine_listings(db):
    for command, header in (("alarms", ["id", "kind", "card", "terminal", "seq", "when", "detail"]),
                            ("quarantine", ["id", "topic", "terminal", "reason", "bytes", "when", "detail"])):
        empty = cli("--db", db, command)
        assert empty.exit_code == 0, empty.output
        assert empty.output.splitlines()[0].split() == header and _rows(empty.output) == []

    async def seed():
        """Booth 5 uploads a debit that breaks the card's chain and a top-up only a desk may make."""
        hub = await Hub(db).open()
        try:
            [card_no] = await hub.storage.card_numbers()
            card = await hub.storage.card(card_no)
            assert (card.shadow_balance_cents, card.last_counter) == (8750, 4)
            mac = hub.registry.get(5).record_mac
            broken = R.Record(R.KIND_DEBIT, 5, 4, DAY_S + 4 * 3600, card_no, UID, 5, 100, 1)   # 8750 - 100 != 1
            topup = R.Record(R.KIND_TOPUP, 5, 5, DAY_S + 5 * 3600, card_no, UID, 6, 500, 501)
            result = await hub.ingest.apply_local(5, [(R.STATUS_COMMITTED, broken.encode(mac)),
                                                      (R.STATUS_COMMITTED, topup.encode(mac))])
            assert [q[0] for q in result.quarantined] == ["credit_from_booth"]
            return card_no
        finally:
            await hub.stop()
    card_no = asyncio.run(seed())

    alarms = cli("--db", db, "alarms")
    assert alarms.exit_code == 0, alarms.output
    rows = _rows(alarms.output)
    assert len(rows) == 1
    assert rows[0].split()[1:5] == ["chain", str(card_no), "5", "4"]
    assert rows[0].endswith("counter 5: 8750 -100 != 1")

    quarantined = cli("--db", db, "quarantine")
    assert quarantined.exit_code == 0, quarantined.output
    rows = _rows(quarantined.output)
    assert len(rows) == 1
    assert rows[0].split()[1:4] == ["local/desk", "5", "credit_from_booth"]
    assert rows[0].endswith("kind %d from a pos terminal" % R.KIND_TOPUP)


def test_blacklist_push_builds_the_delta_once_for_every_terminal(any_db):
    async def check():
        hub = await Hub(any_db).open()
        await hub.storage.blacklist_change(4242, "lost", add=True)
        sent = []
        downlink = Downlink(hub.storage, hub.registry, lambda topic, payload: sent.append(topic))
        reads = []
        changes = hub.storage.blacklist_changes

        async def counted(from_version):
            reads.append(from_version)
            return await changes(from_version)
        hub.storage.blacklist_changes = counted
        await downlink.push_blacklist(0)
        assert reads == [0]
        assert sorted(topics.terminal_of(t) for t in sent) == sorted([5, DESK_ID])
        assert await downlink.blacklist(5, 1) == 1          # current: an empty delta
        await hub.stop()
    asyncio.run(check())


def test_a_file_that_is_no_database_is_an_error_and_the_command_exits(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    bad = tmp_path / "bad.db"
    bad.write_text("garbage")
    # A subprocess: an aiosqlite thread left open by a failed open kept the process alive for ever.
    parkcard = Path(sys.executable).parent / "parkcard"
    proc = subprocess.run([str(parkcard), "--db", str(bad), "terminals"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "is --db a ParkCard database?" in proc.stderr and "Traceback" not in proc.stderr


def test_a_bundle_that_cannot_be_written_registers_nothing(db, tmp_path):
    assert cli("--db", db, "init").exit_code == 0
    add = ("--db", db, "terminal", "add", "--id", 9, "--merchant", MERCHANT_ICE, "--role", "ride", "--name", "wheel")
    result = cli(*add, "--export", tmp_path / "missing" / "t9.json")
    assert result.exit_code == 2 and "nothing was registered" in result.output
    assert "wheel" not in cli("--db", db, "terminals").output
    existing = tmp_path / "t5.json"
    existing.write_text("the bundle of terminal 5")
    result = cli(*add, "--export", existing)
    assert result.exit_code == 2 and "File exists" in result.output
    assert existing.read_text() == "the bundle of terminal 5"   # never overwritten by another terminal's key
    result = cli(*add[:4], "--id", 5, *add[6:], "--export", tmp_path / "t5-again.json")
    assert result.exit_code == 2 and "already registered" in result.output
    assert not (tmp_path / "t5-again.json").exists()            # a key that belongs to no terminal is not left


def test_settle_to_an_unwritable_csv_says_how_to_export_again(db, tmp_path):
    result = cli("--db", db, "settle", "--all", "--from", DAY_S, "--to", DAY_S + 86400,
                 "--csv", tmp_path / "missing" / "c.csv")
    assert result.exit_code == 2 and "run `settle` again with another --csv" in result.output
    again = cli("--db", db, "settle", "--all", "--from", DAY_S, "--to", DAY_S + 86400, "--csv", tmp_path / "c.csv")
    assert again.exit_code == 0 and "already closed" in again.output
    assert len((tmp_path / "c.csv").read_text().splitlines()) == 3


def test_one_command_checks_the_audit_chain_once_however_many_entries_it_writes(any_db, tmp_path, monkeypatch):
    from parkcard import oplog

    walks = []
    walk = oplog._walk
    monkeypatch.setattr(oplog, "_walk", lambda f, *a: (walks.append(a), walk(f, *a))[1])
    result = cli("--db", any_db, "settle", "--all", "--from", DAY_S, "--to", DAY_S + 86400)
    assert result.exit_code == 0, result.output
    assert result.output.count("closed now") == 2            # two entries appended
    assert len(walks) <= 1                                     # the chain read at most once, not once per entry
