"""Power cut at chosen bytes during journal writes, a blacklist delta and a price list replacement, on littlefs.

Usage: powerloss_check.py journal|blacklist|prices STRIDE WINDOW
Every cut point in the last WINDOW bytes of the last operation's writes is
tried, plus every STRIDE-th byte across the whole run. After each cut the flash is remounted, the store
reopened, and its whole state must equal the state before or after the
operation that was cut: nothing lost, nothing invented. One line per case.
"""

import gc
import sys

from sim.flash import FileBlockDevice, PowerCut, copy_image, mount_littlefs, unmount

gc.collect()  # compiling from source needs a contiguous block of the small heap
from terminal.journal import COMMITTED, UNCERTAIN, VOIDED, Journal  # noqa: E402

gc.collect()
from terminal.blacklist import Blacklist  # noqa: E402

MNT = "/flash"
BLOCK_SIZE, BLOCK_COUNT = 512, 128
RS = 56
BASE, DISK = "base.img", "disk.img"

# Journal scenario: the baseline holds 1..11 final and 12 uncertain, nearly
# filling the first 1 KB segment; the operations roll to a second segment, ack
# (a state file replace) and trim the first.
J_OPS = (
    ("a", 13), ("m", 13, COMMITTED), ("a", 14), ("m", 14, UNCERTAIN), ("m", 12, VOIDED),
    ("k", 14), ("a", 15), ("m", 15, COMMITTED),
)  # fmt: skip
J_SEQS = range(14, 17)  # 13 gets acked, and may be trimmed away with its segment
# Blacklist scenario: v1 holds multiples of 3 below 1500; v2 drops some and adds others.
BL_V1 = range(0, 1500, 3)
BL_ADDS = (1, 2, 700, 1499, 5000, 5001)
BL_REMOVES = (0, 3, 699, 1497)
BL_PROBES = tuple(range(0, 20)) + tuple(range(690, 710)) + tuple(range(1490, 1502)) + (5000, 5001, 5002)


def open_journal():
    return Journal(MNT + "/j", RS, segment_bytes=1024, max_segments=8)


def record(seq):
    return bytes([seq]) * RS


def j_baseline():
    j = open_journal()
    for seq in range(1, 13):
        j.append(seq, 1000 + seq, record(seq))
        j.mark(seq, UNCERTAIN if seq == 12 else COMMITTED)
    j.close()


def j_run(done):
    j = open_journal()
    for op in J_OPS:
        if op[0] == "a":
            j.append(op[1], 1000 + op[1], record(op[1]))
        elif op[0] == "m":
            j.mark(op[1], op[2])
        else:
            j.ack(op[1])
        done.step()
    j.close()


def j_state():
    j = open_journal()
    state = [j.status(seq) for seq in J_SEQS]
    state.append([seq for seq, rec in j.uncertain() if rec == record(seq)])
    state.append([item[:2] for item in j.unsynced(50)])
    state.append(j.last_seq())
    state.append(j.depth())
    state.append(j.oldest_unsynced_time())
    # The journal must still take writes after recovery.
    nxt = j.last_seq() + 1
    j.append(nxt, 2000, record(nxt))
    j.mark(nxt, COMMITTED)
    j.close()
    again = open_journal()
    if again.status(nxt) != COMMITTED:
        state.append("lost the write after recovery")
    again.close()
    return state


def j_expected(ops_done):
    status = {seq: COMMITTED for seq in range(1, 12)}
    status[12] = UNCERTAIN
    last = 12
    acked = 0
    for op in J_OPS[:ops_done]:
        if op[0] == "a":
            status[op[1]] = 0
            last = op[1]
        elif op[0] == "m":
            status[op[1]] = op[2]
        else:
            acked = min([op[1]] + [s - 1 for s in status if status[s] in (0, UNCERTAIN)])
    open_seqs = [s for s in sorted(status) if status[s] in (0, UNCERTAIN)]
    unsynced = []
    for seq in sorted(status):
        if seq > acked:
            if seq in open_seqs:
                break
            unsynced.append((seq, status[seq]))
    unacked = [s for s in status if s > acked]
    oldest = 1000 + min(unacked) if unacked else None
    return [status.get(seq) for seq in J_SEQS] + [open_seqs, unsynced, last, len(unacked), oldest]


def bl_baseline():
    bl = Blacklist(MNT + "/bl")
    bl.apply_delta(0, 1, BL_V1, ())
    bl.close()


def bl_run(done):
    bl = Blacklist(MNT + "/bl")
    bl.apply_delta(1, 2, BL_ADDS, BL_REMOVES)
    done.step()
    bl.close()


def bl_state():
    bl = Blacklist(MNT + "/bl")
    state = [bl.version, bl.count] + [n for n in BL_PROBES if bl.contains(n)]
    bl.close()
    return state


