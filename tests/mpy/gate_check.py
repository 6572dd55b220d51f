"""Gate passages on real MicroPython: the real driver talks to the virtual RC522 (served by CPython over
sim/spi_link), the journal on littlefs over simulated flash, the gate role's decision and writes.

usage: micropython -X heapsize=100k gate_check.py WORKDIR CHIP_PORT TAPS
The chip server holds card 0 (a day pass on a wallet) and card 1 (a timed ticket on a wallet with 22.00).
Prints key=value lines.
"""

import gc
import sys
import time

gc.collect()
gc.threshold(16384)  # as firmware/boot.py sets it on the ESP32
heap_start = gc.mem_alloc()

from sim.flash import FileBlockDevice, mount_littlefs

workdir = sys.argv[1]
port, taps = [int(a) for a in sys.argv[2:4]]
NOW = 1795600000 - 1795600000 % 86400 + 36000      # 10:00 UTC

device = FileBlockDevice(workdir + "/flash.bin", 4096, 512)
mount_littlefs(device, "/flash", format=True)

from protocol import card, ticket as t
from protocol import card_issue
from protocol.config import ROLE_GATE, Config
from protocol.record import RECORD_SIZE, Record, record_mac_for
from sim.spi_link import ChipLink, LinkedPin, LinkedSpi
from terminal import journal as jr
from terminal.blacklist import Blacklist
from terminal.journal import Journal
from terminal.rc522 import RC522
from terminal.roles.gate import Gate
from terminal.wallet import Wallet


class Relay:
    """Counts openings (the board's relay on the host)."""

    def __init__(self):
        self.openings = 0

    def open(self, open_ms):
        self.openings += 1


PARK = card.booth_keys(card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32))
journal = Journal("/flash/journal", RECORD_SIZE, 32768, 48)
blacklist = Blacklist("/flash/blacklist")
clock = [NOW]
link = ChipLink("127.0.0.1", port)
reader = RC522(LinkedSpi(link), LinkedPin(link))
reader.init()
wallet = Wallet(reader, journal, blacklist, 31, record_mac_for(b"K" * 32), lambda: clock[0])
wallet.park_keys = PARK
wallet.config = Config(version=1, role=ROLE_GATE, category=0, tx_cap_cents=0, daily_cap_cents=0)
wallet.last_hub_contact_s = NOW
wallet.blacklist_updated_s = NOW
relay = Relay()
gate = Gate(wallet, relay)
gate.config = t.GateConfig(1, t.DIRECTION_BOTH, 1, products=[t.GateProduct(1), t.GateProduct(5, 60, 30, 500)])


def stats():
    return dict(kv.split("=") for kv in link.control("stats").split())


def measured(a_gate, card_index):
    """One tap of card card_index at a_gate: (result, card commands, microseconds, heap it allocated)."""
    link.control("add %d" % card_index)
    before = stats()
    gc.collect()
    gc.threshold(-1)
    base = gc.mem_alloc()      # what the taps before keep (journal index, the gate's memos) is not this tap's
    t0 = time.ticks_us()
    result = a_gate.tap()
    us = time.ticks_diff(time.ticks_us(), t0)
    heap = gc.mem_alloc() - base
    gc.threshold(16384)
    after = stats()
    link.control("remove %d" % card_index)
    return result, int(after["card_commands"]) - int(before["card_commands"]), us, heap


gc.collect()
heap_idle = gc.mem_alloc()
peak = 0
elapsed_us = 0
passed = 0
before = stats()
for i in range(taps):
    link.control("add 0")
    gc.collect()
    gc.threshold(-1)
    base = gc.mem_alloc()
    t0 = time.ticks_us()
    result = gate.tap()
    elapsed_us += time.ticks_diff(time.ticks_us(), t0)
    used = gc.mem_alloc() - base
    gc.threshold(16384)
    link.control("remove 0")
    clock[0] += 60
    if result.ok:
        passed += 1
    if used > peak:
        peak = used
after = stats()
print("passages_ok=%d" % passed)
print("card_commands_per_passage=%d" % ((int(after["card_commands"]) - int(before["card_commands"])) // taps))
print("us_per_passage=%d" % (elapsed_us // taps))
print("heap_peak_per_passage=%d" % peak)
print("heap_idle_above_start=%d" % (heap_idle - heap_start))
print("relay_openings=%d" % relay.openings)

# Anti-passback offline: the card is inside after an even number of passages plus one entry.
link.control("add 0")
gate.tap(t.DIRECTION_ENTRY)
link.control("remove 0")
link.control("add 0")
again = gate.tap(t.DIRECTION_ENTRY)
link.control("remove 0")
print("anti_passback_reason=%d" % again.reason)

# A timed ticket: in, two hours, out: charged 10.00 from the wallet in the same tap.
link.control("add 1")
entered = gate.tap()
link.control("remove 1")
clock[0] += 7200
out, timed_commands, timed_us, timed_heap = measured(gate, 1)
print("timed_entry_ok=%d timed_exit_ok=%d charge=%d balance=%d" % (
    entered.ok, out.ok, out.charge_cents, out.balance_cents))
print("timed_exit_card_commands=%d timed_exit_us=%d timed_exit_heap=%d" % (timed_commands, timed_us, timed_heap))

# A ticket write torn after its data landed: uncertain, then the re-tap opens without a second passage.
clock[0] += 60
link.control("add 0")
link.control("tear 0 16")
torn = gate.tap(t.DIRECTION_EXIT)
link.control("add 0")
retap = gate.tap(t.DIRECTION_EXIT)
link.control("remove 0")
print("torn_reason=%s torn_status=%d retap_ok=%d" % (torn.reason, journal.status(torn.seq), retap.ok))
# A timed exit torn after its exit was written, before its debit (SPEC.md §3.13): the gate after a reboot (a
# fresh Gate, no memory of that tap) finds the exit on the card, collects the charge once and opens.
clock[0] += 600        # past the time a charged exit's gate opens again (gate_rules.EXIT_AGAIN_S)
link.control("add 1")
again_in = gate.tap()
link.control("remove 1")
clock[0] += 7200
link.control("add 1")
link.control("remove_after 1 16")      # the sector 1 authentication after the ticket write
torn_exit = gate.tap()
rebooted = Gate(wallet, relay)
rebooted.config = gate.config
clock[0] += 20
finished, finish_commands, finish_us, finish_heap = measured(rebooted, 1)
print("torn_exit_reason=%s finish_ok=%d finish_charge=%d finish_balance=%d" % (
    torn_exit.reason, finished.ok and again_in.ok, finished.charge_cents, finished.balance_cents))
print("finish_card_commands=%d finish_us=%d finish_heap=%d" % (finish_commands, finish_us, finish_heap))
# An exit written but not walked (SPEC.md §3.14): the card says outside; the exit opens again, writing nothing,
# and journals one finished-exit record (kind 25) naming that exit.
clock[0] += 60
passed = []
for direction in (t.DIRECTION_ENTRY, t.DIRECTION_EXIT, t.DIRECTION_EXIT):
    link.control("add 0")
    passage = gate.tap(direction)
    link.control("remove 0")
    passed.append(passage.ok)
    clock[0] += 60
kinds = []
journal.each_after(passage.seq - 1,
                   lambda seq, buf, at: kinds.append(Record.decode(bytes(buf[at:at + RECORD_SIZE])).kind))
print("not_walked_ok=%d not_walked_kind=%d" % (all(passed) and len(kinds) == 1, kinds[0] if kinds else 0))
print("journal_depth=%d" % journal.depth())
gc.collect()
print("heap_free=%d" % gc.mem_free())
