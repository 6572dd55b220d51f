"""The terminal's price list in flash: lookups by code without loading it, a new version in chunks that
replaces the old one only when whole, power cuts, and the 2,000-item list under the ESP32 heap."""

import os
from pathlib import Path

import pytest

from conftest import mpy_lines
from protocol.hub_price_list import chunk_body, price_list_bodies
from protocol.price_list import Item, parse_price_list
from terminal.prices import PriceList, PricesCorrupt, PricesError

MPY = Path(__file__).parent / "mpy"


def items(n, step=3, base=100):
    return [Item(step * (i + 1), "item %d" % i, base + i, i % 4, i % 5 != 0, i % 6 == 0) for i in range(n)]


def chunks(version, listed, merchant=7):
    return [parse_price_list(b) for b in price_list_bodies(merchant, version, listed)]


def install(prices, version, listed, merchant=7):
    results = [prices.take(c) for c in chunks(version, listed, merchant)]
    assert results == [False] * (len(results) - 1) + [True]


def fields(item):
    return (item.code, item.name, item.price_cents, item.category, item.active, item.member_only)


def test_no_list_is_version_zero_and_finds_nothing(tmp_path):
    prices = PriceList(str(tmp_path))
    assert (prices.version, prices.count, prices.lookup(3)) == (0, 0, None)


def test_every_item_is_found_by_code_and_others_are_not(tmp_path):
    prices = PriceList(str(tmp_path))
    listed = items(700)   # three chunks: 256, 256, 188
    install(prices, 1, listed)
    assert (prices.version, prices.count, prices.merchant_id) == (1, 700, 7)
    assert all(fields(prices.lookup(i.code)) == fields(i) for i in listed)
    assert [c for c in range(0, 2200) if c % 3 and prices.lookup(c)] == []
    assert prices.lookup(2103) is None and prices.lookup(0xFFFF) is None
    assert os.path.getsize(tmp_path / "prices") == 32 * 700 + 20
    prices.close()
    again = PriceList(str(tmp_path))
    assert (again.version, fields(again.lookup(2100))) == (1, fields(listed[-1]))


def test_the_old_version_serves_until_the_new_one_is_whole(tmp_path):
    prices = PriceList(str(tmp_path))
    install(prices, 1, items(300))
    new = chunks(2, items(300, step=2, base=900))
    assert prices.take(new[0]) is False
    assert prices.version == 1 and prices.lookup(3).price_cents == 100 and prices.lookup(2) is None
    prices.close()      # the power goes before the last chunk: the half-received list is dropped
    prices = PriceList(str(tmp_path))
    assert prices.version == 1 and sorted(os.listdir(tmp_path)) == ["prices"]
    assert [prices.take(c) for c in new] == [False, True]
    assert prices.version == 2 and prices.lookup(2).price_cents == 900 and prices.lookup(3) is None


def test_a_chunk_out_of_order_drops_the_new_version_and_keeps_the_old(tmp_path):
    prices = PriceList(str(tmp_path))
    install(prices, 1, items(10))
    new = chunks(2, items(600))
    prices.take(new[0])
    for wrong in (new[2], chunks(3, items(600))[1], chunks(2, items(600), merchant=8)[1]):
        with pytest.raises(PricesError) as e:
            prices.take(wrong)
        assert e.value.reason == "snapshot_order"
        assert prices.version == 1 and prices.count == 10 and sorted(os.listdir(tmp_path)) == ["prices"]
        prices.take(new[0])
    # codes that do not ascend across chunks (each chunk fine on its own)
    listed = items(600)
    late = parse_price_list(chunk_body(7, 4, 1, 2, listed, 0, 1))
    prices.take(parse_price_list(chunk_body(7, 4, 0, 2, listed, 1, 2)))
    with pytest.raises(PricesError):
        prices.take(late)
    assert prices.version == 1


def test_the_list_in_force_sent_again_changes_nothing(tmp_path):
    prices = PriceList(str(tmp_path))
    install(prices, 1, items(5))
    before = (tmp_path / "prices").read_bytes()
    assert prices.take(chunks(1, items(5))[0]) is False
    assert (tmp_path / "prices").read_bytes() == before and not (tmp_path / "prices.tmp").exists()
    # the same version of another merchant's list replaces it
    install(prices, 1, items(4), merchant=9)
    assert (prices.merchant_id, prices.count) == (9, 4)


def test_an_empty_list_is_installed_from_its_one_chunk(tmp_path):
    prices = PriceList(str(tmp_path))
    install(prices, 1, items(5))
    install(prices, 2, [])
    assert (prices.version, prices.count, prices.lookup(3)) == (2, 0, None)


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic"])
def test_a_damaged_file_is_refused_at_open(tmp_path, damage):
    prices = PriceList(str(tmp_path))
    install(prices, 1, items(50))
    prices.close()
    path = tmp_path / "prices"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[40] ^= 1       # inside an entry: only the checksum tells
    elif damage == "truncate":
        del data[-21]
    else:
        data[-20] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(PricesCorrupt):
        PriceList(str(tmp_path))


@pytest.mark.micropython
def test_a_2000_item_list_on_littlefs_within_the_esp32_heap(micropython, tmp_path):
    out = mpy_lines(micropython(MPY / "prices_check.py", 2000, cwd=tmp_path))
    for check in ("installed", "lookups", "old_serves", "out_of_order", "replaced", "reopen"):
        assert out.get(check) == "True", check
    # RAM does not grow with the list: a loose bound, far below its 64 KB of entries.
    assert int(out["heap_after_install"]) < 4096
    assert int(out["heap_growth"]) < 8192
    assert out["rules"] == "True" and int(out["rules_heap"]) < 4096


@pytest.mark.micropython
def test_a_new_price_list_survives_power_cuts_on_littlefs(micropython, tmp_path):
    proc = micropython(MPY / "powerloss_check.py", "prices", 199, 1500, cwd=tmp_path, timeout=300)
    out = mpy_lines(proc)
    assert out.get("prices_powerloss") == "ok", proc.stdout[-3000:]
