"""The journal on littlefs over the simulated flash, within the ESP32 heap.

Run by tests/test_journal.py; each check prints one line that the test asserts on.
"""

import gc
import os
import time

from sim.flash import FileBlockDevice, mount_littlefs
from terminal.journal import COMMITTED, PENDING, UNCERTAIN, VOIDED, Journal, JournalFull

MNT = "/flash"
DIR = MNT + "/journal"
RS = 56  # the protocol's transaction record today
N = 2000
T0 = 1700000000


def reopen(j):
    j.close()
    return Journal(DIR, RS, segment_bytes=16384, max_segments=32)


dev = FileBlockDevice("journal.img", 4096, 256)
mount_littlefs(dev, MNT, format=True)
j = Journal(DIR, RS, segment_bytes=16384, max_segments=32)
rec = bytearray(RS)

gc.collect()
heap_before = gc.mem_alloc()
append_us = mark_us = 0
for seq in range(1, N + 1):
    rec[0] = seq & 0xFF
    t = time.ticks_us()
    j.append(seq, T0 + seq, rec)
    t2 = time.ticks_us()
    j.mark(seq, VOIDED if seq % 10 == 0 else COMMITTED)
    append_us += time.ticks_diff(t2, t)
    mark_us += time.ticks_diff(time.ticks_us(), t2)
gc.collect()
print("append_us", append_us // N)
print("mark_us", mark_us // N)
print("heap_growth", gc.mem_alloc() - heap_before)

t = time.ticks_us()
batch = j.unsynced(100)
print("unsynced_us", time.ticks_diff(time.ticks_us(), t))
ok = len(batch) == 100 and batch[0][0] == 1 and batch[9] == (10, VOIDED, bytes([10]) + bytes(RS - 1))
print("lifecycle", ok and j.depth() == N and j.last_seq() == N and j.oldest_unsynced_time() == T0 + 1)

t = time.ticks_us()
st = j.status(1234)
print("status_us", time.ticks_diff(time.ticks_us(), t))
print("status", st == COMMITTED and j.status(1230) == VOIDED and j.status(N + 1) is None)

segments_before = len(os.listdir(DIR))
j.ack(1990)
segments_after = len(os.listdir(DIR))
print("ack_trims", segments_after < segments_before and j.depth() == N - 1990 and j.oldest_unsynced_time() == T0 + 1991)

j.append(N + 1, T0, rec)
j.mark(N + 1, UNCERTAIN)
j.append(N + 2, T0, rec)
j = reopen(j)
pending = [seq for seq, _ in j.uncertain()]
ok = pending == [N + 1, N + 2] and j.status(N + 1) == UNCERTAIN and j.status(N + 2) == PENDING
print("reopen", ok and j.depth() == N - 1990 + 2 and j.last_seq() == N + 2 and [b[0] for b in j.unsynced(50)] == list(range(1991, N + 1)))
j.mark(N + 1, COMMITTED)
j.mark(N + 2, VOIDED)
j.ack(N + 2)
print("all_acked", j.depth() == 0 and j.last_seq() == N + 2 and list(j.uncertain()) == [])
j.close()

# A small budget on the same littlefs: refuse, never drop.
small = Journal(MNT + "/small", RS, segment_bytes=1024, max_segments=3)
seq = 0
try:
    while True:
        small.append(seq + 1, T0, rec)
        seq += 1
        small.mark(seq, COMMITTED)
except JournalFull:
    pass
small = Journal(MNT + "/small", RS, segment_bytes=1024, max_segments=3)
print("full_refuses", seq > 0 and small.depth() == seq and len(small.unsynced(seq + 1)) == seq and small.free_records() == 0)
