"""The terminal's journal / upload queue: lifecycle, space, recovery after a power cut."""

import shutil
from pathlib import Path

import pytest

from conftest import mpy_lines
from sim.flash import FileBlockDevice, PowerCut
from terminal.journal import (
    COMMITTED,
    PENDING,
    UNCERTAIN,
    VOIDED,
    Journal,
    JournalCorrupt,
    JournalFull,
)

RS = 56
MPY = Path(__file__).parent / "mpy"


def record(seq):
    return seq.to_bytes(4, "big") * (RS // 4)


def fill(j, first, last, status=COMMITTED):
    for seq in range(first, last + 1):
        j.append(seq, 1000 + seq, record(seq))
        j.mark(seq, status)


def segments(path):
    return sorted(p.name for p in path.iterdir() if p.suffix == ".seg")


def test_lifecycle_statuses_and_upload_batches(tmp_path):
    j = Journal(str(tmp_path), RS)
    j.append(1, 1001, record(1))
    assert j.status(1) == PENDING
    j.mark(1, COMMITTED)
    j.append(2, 1002, record(2))
    j.mark(2, VOIDED)
    j.append(3, 1003, record(3))
    j.mark(3, UNCERTAIN)
    j.append(4, 1004, record(4))
    j.mark(4, COMMITTED)
    assert [j.status(s) for s in (1, 2, 3, 4, 5)] == [COMMITTED, VOIDED, UNCERTAIN, COMMITTED, None]
    assert list(j.uncertain()) == [(3, record(3))]
    # Upload stops before the unresolved record: the hub's ack is cumulative.
    assert j.unsynced(10) == [(1, COMMITTED, record(1)), (2, VOIDED, record(2))]
    assert j.unsynced(1) == [(1, COMMITTED, record(1))]
    assert (j.depth(), j.oldest_unsynced_time(), j.last_seq()) == (4, 1001, 4)
    j.mark(3, VOIDED)  # the next tap of the card resolved it
    assert [s for s, _, _ in j.unsynced(10)] == [1, 2, 3, 4]
    j.ack(2)
    assert (j.depth(), j.oldest_unsynced_time()) == (2, 1003)
    assert j.unsynced(10) == [(3, VOIDED, record(3)), (4, COMMITTED, record(4))]
    j.ack(4)
    assert (j.depth(), j.oldest_unsynced_time(), j.unsynced(10)) == (0, None, [])


def test_bad_calls_are_named_errors_and_change_nothing(tmp_path):
    j = Journal(str(tmp_path), RS)
    fill(j, 1, 2)
    with pytest.raises(ValueError):
        j.append(2, 0, record(2))  # seq must increase
    with pytest.raises(ValueError):
        j.append(3, 0, b"short")
    with pytest.raises(ValueError):
        j.mark(2, VOIDED)  # final is final
    with pytest.raises(ValueError):
        j.mark(9, COMMITTED)
    with pytest.raises(ValueError):
        j.mark(1, PENDING)
    j.mark(2, COMMITTED)  # repeating the final status is harmless
    assert [j.status(1), j.status(2), j.last_seq()] == [COMMITTED, COMMITTED, 2]


@pytest.mark.parametrize("geometry", [
    dict(record_size=0), dict(segment_bytes=2 * (9 + RS + 4 + 10) - 1), dict(max_segments=1), dict(open_max=0),
], ids=["record_size", "segment_bytes", "max_segments", "open_max"])
def test_impossible_geometry_is_refused_before_touching_flash(tmp_path, geometry):
    args = dict(record_size=RS) | geometry
    with pytest.raises(ValueError, match="geometry"):
        Journal(str(tmp_path / "j"), **args)
    assert not (tmp_path / "j").exists()


def test_closed_journal_refuses_writes(tmp_path):
    j = Journal(str(tmp_path), RS)
    fill(j, 1, 1)
    j.close()
    with pytest.raises(ValueError, match="closed"):
        j.append(2, 0, record(2))
    assert Journal(str(tmp_path), RS).last_seq() == 1


def test_ack_trims_whole_segments_but_never_an_unresolved_record(tmp_path):
    j = Journal(str(tmp_path), RS, segment_bytes=1024, max_segments=16)
    fill(j, 1, 10)
    j.append(11, 1011, record(11))
    j.mark(11, UNCERTAIN)
    fill(j, 12, 60)
    before = segments(tmp_path)
    assert len(before) > 4
    j.ack(60)  # the hub cannot have 11: clamp below it
    assert j.depth() == 50 and j.status(11) == UNCERTAIN
    assert segments(tmp_path) == before  # 11's segment is the oldest one left
    j.mark(11, COMMITTED)
    assert [s for s, _, _ in j.unsynced(3)] == [11, 12, 13]
    j.ack(60)
    assert j.depth() == 0 and len(segments(tmp_path)) == 1
    j.close()
    j = Journal(str(tmp_path), RS, segment_bytes=1024, max_segments=16)
    assert (j.last_seq(), j.depth(), j.unsynced(5)) == (60, 0, [])
    fill(j, 61, 61)
    assert j.unsynced(5) == [(61, COMMITTED, record(61))]


def test_full_journal_refuses_appends_but_keeps_every_record(tmp_path):
    j = Journal(str(tmp_path), RS, segment_bytes=1024, max_segments=4)
    promised = j.free_records()
    seq = 0
    with pytest.raises(JournalFull):
        while True:
            j.append(seq + 1, 1000, record(seq + 1))
            seq += 1
            j.mark(seq, COMMITTED)
    assert seq >= promised and j.free_records() == 0 and j.depth() == seq
    assert len(j.unsynced(1000)) == seq
    j.ack(seq)
    assert j.free_records() > 0
    j.append(seq + 1, 1000, record(seq + 1))


def test_marks_find_room_after_appends_filled_the_journal(tmp_path):
    j = Journal(str(tmp_path), RS, segment_bytes=1024, max_segments=4, open_max=100)
    seq = 0
    with pytest.raises(JournalFull):
        while True:
            j.append(seq + 1, 1000, record(seq + 1))
            seq += 1
    for s in range(1, seq + 1):  # the cards were written: every mark must land
        j.mark(s, UNCERTAIN if s % 2 else COMMITTED)
    for s in range(1, seq + 1, 2):
        j.mark(s, VOIDED)
    assert [st for _, st, _ in j.unsynced(1000)] == [VOIDED, COMMITTED] * (seq // 2) + [VOIDED] * (seq % 2)


def test_too_many_unresolved_records_refuses_new_debits(tmp_path):
    j = Journal(str(tmp_path), RS, open_max=3)
    for seq in (1, 2, 3):
        j.append(seq, 1000, record(seq))
        j.mark(seq, UNCERTAIN)
    with pytest.raises(JournalFull):
        j.append(4, 1000, record(4))
    j.mark(2, VOIDED)
    j.append(4, 1000, record(4))


def test_reopen_recovers_everything_and_pending_at_boot_is_uncertain(tmp_path):
    j = Journal(str(tmp_path), RS, segment_bytes=2048)
    fill(j, 1, 100)
    j.append(101, 2001, record(101))
    j.mark(101, UNCERTAIN)
    j.append(102, 2002, record(102))  # the power died before the card write finished
    j.ack(40)
    j.close()
    j = Journal(str(tmp_path), RS, segment_bytes=2048)
    assert list(j.uncertain()) == [(101, record(101)), (102, record(102))]
    assert (j.status(101), j.status(102), j.status(77)) == (UNCERTAIN, PENDING, COMMITTED)
    assert (j.depth(), j.last_seq(), j.oldest_unsynced_time()) == (62, 102, 1041)
    assert [s for s, _, _ in j.unsynced(100)] == list(range(41, 101))
    j.mark(102, COMMITTED)
    j.close()
    assert Journal(str(tmp_path), RS, segment_bytes=2048).status(102) == COMMITTED


def test_ten_thousand_records_stay_queryable(tmp_path):
    j = Journal(str(tmp_path), RS, segment_bytes=16384, max_segments=64)
    fill(j, 1, 10000)
    assert j.depth() == 10000 and j.status(9999) == COMMITTED
    assert [s for s, _, _ in j.unsynced(3)] == [1, 2, 3]
    j.ack(9990)
    assert j.depth() == 10 and len(segments(tmp_path)) == 1


# -- power loss on a plain file system --------------------------------------


def model_after(ops):
    status, last = {}, 0
    for op in ops:
        if op[0] == "a":
            status[op[1]] = PENDING
            last = op[1]
        else:
            status[op[1]] = op[2]
    return status, last


def observed_copy(tmp_path, live, name, content):
    """Recover a copy of the live journal whose file name holds content."""
    disk = tmp_path / "copy"
    shutil.copytree(live, disk)
    (disk / name).write_bytes(content)
    state = observed(disk, range(1, 16))
    shutil.rmtree(disk)
    return state


def observed(path, seqs):
    j = Journal(str(path), RS, segment_bytes=1024)
    statuses = {s: j.status(s) for s in seqs if j.status(s) is not None}
    for seq, rec in j.uncertain():
        assert rec == record(seq)
    state = statuses, j.last_seq()
    # Recovery left a journal that takes writes and reads them back.
    nxt = j.last_seq() + 1
    j.append(nxt, 0, record(nxt))
    j.mark(nxt, VOIDED)
    j.close()
    assert Journal(str(path), RS, segment_bytes=1024).status(nxt) == VOIDED
    return state


OPS = [("a", 1), ("m", 1, COMMITTED), ("a", 2), ("m", 2, UNCERTAIN)]
OPS += [("a", s) for s in range(3, 14)] + [("m", s, COMMITTED) for s in range(3, 14)]
OPS += [("m", 2, VOIDED), ("a", 14), ("m", 14, COMMITTED)]


@pytest.mark.parametrize("tail", ["truncated", "zero-filled", "garbage"])
def test_power_cut_at_every_byte_of_every_write(tmp_path, tail):
    """Replay each write cut at every byte: state is before or after it, never else."""
    live = tmp_path / "live"
    j = Journal(str(live), RS, segment_bytes=1024)
    for n, op in enumerate(OPS):
        before = {p.name: p.read_bytes() for p in live.iterdir()}
        if op[0] == "a":
            j.append(op[1], 1000 + op[1], record(op[1]))
        else:
            j.mark(op[1], op[2])
        after = {p.name: p.read_bytes() for p in live.iterdir()}
        (name,) = [k for k in after if after[k] != before.get(k)]
        old, new = before.get(name, b""), after[name]
        assert new.startswith(old)  # append-only: each operation is one write at a file's end
        assert observed_copy(tmp_path, live, name, new) == model_after(OPS[: n + 1])
        want = model_after(OPS[:n])  # a torn entry is dropped whole
        for cut in range(len(old), len(new)):
            torn = new[:cut]
            if tail == "zero-filled":  # size grew, data never arrived
                torn += bytes(len(new) - cut)
            elif tail == "garbage":
                torn += b"\xa5" * (len(new) - cut)
            assert observed_copy(tmp_path, live, name, torn) == want, (op, cut, tail)


def test_damage_that_is_not_a_torn_tail_is_reported(tmp_path):
    j = Journal(str(tmp_path), RS, segment_bytes=1024)
    fill(j, 1, 30)
    j.close()
    first = tmp_path / segments(tmp_path)[0]
    data = bytearray(first.read_bytes())
    data[100] ^= 0x01
    first.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt):
        Journal(str(tmp_path), RS, segment_bytes=1024)
    # In the last segment too, when more than a torn entry's worth follows.
    shutil.rmtree(tmp_path)
    j = Journal(str(tmp_path), RS, segment_bytes=4096)
    fill(j, 1, 10)
    j.close()
    last = tmp_path / segments(tmp_path)[-1]
    data = bytearray(last.read_bytes())
    data[5] ^= 0x01
    last.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt):
        Journal(str(tmp_path), RS, segment_bytes=4096)


