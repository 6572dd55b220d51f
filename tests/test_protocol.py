"""protocol/ against its vectors on both interpreters, and its bad-input paths."""

import hashlib
import hmac

import pytest

from conftest import REPO, run_cpython
from protocol import card, card_issue, crypto, frames, hub_frames, record, topics
from protocol.errors import BadMac, Malformed, Unsupported

VECTORS = REPO / "protocol" / "vectors" / "vectors.json"
CHECK = REPO / "tests" / "mpy" / "protocol_check.py"
PARK = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32)
KEY = b"T" * 32


def test_vectors_on_cpython():
    proc = run_cpython(CHECK, VECTORS)
    assert proc.stdout.startswith("protocol vectors ok")


@pytest.mark.micropython
def test_vectors_on_micropython(micropython):
    proc = micropython(CHECK, VECTORS)
    assert proc.stdout.strip().startswith("protocol vectors ok")
    cpython = run_cpython(CHECK, VECTORS)
    assert proc.stdout == cpython.stdout  # same number of checks passed on both


def test_pure_python_hmac_matches_stdlib(monkeypatch):
    monkeypatch.setattr(crypto, "_hmac", None)
    for key in (b"", b"k", b"x" * 64, b"y" * 65):
        assert crypto.Mac(key).digest(b"ab", b"c") == hmac.new(key, b"abc", hashlib.sha256).digest()


def test_slot_pick_prefers_newer_counter_across_wrap():
    keys = card.CardKeys(PARK, b"\x01\x02\x03\x04")
    old = card.WalletSlot(0xFFFF, 500).encode(keys, 5)
    new = card.WalletSlot(0x0000, 400).encode(keys, 6)
    slot, write_block = card.read_slots(old, new, keys)
    assert (slot.counter, slot.balance_cents, write_block) == (0, 400, 5)


def test_torn_slot_falls_back_to_the_other():
    keys = card.CardKeys(PARK, b"\x01\x02\x03\x04")
    good = card.WalletSlot(3, 700).encode(keys, 5)
    newer = card.WalletSlot(4, 600).encode(keys, 6)
    for cut in range(16):  # a write torn after `cut` bytes: new prefix over a blank block
        torn = newer[:cut] + bytes(16 - cut)
        slot, write_block = card.read_slots(good, torn, keys)
        assert (slot.counter, slot.balance_cents, write_block) == (3, 700, 6)


def test_no_valid_slot_is_bad_mac():
    keys = card.CardKeys(PARK, b"\x01\x02\x03\x04")
    with pytest.raises(BadMac):
        card.read_slots(bytes(16), bytes(16), keys)


@pytest.mark.parametrize("field,value", [("balance_cents", card.BALANCE_MAX_CENTS + 1), ("balance_cents", -1),
                                         ("day_spend_cents", 1 << 24)])
def test_slot_range_checks(field, value):
    slot = card.WalletSlot()
    setattr(slot, field, value)
    with pytest.raises(Malformed):
        slot.encode(card.CardKeys(PARK, b"\x01\x02\x03\x04"), 5)


def test_record_rejects_bad_input():
    rmac = record.record_mac_for(KEY)
    good = record.Record(record.KIND_DEBIT, 1, 1, 0, 1, b"\x01\x02\x03\x04", 1, 100, 0).encode(rmac)
    with pytest.raises(Malformed):
        record.Record.decode(good[:-1], rmac)
    with pytest.raises(Unsupported):
        record.Record.decode(b"\x03" + good[1:])
    with pytest.raises(Malformed):                   # a version 2 record is 64 bytes
        record.Record.decode(b"\x02" + good[1:])
    with pytest.raises(Malformed):
        record.Record(99, 1, 1, 0, 1, b"\x01\x02\x03\x04", 1, 100, 0).encode(rmac)
    with pytest.raises(Malformed):
        record.Record(record.KIND_DEBIT, 1, 1, 0, 1, b"\x01\x02", 1, 100, 0).encode(rmac)
    tampered = bytearray(good)
    tampered[30] ^= 0x01
    with pytest.raises(BadMac):
        record.Record.decode(bytes(tampered), rmac)


