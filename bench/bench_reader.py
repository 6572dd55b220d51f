"""How long the reader holds the terminal's event loop with no card in the field.

usage: .venv/bin/python bench/bench_reader.py [--seconds N]

Runs tests/mpy/reader_stall.py under the MicroPython unix port (-X heapsize=100k, compiled
firmware) once per mode: the real RC522 driver polls an empty field on the virtual MFRC522
(in process, its timer in real time) in the terminal's loop shape, while a ticker task asks
for 1 ms sleeps and measures how late each wakes.

- none: no reader, the loop alone: this machine's floor (other processes share its cores).
- irq: the driver awaits the chip's IRQ line (poll_card with a pin, as on the ESP32's GPIO 34).
- poll: no IRQ pin: poll_card reads ComIrqReg between yields.
- sync: detect() as authorisation and the desk's card writer call it: the REQA's 1 ms wait
  holds the loop. (Before the per-command timer this was the chip's 25 ms for every poll.)

"poll stall" is the lateness of the ticks a poll ran in (median, p90): what the reader costs
the loop. "longest stall" is the worst tick of the run, machine noise included. The virtual
chip runs in the same interpreter, so each SPI transaction costs Python time an ESP32 spends
in its SPI peripheral: the figures are upper bounds for the driver's own work.
Figures only: nothing here passes or fails.
"""

import argparse
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import MICROPYTHON, MICROPYTHON_HEAP, MPY_SCRIPTS, run_micropython  # noqa: E402

MODES = ("none", "irq", "poll", "sync")
TARGET_MS = 5


def figures(proc):
    """key=value pairs from the script's output."""
    out = {}
    for line in proc.stdout.split():
        if "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
    return out


def main():
    """Run every mode and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="how long each mode polls (default 10)")
    args = parser.parse_args()
    print("$ " + shlex.join([sys.executable, *sys.argv]))
    print("each mode: %s -X heapsize=%s -m reader_stall MODE %d" % (MICROPYTHON, MICROPYTHON_HEAP, args.seconds))
    print()
    print("%-5s %6s %9s %15s %9s %9s %14s %11s" % ("mode", "polls", "SPI/poll", "poll stall p50", "p90", "max",
                                                   "longest stall", "p99 of all"))
    got = {}
    for mode in MODES:
        proc = run_micropython(MPY_SCRIPTS / "reader_stall.py", mode, args.seconds,
                               timeout=args.seconds * 3 + 60)
        f = got[mode] = figures(proc)
        print("%-5s %6s %9s %12.1f ms %6.1f ms %6.1f ms %11.1f ms %8.1f ms" % (
            mode, f["polls"], f["spi_per_poll"], int(f["poll_stall_median_us"]) / 1000,
            int(f["poll_stall_p90_us"]) / 1000, int(f["poll_stall_max_us"]) / 1000, int(f["stall_max_us"]) / 1000,
            int(f["stall_p99_us"]) / 1000))
    irq = got["irq"]
    print()
    print("no card, interrupt-driven: a poll costs the loop %.1f ms (p90 %.1f ms, max %.1f ms) against %.1f ms for "
          "the loop alone; longest stall of the run %.1f ms (the loop alone: %.1f ms); target < %d ms" % (
              int(irq["poll_stall_median_us"]) / 1000, int(irq["poll_stall_p90_us"]) / 1000,
              int(irq["poll_stall_max_us"]) / 1000, int(got["none"]["poll_stall_median_us"]) / 1000,
              int(irq["stall_max_us"]) / 1000, int(got["none"]["stall_max_us"]) / 1000, TARGET_MS))


if __name__ == "__main__":
    main()
