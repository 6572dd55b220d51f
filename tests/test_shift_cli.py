"""`parkcard shift open|show|close|report` and `parkcard report desk|liabilities` on SQLite and PostgreSQL: the
cashier's words, the Z report printed at the close and again, the CSV in cents, and every mistake refused with
a line that says what to do (exit 2, nothing changed)."""

import asyncio
import csv
import datetime
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from protocol import frames

from parkcard.app import Hub
from parkcard.cli import main
from parkcard_devkit.testing import DESK_ID, MERCHANT_PARK, desk_issued

UID = b"\x04\x01\x02\x09"


async def _populate(db):
    """A park with a desk terminal and card 100001 issued there with 100.00 paid in cash (no deposit)."""
    hub = await Hub(db).open()
    await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
    await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "front desk")
    await desk_issued(hub, UID, 10000)
    await hub.stop()


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_shift_from_the_cli_closes_with_its_z_report_printed_and_reprinted(store_url):
    asyncio.run(_populate(store_url))
    db = store_url
    granted = cli("--db", db, "credit", "grant", 100001, "20.00", "--reason", "paid at the desk", "--desk", DESK_ID)
    assert granted.exit_code == 0, granted.output
    for args, says in [(("--desk", 9), "desk 9 has no open shift"), (("--desk", DESK_ID, "--source", "api"),
                                                                       "paid in cash there")]:
        refused = cli("--db", db, "credit", "grant", 100001, "5", "--reason", "r", *args)
        assert refused.exit_code == 2 and says in refused.output, refused.output
    shown = cli("--db", db, "shift", "show")
    assert shown.exit_code == 0, shown.output
    assert "CNY 120.00" in shown.output.splitlines()[1]      # the cash the drawer should hold: the load and the credit
    again = cli("--db", db, "shift", "open", "--desk", DESK_ID, "--float", "500")
    assert again.exit_code == 2 and "already has shift 1 open" in again.output and "close it first" in again.output

    closed = cli("--db", db, "shift", "close", "--desk", DESK_ID, "--counted", "119.50")
    assert closed.exit_code == 0, closed.output
    assert closed.output.startswith("Z report 1: shift 1 at desk %d" % DESK_ID)
    lines = {line.strip().split("  ")[0]: line for line in closed.output.splitlines()}
    assert "CNY 120.00" in lines["cash expected"] and "CNY 119.50" in lines["cash counted"]
    assert "CNY -0.50" in lines["over (+) / short (-)"]
    assert "CNY 20.00" in lines["credits granted"]
    assert "CNY 100.00" in lines["loads paid by cash"]
    reprinted = cli("--db", db, "shift", "report", 1)
    assert reprinted.exit_code == 0 and reprinted.output == closed.output

    for args, says in [
            (("shift", "close", "--desk", DESK_ID, "--counted", "1"), "no open shift to close"),
            (("shift", "report", 2), "there is no Z report 2"),
            (("shift", "open", "--desk", DESK_ID, "--float", "12.345"), "the float"),
            (("shift", "open", "--desk", 9, "--float", "5"), "terminal 9 is not a desk terminal"),
            (("report", "desk", "--day", "2026-13-01"), "--day is a date YYYY-MM-DD")]:
        refused = cli("--db", db, *args)
        assert refused.exit_code == 2 and says in refused.output, (args, refused.output)
        assert "Traceback" not in refused.output
    assert "no shift is open" in cli("--db", db, "shift", "show").output

    opened = cli("--db", db, "shift", "open", "--desk", DESK_ID, "--float", "500")
    assert opened.exit_code == 0 and "shift 2 open at desk %d" % DESK_ID in opened.output
    checked = cli("--db", db, "ledger", "check")
    assert checked.exit_code == 0 and "RESULT: OK" in checked.output, checked.output