def test_frame_rejects_oversized_and_truncated():
    fmac = frames.frame_mac_for(KEY)
    with pytest.raises(Malformed):
        frames.encode(fmac, frames.T_UPLOAD, 1, 1, 0, b"x" * (frames.BODY_MAX + 1))
    frame = frames.encode(fmac, frames.T_TIME, 1, 1, 0)
    for cut in range(len(frame)):
        with pytest.raises(Malformed):
            frames.decode(fmac, frame[:cut])
    with pytest.raises(Unsupported):
        frames.decode(fmac, frame[:2] + b"\x09" + frame[3:])
    with pytest.raises(BadMac):
        frames.decode(frames.frame_mac_for(b"U" * 32), frame)


def test_frame_body_is_a_view_of_a_memoryview_and_a_copy_of_bytes():
    fmac = frames.frame_mac_for(KEY)
    body = hub_frames.blacklist_body(0, 1, frames.BL_DELTA, 0, 1, [5001, 5003], [])
    frame = frames.encode(fmac, frames.T_BLACKLIST, 1, 7, 1800000000, body)
    copied = frames.decode(fmac, frame)
    assert type(copied.body) is bytes and copied.body == body  # the hub's frames, as before
    buf = bytearray(frame)
    viewed = frames.decode(fmac, memoryview(buf))  # a terminal's read buffer
    assert isinstance(viewed.body, memoryview) and bytes(viewed.body) == body
    assert frames.parse_blacklist(viewed.body) == frames.parse_blacklist(body) == (0, 1, 0, 0, 1, (5001, 5003), ())
    buf[frames.HEADER_SIZE + 17] ^= 1  # verified in place: the next packet read into it shows through the view
    assert bytes(viewed.body) != body
    buf[-1] ^= 1
    with pytest.raises(BadMac):
        frames.decode(fmac, memoryview(buf))


def test_upload_body_count_must_match():
    rec = b"\x01" + bytes(record.RECORD_SIZE - 1)
    body = hub_frames.upload_body([(1, rec), (2, rec)])
    assert hub_frames.parse_upload(body) == [(1, rec), (2, rec)]
    with pytest.raises(Malformed):
        hub_frames.parse_upload(body[:-1])
    with pytest.raises(Malformed):
        hub_frames.parse_upload(b"\x03" + body[1:])
    with pytest.raises(Malformed):
        hub_frames.upload_body([(1, rec)] * (frames.UPLOAD_RECORDS_MAX + 1))


def test_upload_entries_are_sized_by_their_record_version():
    v1 = b"\x01" + bytes(record.RECORD_SIZE - 1)
    v2 = b"\x02" + bytes(record.RECORD_V2_SIZE - 1)
    body = hub_frames.upload_body([(1, v2), (3, v1), (1, v2)])
    assert len(body) == 1 + 3 + 2 * 64 + 56
    assert hub_frames.parse_upload(body) == [(1, v2), (3, v1), (1, v2)]
    with pytest.raises(Malformed):                      # a v2 entry cut to a v1 size
        hub_frames.parse_upload(b"\x01\x01" + v2[:record.RECORD_SIZE])
    with pytest.raises(Malformed, match="unknown version 9"):       # before another: its size is unknown
        hub_frames.parse_upload(b"\x02\x01\x09" + bytes(55) + b"\x01" + v1)
    v9 = b"\x09" + bytes(70)                           # last: the rest of the body, for the record checks
    assert hub_frames.parse_upload(b"\x02\x01" + v1 + b"\x01" + v9) == [(1, v1), (1, v9)]
    with pytest.raises(Malformed):                      # the encoder refuses bytes whose version does not fit
        hub_frames.upload_body([(1, v2[:record.RECORD_SIZE])])


def test_blacklist_body_must_be_ascending():
    body = hub_frames.blacklist_body(1, 2, frames.BL_DELTA, 0, 1, [5, 3], [])
    with pytest.raises(Malformed):
        frames.parse_blacklist(body)
    with pytest.raises(Malformed):          # before any number is handed out
        frames.parse_blacklist_stream(hub_frames.blacklist_body(1, 2, frames.BL_DELTA, 0, 1, [3], [9, 9]))


