"""Pending credits delivered at sale taps on real MicroPython: the real driver talks to the virtual RC522
(served by CPython over sim/spi_link), journal and credits list on littlefs over simulated flash.

usage: micropython -X heapsize=100k credit_tap_check.py WORKDIR CHIP_PORT CREDITS_N
The chip server holds card 0 (card number 42, 5000.00). The list holds CREDITS_N credits (the
bound is 4,096): two for card 42 (12.50 and 7.50), the rest for other cards. Prints key=value lines.
"""

import gc
import sys

gc.collect()
gc.threshold(16384)  # as firmware/boot.py sets it on the ESP32

from sim.flash import FileBlockDevice, mount_littlefs

workdir = sys.argv[1]
port, credits_n = [int(a) for a in sys.argv[2:4]]
NOW = 1795600000

device = FileBlockDevice(workdir + "/flash.bin", 4096, 512)
mount_littlefs(device, "/flash", format=True)

from terminal.credits import Credits


class _Frame:
    def __init__(self, body):
        self.body = body


class _Entries:
    """The list the hub sends, made one entry at a time: card 42's two credits among the others."""

    def __len__(self):
        return credits_n

    def __getitem__(self, i):
        if i < 2:
            return (42, i + 1, 1250 if i == 0 else 750)
        return (1000 + i, 1, 100 + i)


def load_list():
    """The hub's list, one chunk at a time as T_CREDITS frames bring it: never whole in RAM. The hub's
    encoder is dropped afterwards: a terminal never holds it."""
    from protocol.hub_credits import chunk_count, credits_chunk
    store = Credits("/flash/credits")
    entries = _Entries()
    for i in range(chunk_count(credits_n)):
        store.on_frame(_Frame(credits_chunk(7, entries, i)))
        gc.collect()
    del sys.modules["protocol.hub_credits"]
    return store


store = load_list()
gc.collect()
print("credits_version=%d credits_count=%d" % (store.version, store.count))

from protocol import card_issue
from protocol.config import Config
from protocol.record import RECORD_SIZE, Record, record_mac_for
from sim.spi_link import ChipLink, LinkedPin, LinkedSpi
from terminal.blacklist import Blacklist
from terminal.journal import Journal
from terminal.rc522 import RC522
from terminal.wallet import Wallet

PARK = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32)
journal = Journal("/flash/journal", RECORD_SIZE, 32768, 48)
blacklist = Blacklist("/flash/blacklist")

link = ChipLink("127.0.0.1", port)
reader = RC522(LinkedSpi(link), LinkedPin(link))
reader.init()
mac = record_mac_for(b"K" * 32)
wallet = Wallet(reader, journal, blacklist, 7, mac, lambda: NOW)
wallet.park_keys = PARK
wallet.config = Config(version=1, category=0, tx_cap_cents=0, daily_cap_cents=0)
wallet.last_hub_contact_s = NOW
wallet.blacklist_updated_s = NOW
wallet.credits = store

gc.collect()
heap_idle = gc.mem_alloc()


def tap(amount):
    """One sale tap; returns (result, heap used above idle, garbage included)."""
    link.control("add 0")
    gc.collect()
    gc.threshold(-1)
    result = wallet.debit(amount)
    used = gc.mem_alloc() - heap_idle
    gc.threshold(16384)
    link.control("remove 0")
    return result, used


first, first_heap = tap(100)
second, second_heap = tap(100)
kinds = []
for _seq, _status, raw in journal.unsynced(10):
    rec = Record.decode(raw, mac)
    kinds.append("%d:%d:%d" % (rec.kind, rec.amount_cents, rec.item))
print("first_ok=%d first_balance=%d" % (first.ok, first.balance_cents))
print("second_ok=%d second_balance=%d" % (second.ok, second.balance_cents))
print("records=%s" % ",".join(kinds))
print("heap_credit_tap_above_idle=%d heap_plain_tap_above_idle=%d" % (first_heap, second_heap))
gc.collect()
print("heap_free=%d" % gc.mem_free())
