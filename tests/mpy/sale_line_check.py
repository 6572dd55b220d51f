"""Check sale line records (SPEC.md §4.11) against protocol/vectors/sale_lines.json; runs on MicroPython and CPython.

usage: <interpreter> tests/mpy/sale_line_check.py protocol/vectors/sale_lines.json
Decodes the basket's records, pairs each line with its debit and re-prices the basket from the list and
rules the lines name, as the hub does. Prints "sale line vectors ok <n>" at the end.
"""

import json
import sys

from binascii import unhexlify

from protocol import pricing
from protocol.record import KIND_DEBIT, KIND_SALE_LINE, Record
from protocol.sale_line import line_fields, sale_seq_of
from vector_checks import checks, expect, round_tripped_records


def main(path):
    """Check every case of the file at path."""
    with open(path) as f:
        v = json.load(f)
    mac, recs = round_tripped_records(v["terminal_key"], v["records"])
    sale = recs[-1]
    lines = recs[:-1]
    expect(sale.kind == KIND_DEBIT and all(r.kind == KIND_SALE_LINE == v["kind"] for r in lines), "kinds")
    r = v["rules"]
    rules = pricing.Discounts(v["rules_version"], r["sale_bp"], r["total_bp"])
    for tier, kind, code, bp in r["overrides"]:
        rules.set_override(tier, kind, code, bp)
    basket = []
    for index in range(len(lines)):
        line = lines[index]
        tier, at, count, list_version, rules_version = line_fields(line)
        expect((tier, at, count, list_version, rules_version) == (
            v["tier"], index, len(lines), v["list_version"], v["rules_version"]), "line %d fields" % index)
        expect(sale_seq_of(line) == sale.seq and line.card_counter == sale.card_counter
               and line.card_no == sale.card_no and line.time_s == sale.time_s, "line %d pairs with its sale" % index)
        code, quantity = v["basket"][index]
        category, unit = v["items"][str(code)]
        expect((line.item, line.quantity, line.amount_cents) == (code, quantity, quantity * unit), "line %d" % index)
        basket.append((line.item, category, line.quantity, line.amount_cents // line.quantity))
    priced = pricing.price_basket(rules, v["tier"], basket)
    expect(priced.line_discounts == [rec.discount_cents for rec in lines] == v["line_discounts"], "line discounts")
    expect(priced.pay_cents == sale.amount_cents == v["pay_cents"], "to pay")
    expect(priced.discount_cents == sale.discount_cents and priced.total_discount_cents == v["total_discount_cents"],
           "total discount")
    for why in sorted(v["bad"]):       # decodes (the record is sound), but names no quantity: the hub pairs it with nothing
        expect(Record.decode(unhexlify(v["bad"][why]), mac).quantity == 0, why)
    print("sale line vectors ok", checks[0])


main(sys.argv[1])