def test_the_desk_report_and_the_liabilities(store_url, tmp_path):
    asyncio.run(_populate(store_url))
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    out = tmp_path / "desk.csv"
    report = cli("--db", store_url, "report", "desk", "--day", today, "--by", "desk", "--csv", out)
    assert report.exit_code == 0, report.output
    assert report.output.startswith("park day %s: %s 00:00 UTC to " % (today, today))
    assert "CNY 100.00" in report.output.splitlines()[2] and "issue" in report.output
    assert "written to %s" % out in report.output
    again = cli("--db", store_url, "report", "desk", "--day", today, "--csv", out)
    assert again.exit_code == 2 and "already exists: pass --force" in again.output
    piped = cli("--db", store_url, "report", "desk", "--day", today, "--by", "desk", "--csv", "-")
    assert piped.exit_code == 0 and list(csv.DictReader(piped.output.splitlines())) == [
        {"day": today, "group": str(DESK_ID), "kind": "issue", "count": "1", "amount_cents": "10000",
         "bonus_cents": "0", "deposit_cents": "0"}]
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows == [{"day": today, "group": str(DESK_ID), "kind": "issue", "count": "1", "amount_cents": "10000",
                     "bonus_cents": "0", "deposit_cents": "0"}]
    by_operator = cli("--db", store_url, "report", "desk", "--day", today)
    assert "desk-fixture" in by_operator.output
    assert "no desk operation was posted" in cli("--db", store_url, "report", "desk", "--day", "2001-01-01").output
    owed = cli("--db", store_url, "report", "liabilities", "--csv", tmp_path / "owed.csv")
    assert owed.exit_code == 0, owed.output
    lines = {line.split("  ")[0]: line for line in owed.output.splitlines()}
    assert "CNY 100.00" in lines["customer funds on cards"] and "CNY 0.00" in lines["deposits held"]
    with open(tmp_path / "owed.csv", newline="") as f:
        assert {r["liability"]: r["amount_cents"] for r in csv.DictReader(f)}["customer funds on cards"] == "10000"
    unwritable = cli("--db", store_url, "report", "liabilities", "--csv", tmp_path / "no" / "such" / "x.csv")
    assert unwritable.exit_code == 2 and "cannot write" in unwritable.output


def test_the_park_names_the_payment_methods_its_desks_take_besides_cash(store_url):
    asyncio.run(_populate(store_url))
    assert cli("--db", store_url, "park", "pay-methods").output == "the desks take cash, card, mobile\n"
    changed = cli("--db", store_url, "park", "pay-methods", "wechat", "card", "cash")
    assert changed.exit_code == 0 and changed.output == "the desks take cash, wechat, card\n"
    same = cli("--db", store_url, "park", "pay-methods", "wechat", "card")
    assert same.output == "the desks take cash, wechat, card (nothing changed)\n"
    refused = cli("--db", store_url, "park", "pay-methods", "Bank Card")
    assert refused.exit_code == 2 and "'Bank Card' is no payment method name" in refused.output
    only_cash = cli("--db", store_url, "park", "pay-methods", "cash")
    assert only_cash.output == "the desks take cash\n"


def test_the_desk_report_counts_the_parks_day_on_its_clock_far_from_utc(tmp_path):
    db = str(tmp_path / "hub.db")
    asyncio.run(_populate(db))
    now = datetime.datetime.now(datetime.timezone.utc)
    # A zone whose date now is not the UTC date (UTC+14 from 10:00 UTC, UTC-11 before 11:00 UTC), with 30 minutes
    # to spare either way.
    zone = "Pacific/Kiritimati" if now.hour * 60 + now.minute >= 10 * 60 + 30 else "Pacific/Pago_Pago"
    assert cli("--db", db, "park", "timezone", zone).exit_code == 0
    park_today = now.astimezone(ZoneInfo(zone)).date().isoformat()
    utc_today = now.date().isoformat()
    assert park_today != utc_today
    shown = cli("--db", db, "report", "desk", "--day", park_today)
    assert shown.exit_code == 0 and "CNY 100.00" in shown.output, shown.output
    assert shown.output.startswith("park day %s: %s 00:00 " % (park_today, park_today))
    assert "no desk operation was posted on %s" % utc_today in cli("--db", db, "report", "desk", "--day",
                                                                   utc_today).output
    assert "CNY 100.00" in cli("--db", db, "report", "desk").output        # today is the park's
    closed = cli("--db", db, "shift", "close", "--desk", DESK_ID, "--counted", "100")
    assert closed.exit_code == 0, closed.output
    # The Z report's times are on the park's clock: its date and its zone's name, at the open and at the close.
    first = closed.output.splitlines()[0]
    assert first.startswith("Z report 1: shift 1 at desk %d" % DESK_ID)
    assert first.count(park_today) == 2 and first.count(now.astimezone(ZoneInfo(zone)).strftime(" %Z")) == 2
