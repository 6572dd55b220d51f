"""Settlement: each record paid once (overlaps refused, late records paid by the next close), periods
that are over, the CSV export, the park's currency, and the migration of settlements closed before."""

import asyncio
import csv
import re
import shutil
import sqlite3
import time

import pytest

from protocol import record as R

from parkcard import oplog
from parkcard.app import Hub
from parkcard.store.sqlite import migrate
from parkcard_devkit.testing import MERCHANT_ICE
from store_kit import counts, read, records
from test_hub_cli import DAY_S, UID, _populate, cli

DAY1 = ("--from", "2026-07-01", "--to", "2026-07-02")
DAY2 = ("--from", "2026-07-02", "--to", "2026-07-03")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")


@pytest.fixture
def db(store_url):
    asyncio.run(_populate(store_url))
    return str(store_url)


@pytest.fixture
def sqlite_db(tmp_path):
    """The populated park on SQLite only, for the tests that write to the file behind the store's back."""
    path = tmp_path / "hub.db"
    asyncio.run(_populate(path))
    return str(path)


def settle(db, *args):
    """Run `parkcard settle` on db with args."""
    return cli("--db", db, "settle", *args)


def exported(path):
    """The rows of a settlement CSV as dicts."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def settlements(db):
    """Every closed settlement of the database, by id."""
    return read(db, lambda s: s.settlements())


def paid(db):
    """{settlement id: [ids of the records it paid]} of every closed settlement."""
    async def each(store):
        return {s.id: await store.settlement_records(s.id) for s in await store.settlements()}
    return read(db, each)


def late_sale(db, amount=500):
    """Booth 5 uploads a sale of 2026-07-01 05:00 (after that day may have been closed)."""
    async def upload():
        hub = await Hub(db).open()
        try:
            [card_no] = await hub.storage.card_numbers()
            card = await hub.storage.card(card_no)
            balance, counter = card.shadow_balance_cents, card.last_counter
            rec = R.Record(R.KIND_DEBIT, 5, 4, DAY_S + 5 * 3600, card_no, UID, counter + 1, amount, balance - amount)
            await hub.ingest.apply_local(5, [(R.STATUS_COMMITTED, rec.encode(hub.registry.get(5).record_mac))])
        finally:
            await hub.stop()
    asyncio.run(upload())


def test_a_period_overlapping_a_closed_one_is_refused_and_the_closed_one_named(db):
    assert settle(db, "--merchant", MERCHANT_ICE, *DAY1).exit_code == 0
    result = settle(db, "--all", "--from", "2026-06-30T12:00", "--to", "2026-07-01T12:00")
    assert result.exit_code == 2, result.output
    assert "overlaps its closed period 2026-07-01T00:00:00Z to 2026-07-02T00:00:00Z" in result.output
    assert "--to 2026-07-01T00:00:00Z" in result.output and "nothing was closed" in result.output
    assert "Traceback" not in result.output
    # all or none: the desk merchant, which had nothing closed, was not closed either
    assert [(s.merchant_id, s.records) for s in settlements(db)] == [(MERCHANT_ICE, 3)]
    later = settle(db, "--merchant", MERCHANT_ICE, "--from", "2026-07-01T06:00", "--to", "2026-07-03")
    assert later.exit_code == 2 and "--from 2026-07-02T00:00:00Z" in later.output


def test_the_schema_keeps_a_record_in_one_settlement_for_good(sqlite_db):
    db = sqlite_db
    assert settle(db, "--merchant", MERCHANT_ICE, *DAY1).exit_code == 0
    [taken] = paid(db).values()
    assert len(taken) == 3
    first = taken[0]
    with sqlite3.connect(db) as conn:
        other = conn.execute("INSERT INTO settlements(merchant_id, period_start, period_end, sales_cents, "
                             "refunds_cents, commission_cents, payout_cents, records, closed_at) "
                             "VALUES (?,?,?,0,0,0,0,0,0)", (MERCHANT_ICE, DAY_S + 86400, DAY_S + 2 * 86400)).lastrowid
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO settlement_records VALUES (?,?)", (first, other))
        with pytest.raises(sqlite3.IntegrityError, match="stays in its settlement"):
            conn.execute("UPDATE settlement_records SET settlement_id=?", (other,))
        with pytest.raises(sqlite3.IntegrityError, match="stays in its settlement"):
            conn.execute("DELETE FROM settlement_records")
        with pytest.raises(sqlite3.IntegrityError, match="final"):
            conn.execute("UPDATE settlements SET payout_cents=0")
        with pytest.raises(sqlite3.IntegrityError, match="overlaps"):
            conn.execute("INSERT INTO settlements(merchant_id, period_start, period_end, sales_cents, refunds_cents, "
                         "commission_cents, payout_cents, records, closed_at) VALUES (?,?,?,0,0,0,0,0,0)",
                         (MERCHANT_ICE, DAY_S + 3600, DAY_S + 7200))


def test_a_record_arriving_after_its_period_closed_is_paid_once_by_the_next_close(db, tmp_path):
    assert settle(db, "--merchant", MERCHANT_ICE, *DAY1, "--csv", tmp_path / "day1.csv").exit_code == 0
    late_sale(db)
    again = settle(db, "--merchant", MERCHANT_ICE, *DAY1, "--csv", tmp_path / "day1-again.csv")
    assert again.exit_code == 0 and "already closed" in again.output
    assert (tmp_path / "day1.csv").read_text() == (tmp_path / "day1-again.csv").read_text()  # the closed row as it was
    assert counts(db).settlement_records == 3                          # and nothing written
    day2 = settle(db, "--merchant", MERCHANT_ICE, *DAY2, "--csv", tmp_path / "day2.csv")
    assert day2.exit_code == 0, day2.output
    assert "late" in day2.output
    [row] = exported(tmp_path / "day2.csv")
    assert (row["records"], row["late_records"], row["sales_cents"], row["payout_cents"]) == ("1", "1", "500", "450")
    day3 = settle(db, "--merchant", MERCHANT_ICE, "--from", "2026-07-03", "--to", "2026-07-04",
                  "--csv", tmp_path / "day3.csv")
    assert exported(tmp_path / "day3.csv")[0]["records"] == "0"                              # not paid twice
    assert sorted(sum(paid(db).values(), [])) == sorted(
        r.id for r in records(db, 5) if r.kind in (R.KIND_DEBIT, R.KIND_REFUND))


def test_a_period_ending_in_the_future_is_refused(db):
    result = settle(db, "--all", "--from", "2026-07-01", "--to", "2999-01-01")
    assert result.exit_code == 2, result.output
    assert "ends 2999-01-01T00:00:00Z, in the future" in result.output
    assert counts(db).settlements == 0


def test_the_csv_names_merchants_with_iso_times_and_amounts_in_their_currency(db, tmp_path):
    result = settle(db, "--all", *DAY1, "--csv", tmp_path / "s.csv")
    assert result.exit_code == 0, result.output
    rows = {r["merchant"]: r for r in exported(tmp_path / "s.csv")}
    ice = rows["Ice cream"]
    assert (ice["merchant_id"], ice["period_start"], ice["period_end"], ice["currency"]) == (
        str(MERCHANT_ICE), "2026-07-01T00:00:00Z", "2026-07-02T00:00:00Z", "CNY")
    assert ISO.match(ice["closed_at"])
    assert [ice[k] for k in ("sales", "refunds", "commission", "payout")] == ["22.49", "9.99", "1.25", "11.25"]
    assert [ice[k] for k in ("sales_cents", "refunds_cents", "commission_cents", "payout_cents")] == [
        "2249", "999", "125", "1125"]
    assert rows["Park desk"]["payout"] == "0.00"
    line = next(li for li in result.output.splitlines() if "Ice cream" in li)
    assert "CNY 22.49" in line and "CNY 11.25" in line


def test_an_existing_csv_is_kept_unless_forced(db, tmp_path):
    path = tmp_path / "june.csv"
    path.write_text("last month's export")
    result = settle(db, "--all", *DAY1, "--csv", path)
    assert result.exit_code == 2
    assert "already exists: pass --force" in result.output and "nothing was closed" in result.output
    assert path.read_text() == "last month's export"
    assert counts(db).settlements == 0
    forced = settle(db, "--all", *DAY1, "--csv", path, "--force")
    assert forced.exit_code == 0, forced.output
    assert [r["merchant"] for r in exported(path)] == ["Park desk", "Ice cream"]


def test_the_park_currency_is_set_once_and_shown_with_every_amount(tmp_path, store_url):
    db = str(store_url)
    assert cli("--db", db, "merchant", "add", "--id", 2, "--name", "Crêpes", "--commission-bps", 500).exit_code == 0
    for code in ("EUX", "EURO", "€"):
        bad = cli("--db", db, "park", "set", "--currency", code)
        assert bad.exit_code == 2 and "not an ISO 4217 currency code" in bad.output
    result = cli("--db", db, "park", "set", "--currency", "eur")
    assert result.exit_code == 0 and "EUR" in result.output, result.output
    closed = settle(db, "--all", *DAY1, "--csv", tmp_path / "eur.csv")
    assert "EUR 0.00" in closed.output
    assert exported(tmp_path / "eur.csv")[0]["currency"] == "EUR"


def test_the_currency_does_not_change_under_money_already_taken(db):
    result = cli("--db", db, "park", "set", "--currency", "USD")
    assert result.exit_code == 2 and "currency cannot change" in result.output
    assert "CNY 22.49" in settle(db, "--merchant", MERCHANT_ICE, *DAY1).output


def _old_database_like(db, today, version):
    """A database at schema `version` holding what _populate stores today (the hub's desk needs today's
    schema to issue a card): every row of the tables the old schema has, in the columns it has."""
    asyncio.run(_populate(str(today)))
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        migrate.migrate(conn, upto=version)
        conn.execute("ATTACH DATABASE ? AS today", (str(today),))
        conn.execute("BEGIN")
        tables = [r[0] for r in conn.execute("SELECT name FROM main.sqlite_master WHERE type='table' "
                                             "AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            old = [r[1] for r in conn.execute("PRAGMA main.table_info(%s)" % table)]
            new = {r[1] for r in conn.execute("PRAGMA today.table_info(%s)" % table)}
            columns = ", ".join(c for c in old if c in new)
            if columns:
                conn.execute("INSERT OR REPLACE INTO main.%s (%s) SELECT %s FROM today.%s"
                             % (table, columns, columns, table))
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE today")
    finally:
        conn.close()
    shutil.copyfile(oplog.log_path_for(str(today)), oplog.log_path_for(db))     # the audit log the anchor names


def test_settlements_closed_before_the_migration_keep_their_records_oldest_first(tmp_path):
    db = str(tmp_path / "old.db")
    # The database of a hub from before settlement_records.
    before = next(i for i, sql in enumerate(migrate.MIGRATIONS) if "CREATE TABLE settlement_records" in sql)
    _old_database_like(db, tmp_path / "today.db", before)
    with sqlite3.connect(db) as conn:
        # what the old hub did: day 1 closed, then two days over it: the same 3 records paid twice
        for start, end in ((DAY_S, DAY_S + 86400), (DAY_S - 86400, DAY_S + 86400)):
            conn.execute("INSERT INTO settlements(merchant_id, period_start, period_end, sales_cents, refunds_cents, "
                         "commission_cents, payout_cents, records, closed_at) VALUES (?,?,?,2249,999,125,1125,3,?)",
                         (MERCHANT_ICE, start, end, time.time()))
    assert settle(db, "--merchant", MERCHANT_ICE, "--from", "2026-07-01T12:00", "--to", "2026-07-03").exit_code == 2
    assert settle(db, "--merchant", MERCHANT_ICE, *DAY2, "--csv", tmp_path / "d2.csv").exit_code == 0
    assert exported(tmp_path / "d2.csv")[0]["records"] == "0"
    assert [(sid, len(ids)) for sid, ids in paid(db).items() if ids] == [(1, 3)]
