"""Where a terminal's heap goes, and the smallest heap the whole terminal runs in.

usage: .venv/bin/python bench/bench_heap.py [--low 100] [--high 240] [--romfs-low 100] [--romfs-high 160]
                                            [--step 4] [--stall-seconds 5]

- The whole terminal: main.main() under the MicroPython unix port (64-bit objects) as parkcard-flash
  installs it, against a hub over a TLS Mosquitto, two taps approved and acked around a blacklist
  snapshot of five chunks and a config change (tests/terminal_whole.py, the test's own scenario):
  bisected to --step KB, the smallest heap at which it passes, for both installs: terminal/ and protocol/
  as files on the filesystem (between --low and --high), and as a ROMFS image mapped outside the heap
  as an ESP32 maps its ROMFS partition (tests/romfs_mapped.py; between --romfs-low and --romfs-high).
- Where it goes, at a roomy heap: each module's import (what it costs when imported in the order
  main.py pulls it in, qstr pool growth included), the qstr pools, the heap at main.main(), after the
  first tap and its sync, after the config change.
- A ride's imports from the filesystem (as parkcard-flash installs them) and from a ROMFS image of the same
  .mpy files mounted with VfsRom from memory outside the heap, where MicroPython runs bytecode in place:
  what a board whose firmware has a ROMFS partition saves (the stock ESP32_GENERIC firmware has none; its
  ROMFS variant has one). With both installs: the heap at main.main() and after the first tap.
- The tap that delivers pending credits (tests/mpy/credit_tap_check.py, the longest list): its heap
  above idle and the smallest heap it passes in.
- Each half under its own test: the debit path (tests/mpy/debit_check.py: heap above idle of one
  debit) and the sync stack (tests/mpy/sync_check.py at tests/test_sync_micropython.py's SYNC_HEAP
  against a Mosquitto: 200 records uploaded and acked, then its heap: in use, live and raw peaks).
- The tap loop's longest stall with no card (tests/mpy/reader_stall.py irq mode, bench/bench_reader.py
  has every mode).
Figures only: nothing here passes or fails.
"""

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from bench_reader import TARGET_MS, figures  # noqa: E402
from conftest import MICROPYTHON, MPY_SCRIPTS, Broker, compiled_firmware, micropython_env, run_micropython  # noqa: E402
from terminal_whole import (INSTALL_FILES, INSTALL_ROMFS, ROMFS_HEAP, ROMFS_MAPPED, WHOLE_HEAP, Park,  # noqa: E402
                            run_whole)
from test_firmware_micropython import chip_with_cards, parse  # noqa: E402
from test_sync_micropython import SYNC_HEAP, Hub, Terminal as SyncTerminal  # noqa: E402
from test_credits_terminal import CREDIT_TAP_HEAP, credit_card  # noqa: E402
from protocol.credits import CREDITS_MAX  # noqa: E402
from sim.chip_server import ChipServer  # noqa: E402

# In the order main.py imports them (a module's own imports first).
MODULES = ("ssl", "protocol.errors", "protocol.crypto", "protocol.config", "protocol.record", "protocol.frames",
           "protocol.topics", "protocol.card", "terminal.compat", "terminal.atomic", "terminal.journal",
           "terminal.blacklist", "terminal.rc522", "terminal.purse", "terminal.cards.classic", "terminal.wallet",
           "terminal.ui", "terminal.authorise", "terminal.app", "terminal.state", "terminal.mqtt_codec",
           "terminal.mqtt", "terminal.sync", "terminal.devices", "terminal.runtime", "terminal.assemble", "terminal.start",
           "terminal.roles.ride", "protocol.credits", "terminal.listfile", "terminal.cards.classic_credits",
           "terminal.credits")


# A ride's own modules (MODULES without the TLS module and the pending-credits ones it loads only with a list).
RIDE_MODULES = tuple(m for m in MODULES if m != "ssl" and "credits" not in m and m != "terminal.listfile")
_IMPORTS_HEAP = """
import gc, sys
import romfs_mount
if romfs_mount.mount_rom():    # the image tests/romfs_mapped.py mapped outside the heap, as the ESP32's partition
    sys.path.insert(0, "/rom")  # first, as boot.py puts it
import asyncio
gc.collect()
before = gc.mem_alloc()
for name in %r:
    __import__(name)
gc.collect()
print("imports", gc.mem_alloc() - before)
"""


def romfs_imports():
    """(from the filesystem, from a ROMFS image) bytes of heap a ride's imports take: in place, bytecode and
    constants stay in the image (MicroPython's VfsRom; on an ESP32 a flash partition, mapped)."""
    import shutil
    from parkcard_flash.romfs import pack
    root = compiled_firmware()
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-heap-") as tmp:
        src = Path(tmp) / "rom"
        for name in RIDE_MODULES + ("terminal", "protocol", "terminal.cards", "terminal.roles"):
            rel = Path(*name.split("."))
            rel = rel / "__init__.mpy" if (root / rel).is_dir() else rel.with_suffix(".mpy")
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / rel, src / rel)
        image = pack(src, Path(tmp) / "rom.img").read_bytes()
        code = ["-X", "heapsize=400k", "-c", _IMPORTS_HEAP % (RIDE_MODULES,)]
        for command in ([str(MICROPYTHON)] + code,
                        [sys.executable, str(ROMFS_MAPPED), str(Path(tmp) / "rom.img")] + code):
            proc = subprocess.run(command, capture_output=True, text=True, env=micropython_env(), cwd=str(Path(tmp)))
            found = re.search(r"imports (\d+)", proc.stdout)
            figures.append(int(found.group(1)) if found else None)
    return figures[0], figures[1], len(image)


