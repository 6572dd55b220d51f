"""What one debit costs a terminal: card commands, SPI transactions, card air time, time and heap.

usage: .venv/bin/python bench/bench_terminal.py [--blacklist N] [--queued N] [--debits N]

- Card commands and SPI transactions per debit, from the virtual MFRC522's counters
  (sim/mfrc522.py), and the air time those frames imply at 106 kbit/s by the MIFARE
  Classic datasheet (MF1S50yyX) timings.
- Time per debit and peak heap above idle under the MicroPython unix port
  (-X heapsize=100k, compiled firmware, littlefs on simulated flash, the chip served
  out of process), with a big blacklist and a backlog of queued records:
  tests/mpy/debit_check.py does the work and prints key=value lines.
- The same debit under CPython, in process, for comparison.
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

from conftest import MICROPYTHON_HEAP, MPY_SCRIPTS, run_micropython  # noqa: E402
from test_firmware_micropython import chip_with_cards, parse  # noqa: E402
from test_wallet import Rig, new_card  # noqa: E402

from protocol.record import RECORD_SIZE  # noqa: E402
from terminal import journal as jr  # noqa: E402
from terminal.blacklist import Blacklist  # noqa: E402
from terminal.journal import Journal  # noqa: E402

# -- air time, ISO/IEC 14443-2/-3 Type A at 106 kbit/s as MF1S50yyX §9.2 quotes it ----------------

FC_HZ = 13.56e6
BIT_US = 128 / FC_HZ * 1e6          # one bit at 106 kbit/s: 128/fc = 9.44 us
BYTE_BITS = 9                       # 8 data bits + odd parity (ISO/IEC 14443-3 §6.2.3.2): 84.96 us a byte
PCD_FRAME_BITS = 1 + 2              # start of communication + end (logic 0 + 1 bit unmodulated), §9.2
PICC_FRAME_BITS = 1 + 1             # start of communication + end (1 bit without subcarrier), §9.2
# PCD->PICC frame delay, MF1S50yyX §9.2 Fig. 11: FDT = (n*128 + 84)/fc with n = 9 (ISO/IEC 14443-3
# §6.2.1.1); 91.2 us. The card answers no sooner (TACK min 71 us in Tables 20-26 excludes the PCD's end).
FDT_PCD_PICC_US = (9 * 128 + 84) / FC_HZ * 1e6
# PICC->PCD: "the frame delay time from PICC to PCD is at least 87 us" (MF1S50yyX §9.2).
FDT_PICC_PCD_US = 87.0
# HLTA is acknowledged by silence: the PCD waits 1 ms (ISO/IEC 14443-3 §6.4.3).
HLTA_SILENCE_US = 1000.0
# WRITE part 2 (16 data bytes + CRC) is answered by a 4-bit ACK once the EEPROM is programmed.
# MF1S50yyX Table 22 gives only the bound: TimeOut 10 ms (part 1: 5 ms). The datasheet's typical
# transaction times (§8.2, Fig. 4: ~2.5 ms read block, ~5.5 ms write block) put programming near
# 2.5 ms; both are printed.
PROGRAM_TYP_US = 2500.0
PROGRAM_MAX_US = 10000.0
# MF1S50yyX Fig. 4 "typical transaction time", reader overhead included: select ~2.5 ms (+~1 ms for
# a 7-byte UID), authentication ~2 ms, read block ~2.5 ms, write block ~5.5 ms.
FIG4_SELECT_MS, FIG4_SELECT_7B_MS, FIG4_AUTH_MS, FIG4_READ_MS, FIG4_WRITE_MS = 2.5, 1.0, 2.0, 2.5, 5.5
# NXP's product claim for MIFARE Classic 1K: "typical ticketing transaction: < 100 ms (including
# backup management)" (MF1S50yyX §2-3, general description and features).
NXP_TRANSACTION_MS = 100
# The floor commonly quoted for a minimal debit in practice (select, authenticate, read, write, with
# reader overhead); a rule of thumb for comparison, not a datasheet figure.
FLOOR_MS = 25

_REQA, _WUPA, _AUTH_A, _AUTH_B, _READ, _WRITE, _HLTA = 0x26, 0x52, 0x60, 0x61, 0x30, 0xA0, 0x50


def _pcd_us(nbytes, short=False):
    return ((7 if short else nbytes * BYTE_BITS) + PCD_FRAME_BITS) * BIT_US


def _picc_us(nbytes, ack=False):
    return ((4 if ack else nbytes * BYTE_BITS) + PICC_FRAME_BITS) * BIT_US


def air_time_us(log, program_us):
    """Air time of one debit's card commands: frames, frame delays, programming (MF1S50yyX §9.2, §12)."""
    total = 0.0
    after_write_cmd = False
    for first, tx, rx in log:
        if first in (_AUTH_A, _AUTH_B) and not after_write_cmd:
            # Three-pass authentication (§8.2.4): AUTH+addr+CRC (4) -> nT (4); nR aR (8) -> aT (4).
            total += _pcd_us(4) + FDT_PCD_PICC_US + _picc_us(4) + FDT_PICC_PCD_US
            total += _pcd_us(8) + FDT_PCD_PICC_US + _picc_us(4) + FDT_PICC_PCD_US
            continue
        short = tx == 1 and first in (_REQA, _WUPA)
        total += _pcd_us(tx, short)
        if first == _HLTA and rx == 0 and not after_write_cmd:
            total += HLTA_SILENCE_US
        elif rx:
            ack = rx == 1 and tx != 1
            total += FDT_PCD_PICC_US + _picc_us(rx, ack) + FDT_PICC_PCD_US
            if after_write_cmd:
                total += program_us     # write part 2: the ACK follows the EEPROM programming
        after_write_cmd = first == _WRITE and tx == 4 and not after_write_cmd
    return total


