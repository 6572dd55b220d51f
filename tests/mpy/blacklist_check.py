"""A 100,000-card blacklist on littlefs over the simulated flash, within the ESP32 heap.

Run by tests/test_blacklist.py; each check prints one line that the test asserts on.
"""

import gc
import time

from sim.flash import FileBlockDevice, mount_littlefs
from terminal.blacklist import Blacklist, VersionGap

MNT = "/flash"
N = 100000
STEP = 7  # the list holds 7, 14, ..., 700000

dev = FileBlockDevice("blacklist.img", 4096, 256)
mount_littlefs(dev, MNT, format=True)
bl = Blacklist(MNT + "/bl")
gc.collect()
heap_before = gc.mem_alloc()

t = time.ticks_ms()
bl.begin_snapshot(5)
for start in range(STEP, N * STEP + 1, 1000 * STEP):  # chunks of 1000 arriving from the hub
    bl.add_snapshot_chunk(range(start, start + 1000 * STEP, STEP))
bl.finish_snapshot()
print("snapshot_ms", time.ticks_diff(time.ticks_ms(), t))
gc.collect()
print("heap_growth_snapshot", gc.mem_alloc() - heap_before)
print("snapshot", bl.version == 5 and bl.count == N)

probes = (STEP, 2 * STEP, N * STEP, (N - 1) * STEP, 12345 * STEP)
absent = (0, 1, STEP + 1, N * STEP + 1, N * STEP + STEP, 0xFFFFFFFF)
t = time.ticks_us()
hits = [bl.contains(n) for n in probes]
misses = [bl.contains(n) for n in absent]
print("lookup_us", time.ticks_diff(time.ticks_us(), t) // (len(probes) + len(absent)))
print("lookups", hits == [True] * len(probes) and misses == [False] * len(absent))

t = time.ticks_ms()
bl.apply_delta(5, 6, (1, STEP + 1, N * STEP + 1), (STEP, N * STEP))
print("delta_ms", time.ticks_diff(time.ticks_ms(), t))
gc.collect()
print("heap_growth", gc.mem_alloc() - heap_before)
ok = bl.contains(1) and bl.contains(STEP + 1) and not bl.contains(STEP) and not bl.contains(N * STEP)
print("delta", ok and bl.contains(N * STEP + 1) and bl.count == N + 1 and bl.version == 6)

try:
    bl.apply_delta(5, 7, (), ())
    print("version_gap", False)
except VersionGap:
    print("version_gap", bl.version == 6)

bl.close()
bl = Blacklist(MNT + "/bl")
print("reopen", bl.version == 6 and bl.count == N + 1 and bl.contains(2 * STEP) and not bl.contains(STEP))