def whole_passes(heap_kb, install=INSTALL_FILES):
    """True when the whole-terminal scenario passes at heap_kb KB with this install."""
    with tempfile.TemporaryDirectory(prefix="bench-heap-") as root:
        park = Park(Path(root) / "park")
        try:
            run_whole(park, Path(root), "%dk" % heap_kb, install=install)
            return True
        except AssertionError:
            return False
        finally:
            park.close()


def smallest_whole(install, low, high, step, budget):
    """Bisect the whole terminal's smallest heap for one install and print it."""
    print("\nsmallest heap for the whole terminal installed as %s (bisected %d..%d KB to %d KB; the test runs at %s):"
          % ("files on the filesystem" if install == INSTALL_FILES else "a ROMFS image mapped outside the heap",
             low, high, step, budget))
    if not whole_passes(high, install):
        print("  fails even at %d KB" % high)
        return
    while high - low > step:
        mid = (low + high) // 2
        passed = whole_passes(mid, install)
        print("  %d KB: %s" % (mid, "passes" if passed else "fails"), flush=True)
        low, high = (low, mid) if passed else (mid, high)
    print("  passes at %d KB, fails at %d KB" % (high, low))


def sync_half():
    """The sync stack's heap figures at SYNC_HEAP after 200 records uploaded and acked (sync_check's `heap`)."""
    with tempfile.TemporaryDirectory(prefix="bench-heap-") as root:
        with Broker(Path(root) / "broker") as broker:
            hub = Hub(broker)
            term = SyncTerminal(Path(root), broker, fresh=True)
            try:
                term.expect("online")
                term.command("append 200")
                term.command("wait_depth 0")
                return term.heap()
            finally:
                term.kill()
                hub.stop()


def loop_stall(seconds):
    """The reader's figures with no card, interrupt-driven (reader_stall.py irq), and the loop alone's."""
    return [figures(run_micropython(MPY_SCRIPTS / "reader_stall.py", mode, seconds, timeout=seconds * 3 + 60))
            for mode in ("irq", "none")]


def qstr_pools():
    """The qstr pools' bytes after every module is imported (micropython.qstr_info)."""
    root = compiled_firmware()
    code = "import micropython\n" + "".join("import %s\n" % m for m in MODULES) + "micropython.qstr_info()"
    proc = subprocess.run([str(MICROPYTHON), "-X", "heapsize=400k", "-c", code], capture_output=True, text=True,
                          env=micropython_env(), cwd=str(root))
    found = re.search(r"n_pool=(\d+), n_qstr=(\d+), n_str_data_bytes=(\d+), n_total_bytes=(\d+)", proc.stdout)
    return tuple(int(g) for g in found.groups()) if found else None


def credit_taps_pass(heap):
    """(passed, figures) of tests/mpy/credit_tap_check.py with the longest credits list at heap."""
    with tempfile.TemporaryDirectory(prefix="bench-heap-") as root:
        with ChipServer([credit_card()]) as chip:
            proc = run_micropython(MPY_SCRIPTS / "credit_tap_check.py", root, chip.port, CREDITS_MAX, heap=heap,
                                   timeout=600, check=False)
    got = parse(proc.stdout)
    return got.get("first_ok") == "1" and proc.returncode == 0, got