def fig4_estimate_ms(log, uid_len):
    """The same debit by MF1S50yyX Fig. 4's typical per-operation times."""
    firsts = [entry[0] for entry in log]
    select = FIG4_SELECT_MS + (FIG4_SELECT_7B_MS if uid_len == 7 else 0)
    auths = firsts.count(_AUTH_A) + firsts.count(_AUTH_B)
    return select + auths * FIG4_AUTH_MS + firsts.count(_READ) * FIG4_READ_MS + firsts.count(_WRITE) * FIG4_WRITE_MS


# -- CPython, in process -------------------------------------------------------------------------------


def load_blacklist(blacklist, n):
    """The same snapshot debit_check.py builds: every other number from 1000000."""
    blacklist.begin_snapshot(1)
    numbers = [1000000 + 2 * i for i in range(n)]
    for i in range(0, n, 256):
        blacklist.add_snapshot_chunk(numbers[i:i + 256])
    blacklist.finish_snapshot()


def cpython_debits(workdir, blacklist_n, queued_n, debits):
    rig = Rig(workdir / "rig")
    rig.wallet.journal = rig.journal = Journal(str(workdir / "journal"), RECORD_SIZE, 16384, 64)
    rig.wallet.blacklist = rig.blacklist = Blacklist(str(workdir / "blacklist"))
    load_blacklist(rig.blacklist, blacklist_n)
    filler = bytes(RECORD_SIZE)
    for seq in range(1, queued_n + 1):
        rig.journal.append(seq, rig.now, filler)
        rig.journal.mark(seq, jr.COMMITTED)
    vc = new_card(balance=500000)
    chip = rig.chip
    commands = transactions = 0
    elapsed_s = 0.0
    log = None
    for _ in range(debits):
        rig.tap(vc)
        chip.log.clear()
        c0, s0 = chip.card_commands, chip.spi_transactions
        t0 = time.perf_counter()
        ok = rig.wallet.debit(100).ok
        elapsed_s += time.perf_counter() - t0
        if not ok:
            raise SystemExit("CPython debit refused")
        commands += chip.card_commands - c0
        transactions += chip.spi_transactions - s0
        log = list(chip.log)
    t0 = time.perf_counter()
    for i in range(1000):
        rig.blacklist.contains(1000000 + i)
    lookup_us = (time.perf_counter() - t0) * 1e3
    return dict(log=log, uid_len=len(vc.uid), card_commands=commands // debits,
                spi_transactions=transactions // debits, us_per_debit=elapsed_s * 1e6 / debits,
                us_per_blacklist_lookup=lookup_us)


# -- MicroPython unix port -----------------------------------------------------------------------------


ROOMY_HEAP = "256k"


