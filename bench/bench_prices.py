"""What the terminal's price list costs: install time, lookup time and heap above idle, under the
MicroPython unix port with the ESP32's heap.

usage: .venv/bin/python bench/bench_prices.py [--items N]

Then: the heap the booth role takes when imported, and a sale by item from the N-item list with a
gold discount (tests/mpy/booth_sale_check.py: card commands, time, price lookup, heap above idle), and
the heap of a sale under a consumption rule's offline limit (SPEC.md §3.6 rule 16: the journal scanned).

tests/mpy/prices_check.py does the work (compiled firmware, -X heapsize=100k, littlefs on simulated
flash): it installs an N-item list from its T_PRICE_LIST chunks, looks up every listed code and as many
unlisted ones, replaces the list with a second version and reopens it, then takes discount rules and
checks every line rate against protocol/pricing.py. Figures only: nothing here passes
or fails; the unix port on a PC is faster than an ESP32, and its flash is a host file.
"""

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from bench_heap import MODULES  # noqa: E402
from test_firmware_micropython import NOW, PARK, parse  # noqa: E402

from protocol import card  # noqa: E402
from sim.cards import issued_card  # noqa: E402
from sim.chip_server import ChipServer  # noqa: E402
from conftest import (MICROPYTHON, MICROPYTHON_HEAP, MPY_SCRIPTS, compiled_firmware, micropython_env,  # noqa: E402
                      mpy_lines, run_micropython)

FIGURES = (("heap_import", "heap the modules take once imported (bytes)"),
           ("install_ms", "install the list from its chunks (ms)"),
           ("heap_after_install", "heap held after installing, above idle (bytes)"),
           ("lookup_us", "lookup of a listed code, mean (us)"),
           ("miss_us", "lookup of an unlisted code, mean (us)"),
           ("heap_lookup", "heap one lookup allocates, garbage included (bytes)"),
           ("heap_growth", "heap held after replacing and reopening, above idle (bytes)"),
           ("rules_heap", "heap the discount rules add to their 1.5 KB body, 252 overrides (bytes)"))


def role_import_heap(module="terminal.roles.pos"):
    """Heap a role module takes when imported after the modules main.py loads (bench_heap.MODULES), in bytes."""
    code = ("import gc\n" + "".join("import %s\n" % m for m in MODULES) + "gc.collect()\nbefore = gc.mem_alloc()\n"
            "import %s\ngc.collect()\nprint('role_heap', gc.mem_alloc() - before)\n" % module)
    proc = subprocess.run([str(MICROPYTHON), "-X", "heapsize=400k", "-c", code], capture_output=True, text=True,
                          env=micropython_env(), cwd=str(compiled_firmware()))
    return mpy_lines(proc).get("role_heap", "? (%s)" % proc.stderr.strip()[-200:])


def main():
    """Run the MicroPython half once and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=2000)
    args = ap.parse_args()
    print("command:", shlex.join([sys.executable, "bench/bench_prices.py", "--items", str(args.items)]))
    print("micropython: -X heapsize=%s tests/mpy/prices_check.py %d" % (MICROPYTHON_HEAP, args.items))
    with tempfile.TemporaryDirectory() as tmp:
        out = mpy_lines(run_micropython(MPY_SCRIPTS / "prices_check.py", args.items, cwd=tmp, timeout=600))
    checks = ("installed", "lookups", "old_serves", "out_of_order", "replaced", "reopen", "rules")
    print("items %d, entries %d bytes on flash, checks %s" % (
        args.items, 32 * args.items, "ok" if all(out.get(c) == "True" for c in checks) else "FAILED"))
    for key, what in FIGURES:
        print("%-60s %s" % (what, out.get(key, "?")))
    print("%-60s %s" % ("the booth role's import after main.py's modules (bytes)", role_import_heap()))
    sale_by_item(args.items)


def sale_by_item(items, sales=20):
    """A gold card buys 2 of an item from an items-long list, discounts applied (tests/mpy/booth_sale_check.py)."""
    gold = issued_card(PARK, b"\x04\x11\x22\x33\x44\x55\x66", card.CardInfo(43, tier=card.TIER_GOLD, perms=0xFFFF),
                       500000, NOW)
    print("\nsale by item (micropython -X heapsize=256k tests/mpy/booth_sale_check.py WORKDIR PORT %d %d):"
          % (items, sales))
    with tempfile.TemporaryDirectory() as tmp, ChipServer([gold]) as chip:
        got = parse(run_micropython(MPY_SCRIPTS / "booth_sale_check.py", tmp, chip.port, items, sales, heap="256k",
                                    timeout=600).stdout)
    for key, what in (("sales_ok", "sales approved at the price pricing.py gives"),
                      ("card_commands_per_sale", "card commands per sale"),
                      ("us_per_sale", "lookup, pricing and debit, mean (us)"),
                      ("us_per_lookup", "price lookup, mean (us)"),
                      ("heap_peak_above_idle", "heap a sale needs above idle, garbage included (bytes)"),
                      ("offline_scan_heap_unacked", "a sale under an offline limit, its unacked sales scanned (bytes)"),
                      ("offline_scan_heap_unacked_next", "... the next tap, reading only the records since (bytes)"),
                      ("offline_scan_heap_acked", "... and with every sale acknowledged (bytes)")):
        print("%-60s %s" % (what, got.get(key, "?")))


if __name__ == "__main__":
    main()
