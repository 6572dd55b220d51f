"""terminal/sync.py on real MicroPython against a real broker (driven by tests/test_sync_micropython.py).

usage: micropython -X heapsize=100k -m sync_check WORKDIR HOST PORT TERMINAL_ID KEY_HEX FRESH ACK_TIMEOUT_MS

Assembled as terminal/runtime.py does it: TerminalState, Journal, Blacklist,
Sync, then MQTTClient with sync.status_frame(0) as last will, sync.attach,
and the tasks client.run(), sync.upload_loop(), sync.status_loop(); the
files live in WORKDIR/flash on the host filesystem (FRESH=1 creates it, FRESH=0
finds it as a reboot would). The wallet and the RC522 stay out: a stand-in
carries the three attributes Sync uses. This script is kept small on
purpose: with the sync stack loaded, the 100 KB heap has little room left
(see the `heap` line).

Commands on stdin, one a line, each answered by a line starting with its name:
  append N | wait_depth N | show | contains N... | heap | quit
Events: `online N` (N-th connection up, status and T_SYNC sent) and
`rx TYPE REFUSED` (a downlink frame was handled; REFUSED frames so far).
"""

import gc
import sys

gc.collect()
HEAP_START = gc.mem_alloc()

import asyncio  # noqa: E402
from binascii import unhexlify  # noqa: E402
from time import ticks_diff, ticks_ms  # noqa: E402

import os  # noqa: E402

ARGS = sys.argv
FRESH = ARGS[6] == "1"
# The terminal's files live on the unix port's host filesystem (VfsPosix), in a
# directory that outlives the process: littlefs over sim.flash costs this
# process heap it does not need to test sync. littlefs itself is covered by
# tests/test_firmware_micropython.py and tests/test_journal.py.
FLASH = ARGS[1] + "/flash"
if FRESH:
    os.mkdir(FLASH)

from protocol import frames, topics  # noqa: E402
from protocol.record import KIND_DEBIT, RECORD_SIZE, Record, record_mac_for  # noqa: E402
from terminal import sync as sync_module  # noqa: E402
from terminal.blacklist import Blacklist  # noqa: E402
from terminal.journal import COMMITTED, Journal  # noqa: E402
from terminal.mqtt import MQTTClient  # noqa: E402
from terminal.state import TerminalState  # noqa: E402

gc.collect()
MODULES = gc.mem_alloc() - HEAP_START
TID = int(ARGS[4])
KEY = unhexlify(ARGS[5])
sync_module.ACK_TIMEOUT_MS = int(ARGS[7])  # read at run time by upload_loop


class Board:
    """The board and the wallet in one stand-in (one class less on the heap).

    Board: clock(), set_clock(), free_heap(), all Sync asks of it. Wallet
    (terminal.wallet.Wallet, RC522 and all, stays out): the three attributes
    Sync reads and writes.
    """

    config = None
    last_hub_contact_s = 0
    blacklist_updated_s = 0

    def __init__(self):
        self.set_clock(1795600000)

    def clock(self):
        return self.epoch + ticks_diff(ticks_ms(), self.at_ms) // 1000

    def set_clock(self, epoch):
        self.epoch, self.at_ms = epoch, ticks_ms()

    def free_heap(self):
        return gc.mem_free()


board = wallet = Board()
state = TerminalState(FLASH)
journal = Journal(FLASH + "/journal", RECORD_SIZE, 16384, 64)
blacklist = Blacklist(FLASH + "/blacklist")
sync = sync_module.Sync(TID, frames.frame_mac_for(KEY), wallet, journal, blacklist, state, board)
name = topics.client_name(TID)
client = MQTTClient(name, ARGS[2], int(ARGS[3]), will_topic=sync.status_topic,  # open broker: no user name
                    will_payload=sync.status_frame(0), will_retain=True)
sync.attach(client)
record_mac = record_mac_for(KEY)
connects = [0]
peak = [0, 0]  # live (after collect), raw
memory_errors = [0]  # journal recounts that found no memory and were asked again


async def on_connect():
    await sync.on_connect()
    connects[0] += 1
    print("online", connects[0])


def on_message(topic, payload, retained):
    sync.on_message(topic, payload, retained)
    print("rx", payload[3] if len(payload) > 3 else -1, sum(sync.rejected.values()))


client.on_connect = on_connect
client.on_message = on_message


async def sample_heap():
    while True:
        peak[1] = max(peak[1], gc.mem_alloc())
        gc.collect()
        peak[0] = max(peak[0], gc.mem_alloc())
        await asyncio.sleep_ms(10)


# One Record, its fields set per append: the harness's own garbage stays out of the terminal's heap budget.
tap = Record(KIND_DEBIT, TID, 0, 0, 0, b"\x04\x11\x22\x33", 0, 0, 0)


async def append(count):
    for _ in range(count):
        seq = journal.last_seq() + 1
        now = board.clock()
        tap.seq, tap.time_s, tap.card_no, tap.card_counter = seq, now, 1000000 + seq, seq
        tap.amount_cents, tap.balance_after_cents = 100 + seq, 500000 - seq
        journal.append(seq, now, tap.encode(record_mac))
        journal.mark(seq, COMMITTED)
        sync.poke()
        await asyncio.sleep_ms(0)  # taps and uploads interleave


def depth(last=-1):
    """journal.depth() as the firmware's callers take it: a recount that found no memory leaves the
    journal as it was (terminal/journal.py _recount); `last` stands in until the next ask."""
    try:
        return journal.depth()
    except MemoryError:
        memory_errors[0] += 1
        return last


def show():
    cfg = wallet.config
    return "depth=%d last_seq=%d bl_version=%d bl_count=%d config=%d role=%d clock=%d down=%d boot=%d up=%d " \
           "contact=%d bl_at=%d rejected=%s" % (
               depth(), journal.last_seq(), blacklist.version, blacklist.count, cfg.version if cfg else 0,
               cfg.role if cfg else 0, board.clock(), state.down_counter, state.boot, state.up_counter,
               wallet.last_hub_contact_s, wallet.blacklist_updated_s,
               ",".join("%s:%d" % kv for kv in sorted(sync.rejected.items())) or "-")


async def serve(stdin):
    while True:
        words = (await stdin.readline()).split()
        if not words:
            return
        cmd, args = words[0].decode(), [int(w) for w in words[1:]]
        if cmd == "append":
            await append(args[0])
            out = "%d %d" % (journal.last_seq(), journal.depth())
        elif cmd == "wait_depth":
            start = ticks_ms()
            while depth() != args[0] and ticks_diff(ticks_ms(), start) < 20000:
                await asyncio.sleep_ms(5)
            out = "%d %s" % (depth(), "ok" if depth() == args[0] else "timeout")
        elif cmd == "show":
            out = show()
        elif cmd == "contains":
            out = " ".join("1" if blacklist.contains(n) else "0" for n in args)
        elif cmd == "heap":
            gc.collect()
            out = "start=%d modules=%d live_peak=%d raw_peak=%d now=%d free=%d memory_errors=%d" % (
                HEAP_START, MODULES, peak[0], peak[1], gc.mem_alloc(), gc.mem_free(), memory_errors[0])
        elif cmd == "quit":
            await client.disconnect()  # DISCONNECT: the broker drops the last will
            out = ""
        else:
            out = "unknown"
        print(cmd, out)
        if cmd == "quit":
            return


async def main():
    for coro in (sample_heap(), client.run(), sync.upload_loop(), sync.status_loop()):
        asyncio.create_task(coro)
    print("boot", state.boot, journal.depth())
    await serve(asyncio.StreamReader(sys.stdin))


asyncio.run(main())
