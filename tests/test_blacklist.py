"""The offline blacklist: lookups without loading it, deltas, snapshots, power cuts."""

import os
from pathlib import Path

import pytest

from conftest import mpy_lines
from terminal.blacklist import Blacklist, BlacklistCorrupt, BlacklistError, VersionGap

MPY = Path(__file__).parent / "mpy"
N = 100000
STEP = 5  # the big list holds 5, 10, ..., 500000


@pytest.fixture
def big(tmp_path):
    bl = Blacklist(str(tmp_path))
    bl.apply_delta(0, 1, range(STEP, (N + 1) * STEP, STEP), [])
    yield bl
    bl.close()


def test_empty_list_is_version_zero_and_contains_nothing(tmp_path):
    bl = Blacklist(str(tmp_path))
    assert (bl.version, bl.count, bl.contains(0), bl.contains(12)) == (0, 0, False, False)


def test_hundred_thousand_entries_membership_and_edges(big):
    assert (big.version, big.count) == (1, N)
    present = [STEP, 2 * STEP, N * STEP, (N - 1) * STEP, 4321 * STEP, (N // 2) * STEP]
    absent = [0, 1, STEP - 1, STEP + 1, N * STEP - 1, N * STEP + 1, (N + 1) * STEP, 0xFFFFFFFF]
    assert all(big.contains(n) for n in present)
    assert not any(big.contains(n) for n in absent)
    assert os.path.getsize(os.path.join(big._dir, "blacklist")) == 4 * N + 16


def test_delta_adds_and_removes_and_survives_reopen(big, tmp_path):
    big.apply_delta(1, 2, [0, 1, STEP, 7, N * STEP + 1, 0xFFFFFFFF], [3, 2 * STEP, N * STEP])
    assert (big.version, big.count) == (2, N + 5 - 2)
    for n in (0, 1, STEP, 7, N * STEP + 1, 0xFFFFFFFF, 3 * STEP):
        assert big.contains(n), n
    for n in (2 * STEP, 3, N * STEP, 2):
        assert not big.contains(n), n
    big.close()
    again = Blacklist(str(tmp_path))
    assert (again.version, again.count, again.contains(7), again.contains(2 * STEP)) == (2, N + 3, True, False)
    again.close()


def test_delta_from_another_version_asks_for_a_snapshot(big):
    with pytest.raises(VersionGap):
        big.apply_delta(0, 2, [1], [])
    with pytest.raises(VersionGap):
        big.apply_delta(2, 3, [1], [])
    with pytest.raises(BlacklistError):
        big.apply_delta(1, 1, [1], [])
    assert (big.version, big.count, big.contains(1)) == (1, N, False)


@pytest.mark.parametrize("adds, removes", [([3, 2], []), ([1, 1], []), ([], [9, 4]), ([-1], []), ([1 << 32], [])])
def test_unsorted_or_out_of_range_delta_is_rejected_and_changes_nothing(tmp_path, adds, removes):
    bl = Blacklist(str(tmp_path))
    bl.apply_delta(0, 1, [2, 4, 6], [])
    with pytest.raises(BlacklistError):
        bl.apply_delta(1, 2, adds, removes)
    assert (bl.version, bl.count, [n for n in range(8) if bl.contains(n)]) == (1, 3, [2, 4, 6])
    assert sorted(os.listdir(tmp_path)) == ["blacklist"]


def test_snapshot_in_chunks_replaces_the_list(big, tmp_path):
    big.begin_snapshot(9)
    big.add_snapshot_chunk([2, 3])
    assert big.contains(STEP) and big.version == 1  # the old list holds until finish
    big.add_snapshot_chunk(range(10, 1000, 10))
    big.add_snapshot_chunk(iter([4000000000]))
    big.finish_snapshot()
    assert (big.version, big.count) == (9, 2 + 99 + 1)
    assert big.contains(3) and big.contains(990) and big.contains(4000000000) and not big.contains(STEP)


@pytest.mark.parametrize("chunks", [[[5, 3]], [[1, 9], [8, 10]], [[1, 2], [2]]])
def test_snapshot_rejects_unsorted_chunks_and_keeps_the_old_list(big, chunks):
    big.begin_snapshot(2)
    with pytest.raises(BlacklistError):
        for chunk in chunks:
            big.add_snapshot_chunk(chunk)
    with pytest.raises(BlacklistError):
        big.finish_snapshot()  # the snapshot was abandoned
    assert (big.version, big.count, big.contains(STEP)) == (1, N, True)


@pytest.mark.parametrize("version", [-1, 1 << 32])
def test_snapshot_calls_out_of_order_or_out_of_range_are_refused(tmp_path, version):
    bl = Blacklist(str(tmp_path))
    bl.apply_delta(0, 1, [2, 4], [])
    with pytest.raises(BlacklistError):
        bl.add_snapshot_chunk([1])  # no begin_snapshot
    with pytest.raises(BlacklistError):
        bl.finish_snapshot()
    with pytest.raises(BlacklistError):
        bl.begin_snapshot(version)
    assert (bl.version, bl.count, bl.contains(4)) == (1, 2, True)
    assert sorted(os.listdir(tmp_path)) == ["blacklist"]
    bl.close()


def test_abandoned_snapshot_leaves_old_list_and_no_leftovers(big, tmp_path):
    big.begin_snapshot(7)
    big.add_snapshot_chunk([1, 2, 3])
    big.close()  # e.g. the link dropped, or the power went
    again = Blacklist(str(tmp_path))
    assert (again.version, again.count, again.contains(1)) == (1, N, False)
    assert sorted(os.listdir(tmp_path)) == ["blacklist"]
    again.close()


def test_power_cut_before_the_rename_keeps_the_old_list(tmp_path):
    bl = Blacklist(str(tmp_path))
    bl.apply_delta(0, 1, [10, 20, 30], [])
    bl.close()
    new = tmp_path / "new"
    nb = Blacklist(str(new))
    nb.apply_delta(0, 1, [10, 20, 30], [])
    nb.apply_delta(1, 2, [15], [20])
    nb.close()
    complete = (new / "blacklist").read_bytes()
    for cut in range(len(complete) + 1):  # the .tmp written up to any byte, never renamed
        (tmp_path / "blacklist.tmp").write_bytes(complete[:cut])
        bl = Blacklist(str(tmp_path))
        assert (bl.version, bl.count, bl.contains(20), bl.contains(15)) == (1, 3, True, False)
        bl.close()
    (tmp_path / "blacklist").write_bytes(complete)  # the rename happened
    bl = Blacklist(str(tmp_path))
    assert (bl.version, bl.count, bl.contains(20), bl.contains(15)) == (2, 3, False, True)


@pytest.mark.parametrize("damage", ["short", "magic", "count", "number"])
def test_damaged_list_is_reported_not_trusted(tmp_path, damage):
    bl = Blacklist(str(tmp_path))
    bl.apply_delta(0, 3, [1, 2, 3], [])
    bl.close()
    path = tmp_path / "blacklist"
    data = bytearray(path.read_bytes())
    if damage == "short":
        data = data[:-1]
    elif damage == "magic":
        data[-16] ^= 0xFF
    elif damage == "number":
        data[5] ^= 0x01  # card 2 reads as 258: the trailer checks, the numbers' crc does not
    else:
        data[-5] += 1
    path.write_bytes(bytes(data))
    with pytest.raises(BlacklistCorrupt):
        Blacklist(str(tmp_path))


@pytest.mark.micropython
def test_hundred_thousand_on_littlefs_under_micropython(micropython, tmp_path):
    out = mpy_lines(micropython(MPY / "blacklist_check.py", cwd=tmp_path))
    for check in ("snapshot", "lookups", "delta", "version_gap", "reopen"):
        assert out.get(check) == "True", check
    # RAM does not grow with the list: a loose bound, far below 400 KB of numbers.
    assert int(out["heap_growth"]) < 8192
    assert int(out["heap_growth_snapshot"]) < 8192


@pytest.mark.micropython
def test_blacklist_delta_survives_power_cuts_on_littlefs(micropython, tmp_path):
    proc = micropython(MPY / "powerloss_check.py", "blacklist", 1, 100000, cwd=tmp_path)
    out = mpy_lines(proc)
    assert out.get("blacklist_powerloss") == "ok", proc.stdout[-3000:]
    assert int(out["blacklist_cases"]) == int(out["blacklist_bytes"]) + 1
