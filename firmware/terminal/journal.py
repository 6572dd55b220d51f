"""Append-only transaction journal and upload queue of the terminal.

A debit is appended here (PENDING) and made durable BEFORE the card is
written, then marked COMMITTED, VOIDED or UNCERTAIN (protocol/SPEC.md §1,
Guarantees). Records leave the terminal only after the hub acknowledges
them (ack), and only whole segment files are ever deleted.

On-flash format (all integers big-endian)
-----------------------------------------
``dirpath/NNNNNNNN.seg`` -- segment files, NNNNNNNN = segment number in hex,
increasing, never reused. A segment is a run of entries; nothing is ever
rewritten in place:

  append  'A' (0x41) | seq u32 | time_s u32 | record[record_size] | crc32 u32
  mark    'M' (0x4D) | status u8 (1..4) | seq u32 | crc32 u32

crc32 covers every byte of the entry before it. Each entry is one write,
flushed before append()/mark() return, and a status change is a new mark
entry: the last mark of a seq is its status, none means PENDING.

``dirpath/state`` -- 'PCJS' | acked u32 | last_seq u32 | crc32 u32, replaced
atomically (atomic.write). acked: every seq <= acked is stored at the hub.
last_seq: the highest seq appended when the state was written, so last_seq()
survives the trimming of the segments that held it.

Recovery
--------
open() streams every segment once through a fixed buffer. An entry whose crc
or type does not check is a torn tail when it is in the last segment and
fewer than one append entry's bytes remain after it (a write cut off by a
power loss, or a file extended with garbage): the segment is cut back to the
last good entry. Anything else raises JournalCorrupt, so damage never hides
records silently. (On littlefs an unflushed write disappears whole; the torn
tail rule is for the block device and for plain host file systems.)

RAM is independent of the journal's length: per segment six ints, and the
records still open (PENDING or UNCERTAIN), at most ``open_max`` of them.

Space: appends may use max_segments - 1 segments; the last one is reserved
for marks, so a record that was appended can always be marked.
"""

import os
import struct
from binascii import crc32

from . import atomic
from .compat import borrow, const

# A record's life on the terminal, one name per state (the hub's own: parkcard/domain/lifecycle.py); the
# number is a mark entry's status byte on flash. PENDING: appended, the card not yet written. COMMITTED,
# VOIDED: the card write landed, or did not. UNCERTAIN: the write's outcome is open; the card's next tap
# settles it (SPEC.md §3.5) and it is never uploaded as such. HANDED_OVER: still open, but the card did
# not come back in time (SPEC.md §5.6): final here, uploaded with status 3 `uncertain` (§4.3) for the hub
# to settle by counter continuity (§4.8), where it is RecordStatus.UNCERTAIN.
PENDING, COMMITTED, VOIDED, UNCERTAIN, HANDED_OVER = 0, 1, 2, 3, 4

# const(): folded into the code by mpy-cross, no name on the terminal's heap.
_APPEND = const(0x41)
_MARK = const(0x4D)
_MARK_LEN = const(10)
_APPEND_HEAD = const(9)  # type, seq, time_s: the record starts here
_STATE = const("state")
_STATE_MAGIC = const(b"PCJS")
_ENOSPC = const(28)

# Fields of a segment's index entry (a small list per segment file).
_NO = const(0)
_SIZE = const(1)
_NAPP = const(2)
_FIRST = const(3)
_LAST = const(4)
_MAXREF = const(5)


class JournalFull(Exception):
    """No room for another record: refuse the debit, never drop a record."""


class JournalCorrupt(Exception):
    """The journal is damaged in a way a power cut cannot explain."""


