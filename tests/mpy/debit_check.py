"""Whole debits on real MicroPython: the real driver talks to the virtual RC522 (served
by CPython over sim/spi_link), journal and blacklist on littlefs over simulated flash.

usage: micropython -X heapsize=100k debit_check.py WORKDIR CHIP_PORT BLACKLIST_N QUEUED_N DEBITS
The chip server holds card 0 (a wallet with 5000.00) and card 1 (card number
1001554, on the blacklist built here). Prints key=value lines.
"""

import gc
import sys
import time

gc.collect()
gc.threshold(16384)  # as firmware/boot.py sets it on the ESP32
heap_start = gc.mem_alloc()

from sim.flash import FileBlockDevice, mount_littlefs

workdir = sys.argv[1]
port, blacklist_n, queued_n, debits = [int(a) for a in sys.argv[2:6]]
NOW = 1795600000

# 2 MB of simulated flash: the ESP32's filesystem partition is about 1.5 MB.
# Mounted before the application is imported, as boot.py finds it on the ESP32.
device = FileBlockDevice(workdir + "/flash.bin", 4096, 512)
mount_littlefs(device, "/flash", format=True)

from protocol import card_issue
from protocol.config import Config
from protocol.record import RECORD_SIZE, record_mac_for
from sim.spi_link import ChipLink, LinkedPin, LinkedSpi
from terminal import journal as jr
from terminal.blacklist import Blacklist
from terminal.journal import Journal
from terminal.rc522 import RC522
from terminal.wallet import Wallet

PARK = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32)
journal = Journal("/flash/journal", RECORD_SIZE, 32768, 48)
blacklist = Blacklist("/flash/blacklist")

# The blacklist arrives as a snapshot in chunks, as from the hub.
blacklist.begin_snapshot(1)
chunk = []
for i in range(blacklist_n):
    chunk.append(1000000 + 2 * i)
    if len(chunk) == 256:
        blacklist.add_snapshot_chunk(chunk)
        chunk = []
if chunk:
    blacklist.add_snapshot_chunk(chunk)
blacklist.finish_snapshot()
chunk = None

# A backlog of queued records, as after a long time offline.
filler = bytes(RECORD_SIZE)
for seq in range(1, queued_n + 1):
    journal.append(seq, NOW, filler)
    journal.mark(seq, jr.COMMITTED)
filler = None

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
t0 = time.ticks_us()
ok = 0
balance = 0
elapsed_us = 0
for i in range(debits):
    link.control("add 0")
    # Everything a debit allocates, garbage included, from a collected heap and
    # with no threshold collection on the way: an upper bound on the heap a debit
    # needs above idle. (The collector still runs if the heap runs out.)
    gc.collect()
    gc.threshold(-1)
    t0 = time.ticks_us()
    result = wallet.debit(100)
    elapsed_us += time.ticks_diff(time.ticks_us(), t0)
    used = gc.mem_alloc() - heap_idle
    gc.threshold(16384)
    link.control("remove 0")
    if result.ok:
        ok += 1
        balance = result.balance_cents
    if used > peak:
        peak = used
after = stats()
print("debits_ok=%d" % ok)
print("balance=%d" % balance)
print("card_commands_per_debit=%d" % ((int(after["card_commands"]) - int(before["card_commands"])) // debits))
print("spi_transactions_per_debit=%d" % ((int(after["spi_transactions"]) - int(before["spi_transactions"])) // debits))
print("us_per_debit=%d" % (elapsed_us // debits))
print("heap_peak_above_idle=%d" % peak)
print("heap_idle=%d" % heap_idle)
print("heap_idle_above_start=%d" % (heap_idle - heap_start))
gc.collect()
print("heap_free=%d" % gc.mem_free())

link.control("add 1")
refused = wallet.debit(100)
link.control("remove 1")
print("blacklisted_reason=%s" % refused.reason)

# A card pulled during the write, then tapped again: the journal settles the record.
link.control("add 0")
link.control("tear 0 16")
torn = wallet.debit(100)
link.control("add 0")
check = wallet.balance()
link.control("remove 0")
print("torn_result=%s torn_status=%d balance_after_retap=%d" % (
    torn.reason, journal.status(torn.seq), check.balance_cents))

t0 = time.ticks_us()
hits = 0
for i in range(1000):
    if blacklist.contains(1000000 + i):
        hits += 1
print("blacklist_hits=%d" % hits)
t0 = time.ticks_us()
Blacklist("/flash/blacklist").close()  # opening checks the numbers' crc32: the whole file is read once
print("us_blacklist_open=%d" % time.ticks_diff(time.ticks_us(), t0))
print("us_per_blacklist_lookup=%d" % (time.ticks_diff(time.ticks_us(), t0) // 1000))
print("journal_depth=%d" % journal.depth())