def test_a_blacklist_streamed_from_its_body_gives_the_numbers_parse_blacklist_gives():
    body = hub_frames.blacklist_body(4, 9, frames.BL_SNAPSHOT, 1, 3, [7, 0xFFFFFFFF], [2])
    streamed = frames.parse_blacklist_stream(body)
    assert streamed[:5] == (4, 9, frames.BL_SNAPSHOT, 1, 3)
    assert (list(streamed[5]), list(streamed[6])) == ([7, 0xFFFFFFFF], [2])
    assert frames.parse_blacklist(body) == (4, 9, frames.BL_SNAPSHOT, 1, 3, (7, 0xFFFFFFFF), (2,))


def test_topics_roundtrip_and_reject_foreign():
    assert topics.topic(12, topics.UP) == "parkcard/term-12/up"
    assert topics.terminal_of("parkcard/term-12/up") == 12
    for bad in ("parkcard/term-0/up", "parkcard/term-99999/up", "parkcard/term-x/up", "other/term-1/up",
                "parkcard/term-1/up/extra", "parkcard/hub/up",
                # digits only in ASCII and in one spelling: str.isdigit() is true for all of these
                "parkcard/term-\u00b2/up", "parkcard/term-\u2460/up", "parkcard/term-\u0661/up",
                "parkcard/term-01/up", "parkcard/term-/up", "parkcard/term-+1/up", "parkcard/term- 1/up"):
        assert topics.terminal_of(bad) is None


def test_the_config_price_limit_is_the_card_balance_maximum():
    """protocol.config keeps its own copy (the sync stack must not load the card codec): they must agree."""
    from protocol import card, hub_frames
    assert hub_frames.PRICE_MAX_CENTS == card.BALANCE_MAX_CENTS


def test_the_hubs_names_for_the_terminals_private_constants_agree():
    """frames.py, card_write.py and config.py keep these unnamed on the terminal (a name costs its heap);
    hub_frames names them."""
    from protocol import card_write, config, hub_frames
    for name in ("STATUS_FMT", "SYNC_FMT", "AUTH_FMT", "ACK_FMT", "BL_FMT", "COMMAND_FMT"):
        assert getattr(hub_frames, name) == getattr(frames, "_" + name), name
    for name in ("CARD_WRITE_BLOCKS_MAX", "CARD_WRITE_FMT", "CARD_RESULT_FMT"):
        assert getattr(hub_frames, name) == getattr(card_write, "_" + name), name
    for name in ("MERCHANT_ID_MAX", "PARK_ID_MAX", "PRICE_MAX_CENTS", "OFFLINE_S_MAX"):
        assert getattr(hub_frames, name) == getattr(config, "_" + name), name


@pytest.mark.parametrize("made", [
    record.Record(record.KIND_DEBIT, 3, 17, 1796000000, 123456, b"\x04\x55\x66\x77", 5, 100, 9000, 7, 20, 1, 4,
                  b"\x01\x02\x03\x04"),
    record.Record(record.KIND_REFUND, 3, 18, 1796000001, 123456, b"\x04\x55\x66\x77\x01\x02\x03", 6, 100, 9100,
                  ref_seq=17, version=record.RECORD_V2),
    record.Record(record.KIND_ISSUE, 65534, 1, 1796000002, 7, b"\x04\x01\x02\x03", 1, 5000, 5000, deposit_cents=500,
                  version=record.RECORD_V2),
], ids=["v1 debit", "v2 refund", "v2 issue"])
def test_a_decoded_record_holds_the_attributes_the_constructor_gives_it_and_no_others(made):
    # decode sets the fields itself, without __init__: a field added to one and not the other fails here.
    rmac = record.record_mac_for(KEY)
    raw = made.encode(rmac)
    assert vars(record.Record.decode(raw, rmac)) == vars(made)
    assert vars(record.Record.decode(bytearray(raw))) == vars(made)     # copied out of a buffer it may outlive
    line = record.Record.decode(raw)
    line.quantity = 3
    assert vars(record.Record.decode(line.encode(rmac))) == vars(line)  # a sale line's quantity, set only then