class _Reader:
    """Streams the valid entries of one segment through a fixed buffer.

    next() moves to the next entry and returns True, or returns False at the
    end of the file or at an entry that does not check (then ``bad`` is its
    offset and ``size`` the file size, for the torn-tail decision).
    """

    def __init__(self, path, record_size, buf, offset=0):
        self.size = os.stat(path)[6]
        self._f = open(path, "rb")
        if offset:
            self._f.seek(offset)  # an entry boundary the caller knows
        self.record_size = record_size
        self._alen = _APPEND_HEAD + record_size + 4
        self._buf = buf
        self._mv = memoryview(buf)
        self._base = offset  # file offset of _buf[0]
        self._lo = 0  # start of the current entry in _buf
        self._hi = 0  # end of the data in _buf
        self._len = 0  # length of the current entry
        self.bad = -1
        self.kind = self.seq = self.val = self.off = 0

    def close(self):
        self._f.close()

    def _fill(self, n):
        if self._hi - self._lo >= n:
            return True
        held = self._hi - self._lo
        self._buf[0:held] = self._buf[self._lo : self._hi]
        self._base += self._lo
        self._lo, self._hi = 0, held
        while self._hi < len(self._buf):
            got = self._f.readinto(self._mv[self._hi :])
            if not got:
                break
            self._hi += got
        return self._hi >= n

    def next(self):
        self._lo += self._len
        self._len = 0
        if not self._fill(1):
            return False
        buf, lo = self._buf, self._lo
        kind = buf[lo]
        n = self._alen if kind == _APPEND else _MARK_LEN if kind == _MARK else 0
        if n and self._fill(n):
            lo = self._lo
            if (crc32(self._mv[lo : lo + n - 4]) != struct.unpack_from(">I", buf, lo + n - 4)[0]
                    or kind == _MARK and not COMMITTED <= buf[lo + 1] <= HANDED_OVER):
                n = 0  # a torn or damaged entry
        else:
            n = 0
        if not n:
            self.bad = self._base + self._lo
            return False
        self.kind, self.off, self._len = kind, self._base + lo, n
        if kind == _APPEND:
            self.seq, self.val = struct.unpack_from(">II", buf, lo + 1)  # val: time_s
        else:
            self.val = buf[lo + 1]  # status
            self.seq = struct.unpack_from(">I", buf, lo + 2)[0]
        return True

    def record(self):
        start = self._lo + _APPEND_HEAD
        return bytes(self._mv[start : start + self.record_size])