def micropython_debits(workdir, blacklist_n, queued_n, debits, heap=MICROPYTHON_HEAP):
    """debit_check.py's key=value figures, or {"failed": its last stderr line}."""
    with chip_with_cards() as chip:
        proc = run_micropython(MPY_SCRIPTS / "debit_check.py", workdir, chip.port, blacklist_n, queued_n, debits,
                               heap=heap, timeout=1800, check=False)
    if proc.returncode != 0:
        return {"failed": (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]}
    return parse(proc.stdout)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blacklist", type=int, default=100000, help="blacklist entries (default 100000)")
    parser.add_argument("--queued", type=int, default=10000, help="queued records before the debits (default 10000)")
    parser.add_argument("--debits", type=int, default=20, help="debits to average over (default 20)")
    args = parser.parse_args(argv[1:])

    print("$ " + shlex.join([os.path.relpath(sys.executable)] + argv))
    print("blacklist=%d queued=%d debits=%d" % (args.blacklist, args.queued, args.debits))

    with tempfile.TemporaryDirectory(prefix="parkcard-bench-") as tmp:
        cpy = cpython_debits(Path(tmp) / "cpython", args.blacklist, args.queued, args.debits)
        (Path(tmp) / "mpy").mkdir()
        mpy = micropython_debits(Path(tmp) / "mpy", args.blacklist, args.queued, args.debits)
        # With room to spare no collection runs inside a debit, so the allocation it
        # makes, garbage included, is measured whole: the heap a debit needs above idle.
        (Path(tmp) / "mpy-roomy").mkdir()
        roomy = micropython_debits(Path(tmp) / "mpy-roomy", args.blacklist, args.queued, args.debits,
                                   heap=ROOMY_HEAP)

    log = cpy["log"]
    print()
    print("## card and bus, per debit (virtual MFRC522 counters)")
    print("card_commands            %d (MicroPython run: %s)" % (cpy["card_commands"],
                                                                 mpy.get("card_commands_per_debit", "-")))
    print("spi_transactions         %d (MicroPython run: %s)" % (cpy["spi_transactions"],
                                                                 mpy.get("spi_transactions_per_debit", "-")))
    print("frames (cmd, tx, rx)     " + " ".join("%02X/%d/%d" % entry for entry in log))
    print()
    print("## card air time at 106 kbit/s (MF1S50yyX timings)")
    print("frames + FDT, EEPROM typ %.1f ms  (programming %.1f ms)" % (air_time_us(log, PROGRAM_TYP_US) / 1e3,
                                                                      PROGRAM_TYP_US / 1e3))
    print("frames + FDT, EEPROM max %.1f ms  (programming %.1f ms, Table 22 time-out)" % (
        air_time_us(log, PROGRAM_MAX_US) / 1e3, PROGRAM_MAX_US / 1e3))
    print("datasheet Fig. 4 typical %.1f ms  (select, auth, reads, write incl. reader overhead)" % (
        fig4_estimate_ms(log, cpy["uid_len"])))
    print("minimal debit floor      ~%d ms (rule of thumb)" % FLOOR_MS)
    print("NXP whole transaction    <%d ms" % NXP_TRANSACTION_MS)
    print()
    print("## MicroPython unix port, -X heapsize=100k (chip served over loopback)")
    if "failed" in mpy:
        print("FAILED                   " + mpy["failed"])
    else:
        print_micropython(mpy, args)
    if "failed" not in roomy:
        print("debit needs (roomy heap) %s bytes above idle, garbage included (-X heapsize=%s; target < %d)" % (
            roomy["heap_peak_above_idle"], ROOMY_HEAP, 32 * 1024))
    print()
    print("## CPython %d.%d, in process" % sys.version_info[:2])
    print("time per debit           %.2f ms" % (cpy["us_per_debit"] / 1e3))
    print("blacklist lookup         %.1f us at %d entries" % (cpy["us_per_blacklist_lookup"], args.blacklist))


def print_micropython(mpy, args):
    print("debits_ok                %s of %d" % (mpy["debits_ok"], args.debits))
    print("time per debit           %.2f ms" % (int(mpy["us_per_debit"]) / 1e3))
    print("heap peak above idle     %s bytes (collections run inside the debit at this heap size)" % (
        mpy["heap_peak_above_idle"]))
    print("heap idle                %s bytes (%s above start)" % (mpy["heap_idle"], mpy["heap_idle_above_start"]))
    print("heap free after          %s bytes" % mpy["heap_free"])
    print("blacklist lookup         %s us at %d entries" % (mpy["us_per_blacklist_lookup"], args.blacklist))
    print("blacklist open           %.1f ms at %d entries (reads the file once for its crc32, at boot and after "
          "each new list)" % (int(mpy["us_blacklist_open"]) / 1e3, args.blacklist))


if __name__ == "__main__":
    main(sys.argv)