def bl_expected(ops_done):
    numbers = set(BL_V1)
    if ops_done:
        numbers = (numbers | set(BL_ADDS)) - set(BL_REMOVES)
    return [1 + ops_done, len(numbers)] + [n for n in BL_PROBES if n in numbers]


# Price list scenario: version 1 is 300 items in 3 chunks; version 2, 300 others, replaces it chunk by chunk.
PL_N = 300
PL_PROBES = (2, 3, 6, 300, 450, 600, 900, 901)


def pl_item(version, i):
    from protocol.price_list import Item
    return Item((version + 1) * (i + 1), "v%d %d" % (version, i), 100 * version + i)


def pl_bodies(version):
    from protocol.hub_price_list import chunk_body
    from protocol.price_list import parse_price_list
    from vector_checks import Lazy
    items = Lazy(PL_N, lambda i: pl_item(version, i))
    for chunk in range(3):
        yield parse_price_list(chunk_body(9, version, chunk, 3, items, 100 * chunk, 100 * chunk + 100))


def pl_baseline():
    from terminal.prices import PriceList
    prices = PriceList(MNT + "/p")
    for chunk in pl_bodies(1):
        prices.take(chunk)
    prices.close()


def pl_run(done):
    from terminal.prices import PriceList
    prices = PriceList(MNT + "/p")
    for chunk in pl_bodies(2):
        prices.take(chunk)
        done.step()
    prices.close()


def pl_state():
    from terminal.prices import PriceList
    prices = PriceList(MNT + "/p")
    state = [prices.version, prices.count]
    for code in PL_PROBES:
        item = prices.lookup(code)
        state.append(item and (item.code, item.name, item.price_cents))
    prices.close()
    return state


def pl_expected(ops_done):
    version = 2 if ops_done == 3 else 1     # the new list is in force only once its last chunk is in
    step = version + 1
    return [version, PL_N] + [(c, "v%d %d" % (version, c // step - 1), 100 * version + c // step - 1)
                              if c % step == 0 and 0 < c // step <= PL_N else None for c in PL_PROBES]


class Progress:
    """Counts the operations a scenario completed and the bytes written at each."""

    def __init__(self, dev):
        self.dev = dev
        self.start = dev.bytes_written
        self.done = 0
        self.ends = []

    def step(self):
        self.done += 1
        self.ends.append(self.dev.bytes_written - self.start)


def power_down(dev):
    # Finalisers of the dead mount's files must run while the power is off,
    # or a late close() would write stale littlefs state after the remount.
    dev.discard_writes()
    gc.collect()
    unmount(MNT)
    dev.restore_power()


def case(run, state, cut):
    """Run the scenario with the power cut after cut bytes; return (ops done, state, cut hit)."""
    copy_image(BASE, DISK)
    dev = FileBlockDevice(DISK, BLOCK_SIZE, BLOCK_COUNT, create=False)
    mount_littlefs(dev, MNT)
    progress = Progress(dev)
    hit = False
    dev.cut_after(cut)
    try:
        run(progress)
    except PowerCut:
        hit = True
    power_down(dev)
    mount_littlefs(dev, MNT)
    after = state()
    unmount(MNT)
    dev.close()
    return progress.done, after, hit


def main(which, stride, window):
    baseline, run, state, expected = {
        "journal": (j_baseline, j_run, j_state, j_expected),
        "blacklist": (bl_baseline, bl_run, bl_state, bl_expected),
        "prices": (pl_baseline, pl_run, pl_state, pl_expected),
    }[which]
    dev = FileBlockDevice(BASE, BLOCK_SIZE, BLOCK_COUNT)
    mount_littlefs(dev, MNT, format=True)
    baseline()
    unmount(MNT)
    dev.close()

    # A clean run tells how many bytes the scenario writes, and where its last operation starts.
    copy_image(BASE, DISK)
    dev = FileBlockDevice(DISK, BLOCK_SIZE, BLOCK_COUNT, create=False)
    mount_littlefs(dev, MNT)
    progress = Progress(dev)
    run(progress)
    total = dev.bytes_written - progress.start
    unmount(MNT)
    dev.close()
    last_start = progress.ends[-2] if len(progress.ends) > 1 else 0

    exhaustive_from = max(last_start, total - window)
    cases = bad = heap_max = 0
    for cut in range(total + 1):
        if cut < exhaustive_from and cut % stride:
            continue
        cases += 1
        ops_done, after, hit = case(run, state, cut)
        gc.collect()
        heap_max = max(heap_max, gc.mem_alloc())
        ok = after in (expected(ops_done), expected(ops_done + 1)) if hit else after == expected(ops_done)
        if not ok:
            bad += 1
            print("FAIL cut=%d ops_done=%d state=%r want=%r" % (cut, ops_done, after, expected(ops_done)))
    print("%s_bytes %d" % (which, total))
    print("%s_cases %d" % (which, cases))
    print("%s_heap_max %d" % (which, heap_max))
    print("%s_powerloss %s" % (which, "ok" if bad == 0 else "FAILED %d" % bad))


main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
