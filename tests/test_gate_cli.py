"""`parkcard ticket ...`, `parkcard gate ...` and `parkcard occupancy` on a park with a gate's passages."""

import asyncio
import time

import pytest
from click.testing import CliRunner

from protocol import frames, record as R, ticket as t

from parkcard.app import Hub
from parkcard.cli import main
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, MERCHANT_PARK, desk_issued

GATE = 41


async def _populate(db):
    """A desk, a gate and two cards: both entered through the gate, one left, one was refused once."""
    hub = await Hub(db).open()
    await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
    await hub.add_merchant(MERCHANT_ICE, "Gates", 0)
    await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "front desk")
    key = await hub.register_terminal(GATE, MERCHANT_ICE, frames.ROLE_GATE, "north gate")
    cards = [(await desk_issued(hub, uid, 1000)).card_no for uid in (b"\x04\x01\x02\x03", b"\x04\x01\x02\x04")]
    mac = R.record_mac_for(key)
    now = int(time.time())
    entries = []
    for seq, (kind, card_no, reason) in enumerate([(R.KIND_ENTRY, cards[0], 0), (R.KIND_ENTRY, cards[1], 0),
                                                   (R.KIND_REFUSAL, cards[1], t.REASON_ALREADY_INSIDE),
                                                   (R.KIND_EXIT, cards[0], 0)], start=1):
        rec = R.Record(kind, GATE, seq, now - 600 + seq, card_no, b"\x04\x01\x02\x03", 2, 0, 1000, item=1,
                       discount_cents=R.passage_detail(reason, 2, 0xFFFF))
        entries.append((R.STATUS_COMMITTED, rec.encode(mac)))
    await hub.ingest.apply_local(GATE, entries)
    await hub.stop()


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "hub.db"
    asyncio.run(_populate(path))
    return str(path)


def cli(db, *args):
    return CliRunner().invoke(main, ["--db", db, *[str(a) for a in args]])


def test_products_gates_and_occupancy_from_the_command_line(db):
    added = cli(db, "ticket", "product", "add", "--name", "Day pass", "--type", "day", "--days", "1",
                "--price-cents", "12000")
    assert added.exit_code == 0 and "ticket product 1 Day pass (day)" in added.output
    timed = cli(db, "ticket", "product", "add", "--name", "Car park", "--type", "timed", "--included-min", "60",
                "--interval-min", "30", "--interval-price-cents", "500")
    assert timed.exit_code == 0, timed.output
    listed = cli(db, "ticket", "product", "list")
    assert "Day pass" in listed.output and "60 min free" in listed.output and "120.00" in listed.output
    set_ = cli(db, "gate", "set", "--terminal", GATE, "--direction", "both", "--area", "2", "--reset", "04:30",
               "--product", "1", "--product", "2")
    assert set_.exit_code == 0 and "gate config version 1" in set_.output, set_.output
    gates = cli(db, "gate", "list")
    assert "04:30" in gates.output and "1, 2" in gates.output
    now = cli(db, "occupancy", "--hours", "1")
    assert now.exit_code == 0, now.output
    assert "already_inside" in now.output
    csv_out = cli(db, "occupancy", "--csv").output.splitlines()
    assert csv_out[0] == "area,inside,last reset" and csv_out[1].startswith("2,1,")
    check = cli(db, "gate", "check")
    assert check.exit_code == 0 and "4 passage records, occupancy agrees" in check.output
    reset = cli(db, "gate", "reset", "--area", "2")
    assert reset.exit_code == 0
    assert cli(db, "occupancy", "--csv").output.splitlines() == ["area,inside,last reset"]


@pytest.mark.parametrize("args,message", [
    (("gate", "set", "--terminal", DESK_ID, "--direction", "entry", "--product", "1"), "not a registered gate"),
    (("gate", "set", "--terminal", GATE, "--direction", "entry", "--product", "9"), "no ticket product 9"),
    (("gate", "set", "--terminal", GATE, "--direction", "entry", "--product", "1", "--reset", "25:00"), "HH:MM"),
    (("ticket", "product", "add", "--name", "Ten", "--type", "count"), "count card holds 1"),
])
def test_user_mistakes_are_one_clear_line(db, args, message):
    cli(db, "ticket", "product", "add", "--name", "Day pass", "--type", "day", "--days", "1")
    result = cli(db, *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
