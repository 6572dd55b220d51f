"""Check protocol/spend_rules.py, the rules in a T_CONFIG tail and its debit_cents of records against
protocol/vectors/spend_rules.json; runs on MicroPython and CPython.

usage: <interpreter> tests/mpy/spend_rules_check.py protocol/vectors/spend_rules.json
Prints "spend rules vectors ok <n>" at the end.
"""

import json
import sys

from binascii import unhexlify

from protocol import spend_rules as s
from protocol.config import Config
from protocol.errors import Malformed
from vector_checks import checks, expect, refused


def main(path):
    """Check every case of the file at path."""
    with open(path) as f:
        v = json.load(f)
    rules = []
    for fields, data in v["rules"]:
        raw = unhexlify(data)
        expect(s.SpendRules(*fields).encode() == raw, "encode %r" % fields)
        got = s.SpendRules.decode(raw)
        expect(list(got.fields()) == fields, "decode %r" % fields)
        rules.append(got)
    for data in v["bad"]:
        expect(refused(s.SpendRules.decode, unhexlify(data), error=Malformed), "refused %s" % data)
    for i, tier, flags, allows, member in v["cards"]:
        expect(rules[i].allows(tier, flags) == allows, "allows %d %d %d" % (i, tier, flags))
        expect(rules[i].member(tier) == member, "member %d %d" % (i, tier))
    cfg = Config.decode(unhexlify(v["config"]))
    expect(list(s.SpendRules.decode(cfg.tail).fields()) == list(rules[1].fields()), "rules in the config tail")
    for data, cents in v["records"]:
        raw = unhexlify(data)
        padded = b"\x00" * 5 + raw      # read in place at an offset, as the journal does
        expect(s.debit_cents(padded, 5, 700) == cents, "debit_cents %s" % data[:8])
    print("spend rules vectors ok %d" % checks[0])


main(sys.argv[1])
