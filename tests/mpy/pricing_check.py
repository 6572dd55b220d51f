"""Check protocol/pricing.py against the reference table protocol/vectors/pricing.jsonl; runs on
MicroPython and CPython.

usage: <interpreter> tests/mpy/pricing_check.py protocol/vectors/pricing.jsonl
Each case's rules go through the T_DISCOUNTS codec first, as a terminal receives them. Prints
"pricing vectors ok <n> cases <m>" at the end, then on MicroPython "heap_max <bytes>", the most the
heap held between cases.
"""

import gc
import json
import sys

from protocol import hub_price_list, price_list, pricing
from vector_checks import checks, expect


def rules_of(case):
    """The case's rules, encoded as a T_DISCOUNTS body and parsed back."""
    sale = [0] * pricing.TIERS_MAX
    total = [0] * pricing.TIERS_MAX
    for tier, bp in case["sale"]:
        sale[tier] = bp
    for tier, bp in case["total"]:
        total[tier] = bp
    rules = pricing.Discounts(9, sale, total)
    for tier, kind, code, bp in case["ovr"]:
        rules.set_override(tier, kind, code, bp)
    merchant_id, back = price_list.parse_discounts(hub_price_list.discounts_body(3, rules))
    expect(merchant_id == 3 and back.version == 9, "discounts codec " + case["n"])
    return back


def main(path):
    """Check every case of the file at path."""
    n = 0
    heap_max = 0
    mem_alloc = getattr(gc, "mem_alloc", None)
    with open(path) as f:
        total = json.loads(f.readline())["cases"]
        for line in f:
            case = json.loads(line)
            rules = rules_of(case)
            lines = [tuple(x) for x in case["lines"]]
            try:
                got = pricing.price_basket(rules, case["tier"], lines, case["free"])
                got = [got.gross_cents, got.line_discounts, got.total_discount_cents, got.pay_cents]
            except pricing.Refused as e:
                got = e.reason
            expect(got == case.get("want", case.get("refused")), "%s: got %r" % (case["n"], got))
            n += 1
            if mem_alloc:
                heap_max = max(heap_max, mem_alloc())
            case = rules = line = None
            gc.collect()
    expect(n == total, "every case read")
    print("pricing vectors ok %d cases %d" % (checks[0], n))
    if mem_alloc:
        print("heap_max", heap_max)


main(sys.argv[1])