class Journal:
    def __init__(self, dirpath, record_size, segment_bytes=16384, max_segments=64, open_max=32):
        alen = _APPEND_HEAD + record_size + 4
        if record_size < 1 or segment_bytes < 2 * (alen + _MARK_LEN) or max_segments < 2 or open_max < 1:
            raise ValueError("journal geometry")
        self._dir = dirpath
        self.record_size = record_size
        self._alen = alen
        self.segment_bytes = segment_bytes
        self.max_segments = max_segments
        self.open_max = open_max
        # Entries are built in these buffers: the tap path allocates nothing.
        self._abuf = bytearray(alen)
        amv = memoryview(self._abuf)
        self._arec = amv[_APPEND_HEAD : alen - 4]  # the record's place
        self._acrc_in = amv[: alen - 4]  # what the crc covers
        self._mbuf = bytearray(_MARK_LEN)
        self._mcrc_in = memoryview(self._mbuf)[: _MARK_LEN - 4]
        # One scan buffer for every segment scan (scans never overlap): an
        # upload or an ack then needs no large block from a fragmented heap.
        self._buf = bytearray(max(512, 2 * alen))
        self._resume = (0, 0)  # (segment, offset): upload scans start here, not at the segment's start
        self._f = None
        self._segs = []
        self._open = {}  # seq -> [status, segment number, offset], PENDING/UNCERTAIN only
        self._depth = 0
        self._oldest = None
        atomic.makedirs(dirpath)
        data = atomic.read(dirpath, _STATE)
        self._acked = self._last_seq = 0
        if data is not None:
            if len(data) != 16 or data[:4] != _STATE_MAGIC or crc32(data[:12]) != struct.unpack(">I", data[12:])[0]:
                raise JournalCorrupt("bad state file")
            self._acked, self._last_seq = struct.unpack(">II", data[4:12])
        data = None
        # Recovery runs once, at open: its code (terminal/journal_open.py) leaves the heap after it.
        borrow("terminal.journal_open", "recover", self)

    # -- paths and state -------------------------------------------------

    def _path(self, segno):
        return "%s/%08x.seg" % (self._dir, segno)

    def _settle(self, seq, status):
        if status == UNCERTAIN:
            self._open[seq][0] = UNCERTAIN
        else:
            del self._open[seq]

    def _recount(self):
        """Recompute depth and the oldest unsynced time (after open and ack)."""
        # Counted aside and set at the end: a scan that fails (no memory for
        # its buffer, a read error) leaves the last good figures, never zero.
        acked = self._acked
        depth, oldest = 0, None
        for i, seg in enumerate(self._segs):
            if not seg[_NAPP] or seg[_LAST] <= acked:
                continue
            if seg[_FIRST] > acked and oldest is not None:
                depth += seg[_NAPP]
                continue
            for r in self._entries(i, i + 1):  # runs to the end: nothing to close
                if r.kind == _APPEND and r.seq > acked:
                    depth += 1
                    if oldest is None:
                        oldest = r.val
        self._depth, self._oldest = depth, oldest

    # -- scanning --------------------------------------------------------

    def _entries(self, start, stop=None, offset=0):
        """Yield a reader positioned on each entry of segments start..stop-1 (the first from offset).

        A caller that leaves the loop early must close() the generator:
        MicroPython does not, and the segment file would stay open.
        """
        segs = self._segs[start:stop]
        for seg in segs:
            r = _Reader(self._path(seg[_NO]), self.record_size, self._buf, offset)
            offset = 0
            try:
                while r.next():
                    yield r
            finally:
                r.close()
            if r.bad >= 0:
                raise JournalCorrupt("segment %08x at %d" % (seg[_NO], r.bad))

    def _segment_of(self, seq):
        for i, seg in enumerate(self._segs):
            if seg[_NAPP] and seg[_FIRST] <= seq <= seg[_LAST]:
                return i
        return None

    # -- writing ---------------------------------------------------------

    def _roll(self):
        segno = self._segs[-1][_NO] + 1 if self._segs else 1
        if self._f is not None:
            self._f.close()
        self._f = open(self._path(segno), "ab")
        atomic.sync_dir(self._dir)
        self._segs.append([segno, 0, 0, 0, 0, 0])

    def _write(self, entry, limit):
        """Write one entry durably; return (segment index entry, offset)."""
        if self._f is None:
            raise ValueError("journal closed")
        seg = self._segs[-1]
        if len(self._segs) > limit:
            raise JournalFull("journal full")
        if seg[_SIZE] + len(entry) > self.segment_bytes:
            if len(self._segs) >= limit:
                raise JournalFull("journal full")
            self._roll()
            seg = self._segs[-1]
        try:
            self._f.write(entry)
            atomic.sync(self._f)
        except OSError as e:
            # A failed write may have left part of an entry: cut it off so the
            # next entry does not follow garbage. A write that left nothing (a
            # full flash; littlefs drops an unsynced write whole) needs no cut,
            # and a full flash would have no room for the copy a cut makes.
            path = self._path(seg[_NO])
            self._f.close()
            self._f = None
            if os.stat(path)[6] != seg[_SIZE]:
                borrow("terminal.journal_open", "truncate", self, seg[_NO], seg[_SIZE])
            self._f = open(path, "ab")
            if e.args and e.args[0] == _ENOSPC:
                raise JournalFull("the flash is full")
            raise
        off = seg[_SIZE]
        seg[_SIZE] += len(entry)
        return seg, off

    def append(self, seq, time_s, record):
        """Durably record a debit as PENDING before the card is written."""
        if not self._last_seq < seq <= 0xFFFFFFFF:
            raise ValueError("seq %d not after %d" % (seq, self._last_seq))
        if len(record) != self.record_size:
            raise ValueError("record is %d bytes, want %d" % (len(record), self.record_size))
        if len(self._open) >= self.open_max:
            raise JournalFull("%d records unresolved" % len(self._open))
        b, n = self._abuf, self._alen
        b[0] = _APPEND
        struct.pack_into(">II", b, 1, seq, time_s)
        self._arec[:] = record
        struct.pack_into(">I", b, n - 4, crc32(self._acrc_in))
        seg, off = self._write(b, self.max_segments - 1)
        seg[_NAPP] += 1
        seg[_FIRST] = seg[_FIRST] or seq
        seg[_LAST] = seg[_MAXREF] = seq
        self._open[seq] = [PENDING, seg[_NO], off]
        self._last_seq = seq
        if self._depth is not None:  # else the next count includes it
            if not self._depth:
                self._oldest = time_s
            self._depth += 1

    def mark(self, seq, status):
        """Durably change a record's status to COMMITTED, VOIDED, UNCERTAIN or HANDED_OVER."""
        if status not in (COMMITTED, VOIDED, UNCERTAIN, HANDED_OVER):
            raise ValueError("status %r" % (status,))
        entry = self._open.get(seq)
        if entry is None:
            current = self.status(seq)
            if current is None:
                raise ValueError("no record %d" % seq)
            if current != status:
                raise ValueError("record %d is final (%d)" % (seq, current))
            return
        if entry[0] == status:
            return
        b = self._mbuf
        b[0] = _MARK
        b[1] = status
        struct.pack_into(">I", b, 2, seq)
        struct.pack_into(">I", b, 6, crc32(self._mcrc_in))
        seg = self._write(b, self.max_segments)[0]
        seg[_MAXREF] = max(seg[_MAXREF], seq)
        self._settle(seq, status)

    # -- queries ---------------------------------------------------------

    def status(self, seq):
        entry = self._open.get(seq)
        if entry is not None:
            return entry[0]
        i = self._segment_of(seq)
        if i is None:
            return None
        found = False
        it = self._entries(i)
        try:
            for r in it:
                if r.seq == seq:
                    if r.kind == _APPEND:
                        found = True
                    elif found and r.val != UNCERTAIN:
                        return r.val
                elif not found and r.kind == _APPEND and r.seq > seq:
                    return None  # seqs may have gaps: this one never existed
        finally:
            it.close()
        return None

    def uncertain(self):
        """Yield (seq, record) of every record not known to be final."""
        for seq in sorted(self._open):
            entry = self._open.get(seq)
            if entry is None:
                continue  # resolved by the caller while iterating
            with open(self._path(entry[1]), "rb") as f:
                f.seek(entry[2] + _APPEND_HEAD)
                record = f.read(self.record_size)
            yield seq, record

    def unsynced(self, limit):
        """Return up to limit (seq, status, record) to upload, oldest first.

        Stops before the first record that is not final: the hub's ack is
        cumulative, so nothing after it can be acknowledged yet.
        """
        out = []
        waiting = 0  # records in out whose final mark is still ahead
        acked = self._acked
        start = 0
        while start < len(self._segs) and self._segs[start][_LAST] <= acked:
            start += 1
        if limit < 1 or start == len(self._segs):
            return out
        segno, offset = self._resume
        it = self._entries(start, None, offset if segno == self._segs[start][_NO] else 0)
        try:
            for r in it:
                if r.kind == _APPEND:
                    if r.seq <= acked:
                        continue
                    if not out:
                        # Where the next call can start: acks only move forward, and
                        # every entry before this one is about an acked record.
                        self._resume = (self._segs[self._segment_of(r.seq)][_NO], r.off)
                    if r.seq in self._open:
                        limit = len(out)
                    if len(out) < limit:
                        out.append([r.seq, None, r.record()])
                        waiting += 1
                elif waiting and r.val != UNCERTAIN:
                    for item in reversed(out):
                        if item[0] == r.seq:
                            item[1] = r.val
                            waiting -= 1
                            break
                if not waiting and len(out) >= limit:
                    break
        finally:
            it.close()
        return [tuple(item) for item in out]

    def ack(self, seq):
        """The hub stored every seq <= seq: persist that and trim segments."""
        upto = min(seq, self._last_seq)
        if self._open:
            upto = min(upto, min(self._open) - 1)  # an unresolved record is never acknowledged
        if upto <= self._acked:
            return
        acked, self._acked = self._acked, upto
        try:
            head = _STATE_MAGIC + struct.pack(">II", upto, self._last_seq)
            atomic.write(self._dir, _STATE, head + struct.pack(">I", crc32(head)))
        except Exception:
            # Not on flash (a full flash): acknowledged only when a later ack is, or an ack
            # taken here would never refresh the depth nor trim (the next one returns above).
            self._acked = acked
            raise
        self._trim()
        # Counted when next asked (a status report, every 30 s), not here: a
        # recount rescans a segment, and acks come every few records.
        self._depth = None

    def _trim(self):
        # Only a prefix of segments goes, and only while every seq it mentions
        # is acked: a mark for an unacked record keeps its segment.
        trimmed = False
        while len(self._segs) > 1 and self._segs[0][_MAXREF] <= self._acked:
            os.remove(self._path(self._segs.pop(0)[_NO]))
            trimmed = True
        if trimmed:
            atomic.sync_dir(self._dir)

    def depth(self):
        if self._depth is None:
            self._recount()
        return self._depth

    def oldest_unsynced_time(self):
        if self._depth is None:
            self._recount()
        return self._oldest

    def last_seq(self):
        return self._last_seq

    def acked(self):
        """The highest seq the hub acknowledged: every seq up to it is stored there."""
        return self._acked

    def each_after(self, seq, visit):
        """Call visit(seq, buffer, offset) for each record after seq, oldest first, read in place at
        buffer[offset:offset + record_size] (valid during the call; visit must not scan the journal itself).

        Starts at the first segment holding a later seq: the cost is the records after seq, not the journal's."""
        segs = self._segs
        first = 0
        while first < len(segs) and segs[first][_LAST] <= seq:
            first += 1
        for r in self._entries(first):
            if r.kind == _APPEND and r.seq > seq:
                visit(r.seq, r._buf, r._lo + _APPEND_HEAD)

    def free_records(self):
        """How many more records fit, each with one mark (a lower bound)."""
        usable = self.max_segments - 1
        if len(self._segs) > usable:
            return 0
        pair = self._alen + _MARK_LEN
        free = (self.segment_bytes - self._segs[-1][_SIZE]) // pair
        return free + (usable - len(self._segs)) * (self.segment_bytes // pair)

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None