def test_file_block_device_cuts_a_write_part_way(tmp_path):
    dev = FileBlockDevice(str(tmp_path / "disk"), block_size=16, block_count=4)
    dev.writeblocks(1, b"A" * 16)
    dev.cut_after(20)
    dev.writeblocks(2, b"B" * 16)
    with pytest.raises(PowerCut):
        dev.writeblocks(0, b"C" * 16)
    with pytest.raises(PowerCut):
        dev.writeblocks(3, b"D" * 16)
    dev.restore_power()
    dev.writeblocks(3, b"E" * 4, 12)
    buf = bytearray(64)
    for block in range(4):
        dev.readblocks(block, memoryview(buf)[block * 16 : block * 16 + 16])
    assert bytes(buf) == b"CCCC" + b"\xff" * 12 + b"A" * 16 + b"B" * 16 + b"\xff" * 12 + b"EEEE"
    assert dev.bytes_written == 16 + 16 + 4 + 4
    assert dev.ioctl(6, 1) == 0
    dev.readblocks(1, memoryview(buf)[:16])
    assert bytes(buf[:16]) == b"\xff" * 16
    dev.close()


# -- MicroPython -------------------------------------------------------------


@pytest.mark.micropython
def test_journal_on_littlefs_under_micropython(micropython, tmp_path):
    out = mpy_lines(micropython(MPY / "journal_check.py", cwd=tmp_path))
    for check in ("lifecycle", "status", "ack_trims", "reopen", "all_acked", "full_refuses"):
        assert out.get(check) == "True", check
    assert int(out["heap_growth"]) < 8192


