"""Regenerate pricing.jsonl, the reference table of the discount rules (CPython; run from the repo root).

    .venv/bin/python protocol/vectors/generate_pricing.py

The expected cents come from this file's own reference, exact fractions (fractions.Fraction) and
the rules as SPEC.md §7.3 words them, not from protocol/pricing.py, which the table then checks on
both interpreters (tests/mpy/pricing_check.py). One JSON object a line, so a terminal's heap holds
one case at a time. Every tier x item override x total discount x rounding case is one line: where the
line discount falls between two cents, and (for the rates that can) where the total discount does.
"""

import json
import math
import os
from fractions import Fraction

HERE = os.path.dirname(os.path.abspath(__file__))
BALANCE_MAX_CENTS = (1 << 23) - 1
TIERS = (0, 1, 2, 15)
SALE_BP = {0: 0, 1: 500, 2: 1250, 15: 3333}
TOTAL_BP = (0, 250, 3333, 10000)
ITEM, CATEGORY, OTHER_ITEM, OTHER_CATEGORY = 42, 7, 43, 8
ITEM_BP, CATEGORY_BP, DECOY_BP = 1500, 2000, 9000
OVERRIDES = ("none", "category", "item", "item_and_category", "item_zero")
# Where the line's discount falls between two cents: remainder of quantity x price x rate over 10,000.
ROUNDING = (("exact", lambda rem: rem == 0), ("below_half", lambda rem: 0 < rem < 5000),
            ("half", lambda rem: rem == 5000), ("above_half", lambda rem: 5000 < rem < 9000),
            ("high", lambda rem: rem >= 9000))


def reference(case):
    """The expected [gross, line discounts, total discount, pay] or the refusal's reason."""
    lines, tier = case["lines"], case["tier"]
    if not 0 < len(lines) <= 8:
        return "bad_basket"
    if not 0 <= tier < 16:
        return "bad_basket"
    sale = dict(case["sale"])
    total_bp = dict(case["total"]).get(tier, 0)
    overrides = {(t, kind, code): bp for t, kind, code, bp in case["ovr"]}
    gross, net, offs = 0, 0, []
    for item, category, qty, price in lines:
        if item == 0 and not case["free"]:
            return "free_amount"
        if not (0 < qty <= 99 and 0 < price <= BALANCE_MAX_CENTS and (item != 0 or qty == 1)):
            return "bad_line"
        gross += qty * price
        if gross > BALANCE_MAX_CENTS:
            return "over_max"
        rate = sale.get(tier, 0)
        if item != 0:
            rate = overrides.get((tier, 0, item), overrides.get((tier, 1, category), rate))
        off = math.floor(Fraction(qty * price * rate, 10000))
        offs.append(off)
        net += qty * price - off
    total = math.floor(Fraction(net * total_bp, 10000))
    return [gross, offs, total, gross - sum(offs) - total]


def rules_for(tier, override, total_bp):
    """The rules of one case: every tier's sale rate, a decoy on the next tier that must not apply."""
    decoy = TIERS[(TIERS.index(tier) + 1) % len(TIERS)]
    ovr = [[decoy, 0, ITEM, DECOY_BP], [decoy, 1, CATEGORY, DECOY_BP], [tier, 0, OTHER_ITEM, DECOY_BP],
           [tier, 1, OTHER_CATEGORY, DECOY_BP]]
    if override in ("category", "item_and_category"):
        ovr.append([tier, 1, CATEGORY, CATEGORY_BP])
    if override in ("item", "item_and_category"):
        ovr.append([tier, 0, ITEM, ITEM_BP])
    if override == "item_zero":
        ovr.append([tier, 0, ITEM, 0])
    rate = {"none": SALE_BP[tier], "category": CATEGORY_BP, "item": ITEM_BP, "item_and_category": ITEM_BP,
            "item_zero": 0}[override]
    return {"sale": [[t, SALE_BP[t]] for t in TIERS], "total": [[tier, total_bp], [decoy, 7000]], "ovr": ovr}, rate


def cases():
    """Every case of the table, in a fixed order."""
    for tier in TIERS:
        for override in OVERRIDES:
            for total_bp in TOTAL_BP:
                rules, rate = rules_for(tier, override, total_bp)
                for name, fits in ROUNDING:
                    for qty in (1, 3):
                        price = next((p for p in range(1001, 21001) if fits(qty * p * rate % 10000)), None)
                        if price is None:
                            continue    # rate 0 or 100 %: every discount is whole cents
                        yield dict(rules, n="t%d %s total%d %s x%d" % (tier, override, total_bp, name, qty),
                                   tier=tier, free=False, lines=[[ITEM, CATEGORY, qty, price]])
            for total_bp in TOTAL_BP[1:3]:     # the rates whose total discount can fall between two cents
                rules, rate = rules_for(tier, override, total_bp)
                for name, fits in ROUNDING:
                    for qty in (1, 3):
                        price = next((p for p in range(1001, 21001)
                                      if fits((qty * p - qty * p * rate // 10000) * total_bp % 10000)), None)
                        yield dict(rules, n="t%d %s total%d total_%s x%d" % (tier, override, total_bp, name, qty),
                                   tier=tier, free=False, lines=[[ITEM, CATEGORY, qty, price]])
            total_bp = 3333
            rules, _ = rules_for(tier, override, total_bp)
            # A basket: the override line, a line of its category, a plain line, a free amount line.
            yield dict(rules, n="t%d %s basket" % (tier, override), tier=tier, free=True,
                       lines=[[ITEM, CATEGORY, 2, 1999], [ITEM + 100, CATEGORY, 1, 333], [ITEM + 200, 3, 5, 77],
                              [0, 0, 1, 1234]])
        rules, _ = rules_for(tier, "item", 3333)
        yield dict(rules, n="t%d the card maximum" % tier, tier=tier, free=False,
                   lines=[[ITEM, CATEGORY, 1, BALANCE_MAX_CENTS]])
        for n, free, lines in (("no lines", False, []), ("nine lines", False, [[1, 0, 1, 1]] * 9),
                               ("free amount not allowed", False, [[1, 0, 1, 100], [0, 0, 1, 100]]),
                               ("quantity 0", False, [[1, 0, 0, 100]]), ("quantity 100", False, [[1, 0, 100, 1]]),
                               ("free amount twice", True, [[0, 0, 2, 100]]), ("price 0", False, [[1, 0, 1, 0]]),
                               ("over the card maximum", False, [[1, 0, 99, 84000], [2, 0, 1, 200000]])):
            yield dict(rules, n="t%d %s" % (tier, n), tier=tier, free=free, lines=lines)


def main():
    """Write pricing.jsonl."""
    rows = []
    for case in cases():
        want = reference(case)
        case["want" if isinstance(want, list) else "refused"] = want
        rows.append(json.dumps(case, sort_keys=True, separators=(",", ":")))
    with open(os.path.join(HERE, "pricing.jsonl"), "w") as f:
        f.write(json.dumps({"cases": len(rows), "spec": "SPEC.md 7.3"}) + "\n")
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
