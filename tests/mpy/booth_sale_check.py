"""Sales by item on real MicroPython: a 2,000-item price list and discount rules in littlefs, the card's
tier priced through the wallet's price hook (what roles/pos.py does), the real driver on the virtual RC522.

usage: micropython -X heapsize=100k booth_sale_check.py WORKDIR CHIP_PORT ITEMS SALES
The chip server holds card 0, a gold (tier 2) wallet. Prints key=value lines.
"""

import gc
import sys
import time

gc.collect()
gc.threshold(16384)  # as firmware/boot.py sets it on the ESP32

from sim.flash import FileBlockDevice, mount_littlefs

workdir = sys.argv[1]
port, items_n, sales = [int(a) for a in sys.argv[2:5]]
NOW = 1795600000
device = FileBlockDevice(workdir + "/flash.bin", 4096, 512)
mount_littlefs(device, "/flash", format=True)

from protocol import card_issue, pricing
from protocol.config import Config
from protocol.price_list import Item, parse_price_list
from protocol.sale_line import sale_line
from protocol.record import RECORD_SIZE, record_mac_for
from sim.spi_link import ChipLink, LinkedPin, LinkedSpi
from terminal.blacklist import Blacklist
from terminal.journal import Journal
from terminal.prices import PriceList, Rules
from terminal.rc522 import RC522
from terminal.wallet import Wallet
from vector_checks import Lazy

PARK = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32)
journal = Journal("/flash/journal", RECORD_SIZE, 32768, 48)
blacklist = Blacklist("/flash/blacklist")


def item(i):
    """Item i: codes 5, 10, 15, ...; every 4th in category 2."""
    return Item(5 * (i + 1), "item %d" % i, 100 + i, 2 if i % 4 == 0 else 0)


# The hub's half makes the chunks and the rules: imported, used and dropped before the heap is measured.
from protocol import hub_price_list  # noqa: E402

prices = PriceList("/flash/prices")
chunks = (items_n + 255) // 256
for chunk in range(chunks):
    prices.take(parse_price_list(hub_price_list.chunk_body(7, 1, chunk, chunks, Lazy(items_n, item), 256 * chunk,
                                                           min(items_n, 256 * (chunk + 1)))))
made = pricing.Discounts(3, [0, 0, 1000], [0, 0, 500])
made.set_override(2, pricing.OVERRIDE_CATEGORY, 2, 2000)
rules = Rules("/flash/prices")
rules.take(hub_price_list.discounts_body(7, made))
made = hub_price_list = None
del sys.modules["protocol.hub_price_list"]

link = ChipLink("127.0.0.1", port)
reader = RC522(LinkedSpi(link), LinkedPin(link))
reader.init()
wallet = Wallet(reader, journal, blacklist, 7, record_mac_for(b"K" * 32), lambda: NOW)
wallet.park_keys = PARK
wallet.config = Config(version=1, category=0, tx_cap_cents=0, daily_cap_cents=0)
wallet.last_hub_contact_s = NOW
wallet.blacklist_updated_s = NOW


def stats():
    return dict(kv.split("=") for kv in link.control("stats").split())


gc.collect()
heap_idle = gc.mem_alloc()
peak = 0
before = stats()
ok = paid = discounted = 0
sale_us = lookup_us = 0
for i in range(sales):
    link.control("add 0")
    code = 5 * (1 + (i * 397) % items_n)     # spread over the list
    gc.collect()
    gc.threshold(-1)
    t0 = time.ticks_us()
    found = prices.lookup(code)
    lookup_us += time.ticks_diff(time.ticks_us(), t0)
    lines = [(found.code, found.category, 2, found.price_cents)]

    def price(info):
        priced = pricing.price_basket(rules, info.tier, lines)
        return priced.pay_cents, priced.discount_cents

    def journal_lines(sale, journal, record_mac):
        sale.seq += 1
        line = sale_line(sale, found.code, 2, 2 * found.price_cents, pricing.price_basket(rules, 2, lines).line_discounts[0],
                         2, 0, 1, prices.version, rules.version)
        journal.append(line.seq, line.time_s, line.encode(record_mac))
        journal.mark(line.seq, 1)
    wallet.sale_lines = journal_lines
    result = wallet.debit(2 * found.price_cents, found.code, price=price)
    sale_us += time.ticks_diff(time.ticks_us(), t0)
    used = gc.mem_alloc() - heap_idle
    gc.threshold(16384)
    link.control("remove 0")
    want = pricing.price_basket(rules, 2, lines)
    if result.ok and result.amount_cents == want.pay_cents and journal.status(result.seq - 1) == 1:
        ok += 1
        paid += want.pay_cents
        discounted += want.discount_cents
    peak = max(peak, used)
    found = lines = price = result = None
after = stats()
print("sales_ok=%d" % ok)
print("paid=%d discounted=%d" % (paid, discounted))
print("card_commands_per_sale=%d" % ((int(after["card_commands"]) - int(before["card_commands"])) // sales))
print("us_per_sale=%d" % (sale_us // sales))
print("us_per_lookup=%d" % (lookup_us // sales))
print("heap_peak_above_idle=%d" % peak)
print("heap_idle=%d" % heap_idle)

# The consumption rules' offline limit (SPEC.md §3.6 rule 16): the sales above are in the journal, none
# acknowledged; a limit just above what they paid refuses the next sale, and the hub's ack frees it.
from protocol.spend_rules import SpendRules  # noqa: E402
from terminal.spend import RulesTail  # noqa: E402

wallet.sale_lines = None        # a keyed amount from here: no lines
cfg = wallet.config
cfg.role = 1
cfg.tail = SpendRules(1, offline_cents=paid + 1).encode()
tail = RulesTail(wallet)
tail.take(cfg)
outcomes = []
# The first tap counts the unacknowledged sales once; the next reads only what came since (none: it was refused).
for step in ("unacked", "unacked_next", "acked"):
    if step == "acked":
        journal.ack(journal.last_seq())
    link.control("add 0")
    gc.collect()
    before_scan = gc.mem_alloc()
    result = wallet.debit(100)
    outcomes.append(result.reason or "ok")
    print("offline_scan_heap_%s=%d" % (step, gc.mem_alloc() - before_scan))
    link.control("remove 0")
print("offline_limit=%s" % ",".join(outcomes))