def credit_tap(step_kb):
    """The tap that delivers pending credits: its heap above idle, and the smallest heap it runs in."""
    print("\nthe credit tap (tests/mpy/credit_tap_check.py, %d credits listed, a sale after the credit):" % CREDITS_MAX)
    _ok, got = credit_taps_pass("256k")
    print("  a credit tap's peak above idle %s, a plain tap's %s (budget 32 KB)"
          % (got["heap_credit_tap_above_idle"], got["heap_plain_tap_above_idle"]))
    low, high = 96, 128
    while high - low > step_kb:
        mid = (low + high) // 2
        passed, _got = credit_taps_pass("%dk" % mid)
        low, high = (low, mid) if passed else (mid, high)
    print("  passes at %d KB, fails at %d KB (the test runs at %s)" % (high, low, CREDIT_TAP_HEAP))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--low", type=int, default=100, help="KB known or expected to fail")
    parser.add_argument("--high", type=int, default=240, help="KB expected to pass")
    parser.add_argument("--romfs-low", type=int, default=100, help="KB known or expected to fail, ROMFS install")
    parser.add_argument("--romfs-high", type=int, default=160, help="KB expected to pass, ROMFS install")
    parser.add_argument("--step", type=int, default=4, help="bisect to this many KB")
    parser.add_argument("--stall-seconds", type=int, default=5, help="how long the reader polls an empty field")
    args = parser.parse_args()
    print("command:", shlex.join([".venv/bin/python", "bench/bench_heap.py"] + sys.argv[1:]))
    print("MicroPython unix port, 64-bit objects (an ESP32's 32-bit objects need about 2/3 of it)")

    with tempfile.TemporaryDirectory(prefix="bench-heap-") as root:
        park = Park(Path(root) / "park")
        try:
            lines, after_tap, after_config = run_whole(park, Path(root), "400k", MODULES)
        finally:
            park.close()
    print("\nwhere the heap goes (bytes; imports in main.py's order, qstr pool growth included):")
    total = 0
    for line in lines:
        if line.startswith("import "):
            _, name, size = line.split()
            total += int(size)
            print("  import %-22s %6s" % (name, size))
    print("  imports together          %6d" % total)
    on_fs, on_rom, image_bytes = romfs_imports()
    print("  a ride's imports (without ssl and credits): %s from the filesystem, %s from a ROMFS image of %d bytes "
          "mapped outside the heap (executed in place)" % (on_fs, on_rom, image_bytes))
    pools = qstr_pools()
    if pools:
        print("  qstr pools: %d pools, %d qstrs, %d bytes of names, %d bytes in all" % pools)
    start = [line for line in lines if line.startswith("start ")]
    print("  heap at main.main() (the test driver, asyncio and the imports above): %s" % start[0].split()[1])
    print("  after the first tap and its sync: %d in use, %d free, largest free block %d; live peak so far %d"
          % (after_tap["alloc"], after_tap["free"], after_tap["max_free"], after_tap["live_peak"]))
    print("  after the config change and a second tap: %d in use, %d free, largest free block %d; live peak %d"
          % (after_config["alloc"], after_config["free"], after_config["max_free"], after_config["live_peak"]))
    print("  interned names then: %d in %d pools, %d bytes (the next pool comes at a doubling: KBs at once)"
          % (after_config["qstrs"], after_config["qstr_pools"], after_config["qstr_bytes"]))
    with tempfile.TemporaryDirectory(prefix="bench-heap-") as root:
        park = Park(Path(root) / "park")
        try:
            rom_lines, rom_tap, _rom_config = run_whole(park, Path(root), "400k", MODULES, install=INSTALL_ROMFS)
        finally:
            park.close()
    rom_imports = sum(int(line.split()[2]) for line in rom_lines if line.startswith("import "))
    rom_start = [line for line in rom_lines if line.startswith("start ")][0].split()[1]
    print("  installed as a ROMFS image: imports together %d, heap at main.main() %s, after the first tap and its "
          "sync %d in use (live peak %d); interned names %d in %d pools, %d bytes"
          % (rom_imports, rom_start, rom_tap["alloc"], rom_tap["live_peak"], rom_tap["qstrs"],
             rom_tap["qstr_pools"], rom_tap["qstr_bytes"]))

    print("\nthe debit half (tests/mpy/debit_check.py, 100,000 blacklisted, 10,000 queued):")
    with tempfile.TemporaryDirectory(prefix="bench-heap-") as root:
        with chip_with_cards() as chip:
            proc = run_micropython(MPY_SCRIPTS / "debit_check.py", root, chip.port, 100000, 10000, 5, heap="256k",
                                   timeout=600)
    got = parse(proc.stdout)
    print("  heap idle %s, above start %s, a debit's peak above idle %s (budget 100k)"
          % (got["heap_idle"], got["heap_idle_above_start"], got["heap_peak_above_idle"]))
    sync = sync_half()
    print("the sync half (tests/mpy/sync_check.py at SYNC_HEAP = %s, 200 records uploaded and acked):" % SYNC_HEAP)
    print("  heap in use %d (above start %d), live peak %d, raw peak %d, free %d, MemoryErrors %d"
          % (sync["now"], sync["now"] - sync["start"], sync["live_peak"], sync["raw_peak"], sync["free"],
             sync["memory_errors"]))

    irq, alone = loop_stall(args.stall_seconds)
    print("\nthe tap loop with no card (tests/mpy/reader_stall.py irq, %d s): a poll holds the loop %.1f ms "
          "(p90 %.1f ms, max %.1f ms; target < %d ms); longest stall of the run %.1f ms, of the loop alone "
          "(this machine's noise) %.1f ms"
          % (args.stall_seconds, int(irq["poll_stall_median_us"]) / 1000, int(irq["poll_stall_p90_us"]) / 1000,
             int(irq["poll_stall_max_us"]) / 1000, TARGET_MS, int(irq["stall_max_us"]) / 1000,
             int(alone["stall_max_us"]) / 1000))
    credit_tap(args.step)

    smallest_whole(INSTALL_FILES, args.low, args.high, args.step, WHOLE_HEAP)
    smallest_whole(INSTALL_ROMFS, args.romfs_low, args.romfs_high, args.step, ROMFS_HEAP)


if __name__ == "__main__":
    main()