@pytest.mark.micropython
def test_journal_survives_power_cuts_on_littlefs(micropython, tmp_path):
    proc = micropython(MPY / "powerloss_check.py", "journal", 7, 100000, cwd=tmp_path)
    out = mpy_lines(proc)
    assert out.get("journal_powerloss") == "ok", proc.stdout[-3000:]
    assert int(out["journal_cases"]) > 300



def test_uploading_in_small_batches_reads_each_entry_a_bounded_number_of_times(tmp_path, monkeypatch):
    from terminal import journal as jr

    reads = [0]
    next_entry = jr._Reader.next

    def counting(reader):
        reads[0] += 1
        return next_entry(reader)

    monkeypatch.setattr(jr._Reader, "next", counting)
    j = Journal(str(tmp_path), RS, 65536, 24)
    n = 2000
    for seq in range(1, n + 1):
        j.append(seq, 1000 + seq, record(seq))
        j.mark(seq, VOIDED if seq % 7 == 0 else COMMITTED)
    reads[0] = 0
    sent = []
    while True:
        batch = j.unsynced(8)
        if not batch:
            break
        sent += [(seq, status) for seq, status, _ in batch]
        j.ack(batch[-1][0])
        if len(sent) % 80 == 0:
            assert j.depth() == n - len(sent)     # a status report now and then: counted lazily, right
    assert sent == [(s, VOIDED if s % 7 == 0 else COMMITTED) for s in range(1, n + 1)]
    assert (j.depth(), j.oldest_unsynced_time()) == (0, None)
    # Each upload starts where the last one's first unacked record was, and an ack does not
    # recount: about 22 entry reads per record (281 when every scan began at the segment's start).
    assert reads[0] < 40 * n


def test_each_after_reads_the_records_after_a_seq_in_place_from_their_segment_on(tmp_path):
    j = Journal(str(tmp_path), RS, segment_bytes=4 * (RS + 13 + 10), max_segments=16)
    fill(j, 1, 20)
    j.ack(9)                                # trims the segments every seq of which is acknowledged
    opened = []
    real_entries = j._entries

    def entries(first, stop=None, offset=0):
        opened.append(j._segs[first][0] if first < len(j._segs) else None)
        return real_entries(first, stop, offset)
    j._entries = entries
    seen = []
    j.each_after(14, lambda seq, buf, at: seen.append((seq, bytes(buf[at:at + RS]))))
    assert seen == [(seq, record(seq)) for seq in range(15, 21)]
    assert opened == [j._segs[j._segment_of(15)][0]]      # the scan starts at the segment holding seq 15
    assert j.acked() == 9
    seen.clear()
    j.each_after(20, lambda seq, buf, at: seen.append(seq))
    assert seen == []
