"""Opening a journal (terminal/journal.py): every segment scanned once, a torn tail cut back.

Runs once at start and is forgotten after (compat.forget); a failed write's repair loads it again.
"""

import os

from terminal import atomic
from terminal.compat import const
from terminal.journal import PENDING, JournalCorrupt, _Reader

# terminal/journal.py's entry layout and segment index fields: a const() is folded where it is used, so
# each module that uses one names it (no global, no interned name on the heap).
_APPEND = const(0x41)
_MARK_LEN = const(10)
_SEG_EXT = const(".seg")
_NO = const(0)
_SIZE = const(1)
_NAPP = const(2)
_FIRST = const(3)
_LAST = const(4)
_MAXREF = const(5)


def recover(j):
    """Index every segment of journal j, cut a torn tail back, open the last segment for appends."""
    segnos = []
    for name in os.listdir(j._dir):
        if name.endswith(atomic.TMP):
            atomic.remove(j._dir + "/" + name)  # an interrupted state write or tail cut
        elif name.endswith(_SEG_EXT):
            segnos.append(int(name[:8], 16))
    segnos.sort()
    j._scan_seq = 0
    for i, segno in enumerate(segnos):
        _recover_segment(j, segno, i == len(segnos) - 1)
    j._trim()  # finishes a trim that a power cut interrupted
    if j._segs:
        j._f = open(j._path(j._segs[-1][_NO]), "ab")
    else:
        j._roll()
    j._depth = None  # counted when first asked


def _recover_segment(j, segno, is_last):
    seg = [segno, 0, 0, 0, 0, 0]
    r = _Reader(j._path(segno), j.record_size, j._buf)
    try:
        while r.next():
            _index(j, seg, r)
            seg[_SIZE] = r.off + (j._alen if r.kind == _APPEND else _MARK_LEN)
    finally:
        r.close()
    if r.bad >= 0:
        if not is_last or r.size - r.bad > j._alen:
            raise JournalCorrupt("segment %08x at %d" % (segno, r.bad))
        truncate(j, segno, r.bad)
    j._segs.append(seg)


def _index(j, seg, r):
    seq = r.seq
    if r.kind == _APPEND:
        if seq <= j._scan_seq:
            raise JournalCorrupt("seq %d after %d" % (seq, j._scan_seq))
        j._scan_seq = seq
        seg[_NAPP] += 1
        seg[_FIRST] = seg[_FIRST] or seq
        seg[_LAST] = seq
        j._last_seq = max(j._last_seq, seq)
        if seq > j._acked:
            if len(j._open) >= j.open_max:
                raise JournalCorrupt("more than %d open records" % j.open_max)
            j._open[seq] = [PENDING, seg[_NO], r.off]
    elif seq in j._open:
        j._settle(seq, r.val)
    seg[_MAXREF] = max(seg[_MAXREF], seq)


def truncate(j, segno, size):
    """Cut segment segno of journal j back to size bytes."""
    # MicroPython files have no truncate(): copy the intact prefix and
    # rename it over the segment, so a cut during this leaves the original.
    path = j._path(segno)
    tmp = path + atomic.TMP
    buf = bytearray(256)
    mv = memoryview(buf)
    with open(path, "rb") as src:
        with open(tmp, "wb") as dst:
            left = size
            while left:
                got = src.readinto(mv[: min(256, left)])
                if not got:
                    raise JournalCorrupt("segment %08x shrank" % segno)
                dst.write(mv[:got])
                left -= got
            atomic.sync(dst)
    atomic.replace(tmp, path, j._dir)
