"""What the vector check scripts share; runs on MicroPython and CPython."""

import sys

checks = [0]   # a list: scripts read the count after importing it


def expect(cond, what):
    """Count a passed check, or print FAIL and exit 1."""
    if not cond:
        print("FAIL", what)
        sys.exit(1)
    checks[0] += 1


def refused(fn, *args, error=Exception):
    """True when fn(*args) raises `error`."""
    try:
        fn(*args)
    except error:
        return True
    return False


def round_tripped_records(terminal_key_hex, raws):
    """(record MAC, [Record]) of a vector file's hex records, each checked to encode back to its own bytes."""
    from binascii import hexlify, unhexlify
    from protocol.record import Record, record_mac_for
    mac = record_mac_for(unhexlify(terminal_key_hex))
    recs = []
    for raw in raws:
        rec = Record.decode(unhexlify(raw), mac)
        expect(hexlify(rec.encode(mac)).decode() == raw, "record %d encodes to its bytes" % rec.seq)
        recs.append(rec)
    return mac, recs


class Lazy:
    """A sequence of count elements made one at a time by make(i), for lists too big for a 100 KB heap."""

    def __init__(self, count, make):
        self.count = count
        self.make = make

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        return self.make(i)
