"""A 2,000-item price list on littlefs over the simulated flash, within the ESP32 heap.

usage: prices_check.py [ITEMS]
Run by tests/test_prices.py and bench/bench_prices.py; each check prints one "name value" line.
"""

import gc
import sys
import time

from sim.flash import FileBlockDevice, mount_littlefs

import protocol.card  # noqa: E402,F401 - a serving terminal holds the card codec already

gc.collect()
heap_before_import = gc.mem_alloc()
from protocol.price_list import Item, parse_price_list  # noqa: E402
from terminal.prices import PriceList, PricesError  # noqa: E402

gc.collect()
print("heap_import", gc.mem_alloc() - heap_before_import)  # price_list, pricing and prices, compiled
from protocol.hub_price_list import chunk_body  # noqa: E402 - the hub's half, here to make the chunks
from vector_checks import Lazy  # noqa: E402

MNT = "/flash"
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000


def item(i):
    """Item i of version 1: codes 3, 6, 9, ...; every 7th member-only, every 13th inactive."""
    return Item(3 * (i + 1), "商品 %d" % i, 100 + i, i % 8, i % 13 != 0, i % 7 == 0)


def item_v2(i):
    """Item i of version 2: codes 2, 4, 6, ..., prices changed."""
    return Item(2 * (i + 1), "v2 %d" % i, 5000 + i)


def send(prices, version, make, count, stop=None):
    """Give the list its chunks one body at a time, as the sync loop would; stop after `stop` chunks."""
    chunks = (count + 255) // 256
    items = Lazy(count, make)
    installed = False
    for chunk in range(chunks if stop is None else stop):
        body = chunk_body(7, version, chunk, chunks, items, 256 * chunk, min(count, 256 * (chunk + 1)))
        installed = prices.take(parse_price_list(body))
        body = None
        gc.collect()
    return installed


dev = FileBlockDevice("prices.img", 4096, 128)  # 512 KB: room for two lists of ITEMS_MAX while one replaces the other
mount_littlefs(dev, MNT, format=True)
prices = PriceList(MNT + "/p")
gc.collect()
idle = gc.mem_alloc()

t = time.ticks_ms()
installed = send(prices, 1, item, N)
print("install_ms", time.ticks_diff(time.ticks_ms(), t))
gc.collect()
print("heap_after_install", gc.mem_alloc() - idle)
print("installed", installed and prices.version == 1 and prices.count == N and prices.merchant_id == 7)

probes = (3, 6, 3 * N, 3 * (N - 1), 3 * 777, 3 * (N // 2))
absent = (0, 1, 4, 3 * N + 1, 3 * N + 3, 0xFFFF)
t = time.ticks_us()
for code in range(3, 3 * N + 1, 3):
    prices.lookup(code)
print("lookup_us", time.ticks_diff(time.ticks_us(), t) // N)           # every listed code once
t = time.ticks_us()
for code in range(1, 3 * N + 1, 3):
    prices.lookup(code)
print("miss_us", time.ticks_diff(time.ticks_us(), t) // N)             # as many codes not listed
gc.collect()
before = gc.mem_alloc()
found = [prices.lookup(code) for code in probes]
print("heap_lookup", (gc.mem_alloc() - before) // len(probes))  # garbage included: the Item and its name
missing = [prices.lookup(code) for code in absent]
ok = missing == [None] * len(absent)
for code, got in zip(probes, found):
    i = code // 3 - 1
    want = item(i)
    ok = ok and got is not None and (got.code, got.name, got.price_cents, got.category, got.active,
                                     got.member_only) == (want.code, want.name, want.price_cents,
                                                          want.category, want.active, want.member_only)
print("lookups", ok)

# Version 2 arrives: until its last chunk every lookup still answers from version 1.
half = send(prices, 2, item_v2, N, stop=(N + 255) // 256 - 1)
got = prices.lookup(3)
print("old_serves", not half and prices.version == 1 and got is not None and got.price_cents == 100)
# A chunk out of order drops the half-received version; the list in force is untouched.
try:
    prices.take(parse_price_list(chunk_body(7, 2, 5, 8, Lazy(1, item_v2), 0, 1)))  # chunk 5, none before
    print("out_of_order", False)
except PricesError as e:
    print("out_of_order", e.reason == "snapshot_order" and prices.version == 1)
installed = send(prices, 2, item_v2, N)
got = prices.lookup(4)
print("replaced", installed and prices.version == 2 and got is not None and got.price_cents == 5001
      and prices.lookup(3) is None)
prices.close()
prices = PriceList(MNT + "/p")
got = prices.lookup(2 * N)
print("reopen", prices.version == 2 and prices.count == N and got is not None and got.name == "v2 %d" % (N - 1))
prices.close()
gc.collect()
print("heap_growth", gc.mem_alloc() - idle)

# The discount rules beside the list: kept as their T_DISCOUNTS body, every line's rate as pricing's.
from protocol import pricing  # noqa: E402
from protocol.hub_price_list import discounts_body  # noqa: E402
from terminal.prices import Rules  # noqa: E402

reference = pricing.Discounts(3, [0, 500, 1000], [0, 0, 500])
for i in range(250):
    reference.set_override(2, pricing.OVERRIDE_ITEM, 10 + 7 * i, 100 + i)
reference.set_override(2, pricing.OVERRIDE_CATEGORY, 2, 2000)
reference.set_override(1, pricing.OVERRIDE_CATEGORY, 0, 0)
body = discounts_body(7, reference)
rules = Rules(MNT + "/p")
gc.collect()
before = gc.mem_alloc()
taken = rules.take(body)
gc.collect()
print("rules_heap", gc.mem_alloc() - before)        # the body kept, and two lists of 16 rates
ok = taken and rules.version == 3 and not rules.take(body)
for tier in (0, 1, 2, 3):
    for code in range(0, 1800, 3):
        for category in (0, 2):
            ok = ok and rules.line_rate(tier, code, category) == reference.line_rate(tier, code, category)
again = Rules(MNT + "/p")
print("rules", ok and again.version == 3 and again.line_rate(2, 10 + 7 * 249, 0) == 349)
