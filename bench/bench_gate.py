"""What one gate passage costs: card commands, modelled air time (tap to decision, decision to relay), time, heap.

usage: .venv/bin/python bench/bench_gate.py [--taps N]

- Card commands of an entry, of a timed exit (which debits the wallet too) and of a timed exit torn before
  its debit then finished at another gate (SPEC.md §3.13), from the virtual MFRC522's
  log, and the air time those frames imply at 106 kbit/s by the MIFARE Classic datasheet timings
  (bench/bench_terminal.py's model, MF1S50yyX §9.2): up to the decision (select, two authentications,
  six reads) and the whole passage to the relay (the journal's flash write is not air time).
- Time per passage and the heap it needs under the MicroPython unix port (compiled firmware, littlefs on
  simulated flash, the chip served out of process): tests/mpy/gate_check.py does the work.
- The same passage under CPython, in process.
Figures only: nothing here passes or fails.
"""

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from bench_terminal import PROGRAM_TYP_US, air_time_us  # noqa: E402
from conftest import run_micropython  # noqa: E402
from test_firmware_micropython import parse  # noqa: E402
from test_gate import Rig, TIMED, _pulled_timed_exit, _timed_exit_commands, ticket_card  # noqa: E402
from test_gate_micropython import CHECK, chip_with_tickets  # noqa: E402

from protocol import ticket as t  # noqa: E402

GATE_HEAP = "140k"      # the gate role, wallet, journal and driver (no MQTT, no sync): see the report
ROOMY_HEAP = "256k"     # no collection inside a tap: everything it allocates is counted
_WRITE = 0xA0


def _until_first_write(log):
    """The log up to the first WRITE: what the gate reads before it has decided."""
    for i, entry in enumerate(log):
        if entry[0] == _WRITE:
            return log[:i]
    return log


def cpython_passages(workdir, taps):
    """Entry/exit cycles and one timed exit in process: their card logs and time."""
    rig = Rig(workdir / "entry", t.DIRECTION_BOTH)
    vc = ticket_card()
    rig.field.add(vc)
    rig.chip.log.clear()
    assert rig.gate.tap().ok
    entry_log = list(rig.chip.log)
    t0 = time.perf_counter()
    for _ in range(taps):
        rig.now += 60
        rig.tap(vc)
    us = (time.perf_counter() - t0) / taps * 1e6
    rig = Rig(workdir / "timed", t.DIRECTION_BOTH)
    timed = ticket_card(TIMED, t.TYPE_TIMED, from_day=0, to_day=0, balance=5000)
    rig.tap(timed)
    rig.now += 7200
    rig.field.remove(timed)
    rig.field.add(timed)
    rig.chip.log.clear()
    out = rig.gate.tap()
    assert out.ok and out.charge_cents == 1000
    return entry_log, list(rig.chip.log), finish_log(workdir), us


def finish_log(workdir):
    """The card log of a timed exit finished at gate 32 after gate 31 lost the card before its debit."""
    rig, vc, torn = _pulled_timed_exit(workdir / "torn", _timed_exit_commands(workdir).index(_WRITE) + 3)
    other = Rig(workdir / "other", t.DIRECTION_BOTH, terminal_id=32)
    other.now = rig.now + 20
    rig.field.remove(vc)
    other.field.add(vc)
    other.chip.log.clear()
    out = other.gate.tap()
    assert torn.reason == "uncertain" and out.ok and out.charge_cents == 1000
    return list(other.chip.log)


def micropython_passages(workdir, taps, heap):
    with chip_with_tickets() as chip:
        proc = run_micropython(CHECK, workdir, chip.port, taps, heap=heap, timeout=600, check=False)
    return parse(proc.stdout) if proc.returncode == 0 else {"failed": proc.stderr.strip().splitlines()[-1]}


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=20, help="passages to average over (default 20)")
    args = parser.parse_args(argv[1:])
    print("$ " + shlex.join([os.path.relpath(sys.executable)] + argv))
    with tempfile.TemporaryDirectory(prefix="parkcard-bench-gate-") as tmp:
        entry_log, timed_log, finish, cpy_us = cpython_passages(Path(tmp), args.taps)
        (Path(tmp) / "mpy").mkdir()
        mpy = micropython_passages(Path(tmp) / "mpy", args.taps, GATE_HEAP)
        (Path(tmp) / "roomy").mkdir()
        roomy = micropython_passages(Path(tmp) / "roomy", max(args.taps // 4, 2), ROOMY_HEAP)
    print()
    print("## card commands (virtual MFRC522 log)")
    logs = (("entry", entry_log), ("timed exit", timed_log), ("finish", finish))
    for name, log in logs:
        print("%-10s %2d commands: %s" % (name, len(log), " ".join("%02X/%d/%d" % e for e in log)))
    print()
    print("## modelled air time at 106 kbit/s (MF1S50yyX timings, EEPROM programming %.1f ms)"
          % (PROGRAM_TYP_US / 1e3))
    for name, log in logs:
        decided_us = air_time_us(_until_first_write(log), PROGRAM_TYP_US)
        relay_us = air_time_us(log, PROGRAM_TYP_US)
        print("%-10s tap to decision %.1f ms, decision to relay %.1f ms (target < 150 ms), tap to relay %.1f ms" % (
            name, decided_us / 1e3, (relay_us - decided_us) / 1e3, relay_us / 1e3))
    print()
    print("## MicroPython unix port, -X heapsize=%s (chip served over loopback)" % GATE_HEAP)
    if "failed" in mpy:
        print("FAILED                   " + mpy["failed"])
    else:
        print("passages_ok              %s of %d" % (mpy["passages_ok"], args.taps))
        print("time per passage         %.2f ms (%s card commands)" % (int(mpy["us_per_passage"]) / 1e3,
                                                                     mpy["card_commands_per_passage"]))
        print("timed exit               %.2f ms (%s card commands), charge %s cents" % (
            int(mpy["timed_exit_us"]) / 1e3, mpy["timed_exit_card_commands"], mpy["charge"]))
        print("torn exit finished       %.2f ms (%s card commands), charge %s cents, after a reboot" % (
            int(mpy["finish_us"]) / 1e3, mpy["finish_card_commands"], mpy["finish_charge"]))
        print("heap free after          %s bytes" % mpy["heap_free"])
    if "failed" not in roomy:
        print("passage needs (roomy)    %s bytes, timed exit %s bytes, torn exit finished %s bytes, garbage "
              "included (-X heapsize=%s; target < %d above idle)" % (
                  roomy["heap_peak_per_passage"], roomy["timed_exit_heap"], roomy["finish_heap"], ROOMY_HEAP,
                  32 * 1024))
        print("idle after set-up        %s bytes above the interpreter's start (modules, littlefs, journal, blacklist)"
              % roomy["heap_idle_above_start"])
    print()
    print("## CPython %d.%d, in process" % sys.version_info[:2])
    print("time per passage         %.2f ms" % (cpy_us / 1e3))


if __name__ == "__main__":
    main(sys.argv)
