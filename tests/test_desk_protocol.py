"""The desk's frames and source (protocol/desk.py, SPEC.md §4.10, §5.9): vectors on both interpreters, bad input."""

import pytest

from protocol import desk as D
from protocol import frames
from protocol.errors import Malformed

from conftest import REPO, run_cpython

VECTORS = REPO / "protocol" / "vectors" / "desk.json"
CHECK = REPO / "tests" / "mpy" / "desk_check.py"
UID = bytes.fromhex("04a1b2c3d4e5f6")


def test_vectors_on_cpython():
    assert run_cpython(CHECK, VECTORS).stdout.startswith("desk vectors ok")


@pytest.mark.micropython
def test_vectors_on_micropython(micropython):
    proc = micropython(CHECK, VECTORS)
    assert proc.stdout.startswith("desk vectors ok")
    assert proc.stdout == run_cpython(CHECK, VECTORS).stdout     # the same checks passed on both


def test_a_wrapped_key_opens_only_with_the_desks_frame_key_and_its_request():
    key = bytes(range(6))
    mac = frames.frame_mac_for(b"K" * 32)
    wrapped = D.wrap_key(mac, 7, key)
    assert wrapped != key and D.unwrap_key(mac, 7, wrapped) == key
    assert D.unwrap_key(mac, 8, wrapped) != key
    assert D.unwrap_key(frames.frame_mac_for(b"L" * 32), 7, wrapped) != key


@pytest.mark.parametrize("make", [
    lambda: D.order_body(1, D.OP_WRITE, UID, D.KEY_B, bytes(6), []),            # a write with nothing to write
    lambda: D.order_body(1, D.OP_READ, UID, D.KEY_B, bytes(6), [(5, bytes(16))]),
    lambda: D.order_body(1, 9, UID, D.KEY_B, bytes(6)),
    lambda: D.order_body(1, D.OP_WRITE, UID, D.KEY_B, bytes(6), [(5, bytes(16))] * 5),
    lambda: D.order_body(1, D.OP_WRITE, UID, D.KEY_B, bytes(6), [(64, bytes(16))]),
    lambda: D.order_body(1, D.OP_READ, b"\x01\x02", D.KEY_B, bytes(6)),
    lambda: D.report_body(1, D.DESK_OK, UID, [(5, bytes(15))]),
])
def test_bad_desk_frames_are_refused_as_malformed(make):
    with pytest.raises(Malformed):
        make()


def test_the_desk_types_are_frames_both_sides_accept():
    assert frames.T_DESK_ORDER in frames.DOWNLINK_TYPES
    mac = frames.frame_mac_for(b"K" * 32)
    for ftype in (frames.T_DESK_ORDER, frames.T_DESK_REPORT):
        assert frames.decode(mac, frames.encode(mac, ftype, 3, 1, 0, b"x")).type == ftype
