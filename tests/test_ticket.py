"""The ticket codec, the gate config and passage records (SPEC.md §3.8-3.11, §4.9, §5.8): vectors on CPython and
MicroPython, and the bounds the codec refuses."""

import pytest

from conftest import REPO, run_cpython
from protocol import card, ticket as t
from protocol import card_issue
from protocol.config import Config, ROLE_GATE
from protocol.errors import Malformed

VECTORS = REPO / "protocol" / "vectors" / "ticket.json"
CHECK = REPO / "tests" / "mpy" / "ticket_check.py"
KEYS = card.CardKeys(card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32), bytes.fromhex("a1b2c3d4"))


def test_ticket_vectors_on_cpython():
    assert run_cpython(CHECK, VECTORS).stdout.startswith("ticket vectors ok")


@pytest.mark.micropython
def test_ticket_vectors_on_micropython(micropython):
    proc = micropython(CHECK, VECTORS)
    assert proc.stdout.startswith("ticket vectors ok")
    assert proc.stdout == run_cpython(CHECK, VECTORS).stdout


@pytest.mark.parametrize("fields", [dict(ticket_type=9), dict(product=0), dict(from_day=5, to_day=4),
                                    dict(serial=t.SERIAL_MAX + 1), dict(day_limit=256), dict(area=256)])
def test_a_ticket_info_out_of_range_is_refused(fields):
    base = dict(product=1, ticket_type=t.TYPE_DAY, area=0, from_day=1, to_day=2, day_limit=0, serial=1)
    base.update(fields)
    with pytest.raises(Malformed):
        t.TicketInfo(**base).encode(KEYS)


def test_the_gate_config_rides_in_the_t_config_tail():
    gate = t.GateConfig(3, t.DIRECTION_EXIT, 4, products=[t.GateProduct(9, 30, 15, 250)])
    cfg = Config(version=3, role=ROLE_GATE)
    cfg.tail = gate.encode()
    back = Config.decode(cfg.encode())
    got = t.GateConfig.decode(back.tail)
    assert (got.direction, got.area, got.product(9).interval_price_cents) == (t.DIRECTION_EXIT, 4, 250)
    assert Config.decode(Config(version=3).encode()).tail == b""


def test_a_gate_config_with_too_many_products_or_a_price_over_a_balance_is_refused():
    with pytest.raises(Malformed):
        t.GateConfig(products=[t.GateProduct(i + 1) for i in range(t.PRODUCTS_MAX + 1)]).encode()
    with pytest.raises(Malformed):
        t.GateConfig(products=[t.GateProduct(1, 0, 1, card.BALANCE_MAX_CENTS + 1)]).encode()
