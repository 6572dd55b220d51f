"""Desk terminals write the cards the hub prepared (SPEC.md §5.7), on the virtual reader."""

import pytest

from protocol import admin_card, card, card_issue, card_write, hub_frames
from protocol.errors import Malformed
from sim.mfrc522 import VirtualMFRC522
from sim.mifare import MifareClassic1K, Field
from terminal.roles.desk import CardWriter
from terminal.rc522 import RC522

PARK = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32)
TRANSPORT = b"T" * 32
UID = bytes.fromhex("04adadadadad01")


def rig():
    field = Field()
    chip = VirtualMFRC522(field)
    reader = RC522(chip.spi, chip.cs)
    reader.init()
    results = []
    return field, CardWriter(reader, lambda *r: results.append(r)), results


def admin_blocks():
    blocks = admin_card.seal(TRANSPORT, PARK, 900001, UID, b"n" * admin_card.NONCE_SIZE, desk=True)
    blocks.update(admin_card.trailer_blocks(TRANSPORT, PARK, UID, desk=True))
    return sorted(blocks.items())


def test_a_blank_card_becomes_the_admin_card_the_hub_sealed():
    field, writer, results = rig()
    blank = field.add(MifareClassic1K(UID))
    writer.start(7, UID, admin_blocks())
    assert writer.poll() == card_write.CARD_OK
    assert results == [(7, UID, card_write.CARD_OK, 0)]
    for block, data in admin_blocks():
        assert bytes(blank.blocks[block]) == data
    # and it opens under the transport key like any admin card
    number, keys = admin_card.unseal(TRANSPORT, {b: bytes(blank.blocks[b]) for b in range(64)}, UID, desk=True)
    assert number == 900001 and keys.pack() == PARK.pack()
    assert writer.poll() is None  # the job is done


def test_another_card_is_left_alone_and_the_job_waits():
    field, writer, results = rig()
    other = field.add(MifareClassic1K(bytes.fromhex("01020304")))
    before = [bytes(b) for b in other.blocks]
    writer.start(8, UID, admin_blocks())
    assert writer.poll() is None and results == []
    assert [bytes(b) for b in other.blocks] == before
    field.remove(other)
    field.add(MifareClassic1K(UID))
    assert writer.poll() == card_write.CARD_OK


def test_a_card_that_is_not_blank_is_refused_untouched():
    field, writer, results = rig()
    used = MifareClassic1K(UID)
    keys = card.CardKeys(PARK, UID)
    used.blocks[7][:] = card_issue.trailer_block(keys)   # sector 1 already personalised
    field.add(used)
    before = [bytes(b) for b in used.blocks]
    writer.start(9, UID, admin_blocks())
    assert writer.poll() == card_write.CARD_NOT_BLANK
    assert results[0][2] == card_write.CARD_NOT_BLANK and results[0][3] == 4
    assert [bytes(b) for b in used.blocks] == before


def test_a_card_pulled_during_the_write_is_reported_failed():
    field, writer, results = rig()
    field.add(MifareClassic1K(UID))
    field.remove_after(12)
    writer.start(10, UID, admin_blocks())
    assert writer.poll() == card_write.CARD_WRITE_FAILED
    assert results[0][2] == card_write.CARD_WRITE_FAILED


@pytest.mark.parametrize("body", [b"", b"\x00" * 12, hub_frames.card_write_body(1, UID, {4: bytes(16)})[:-1]])
def test_malformed_card_writes_are_refused(body):
    with pytest.raises(Malformed):
        card_write.parse_card_write(body)


def test_card_write_codec_refuses_bad_blocks():
    for blocks in ({}, {0: bytes(16)}, {64: bytes(16)}, {4: bytes(15)}):
        with pytest.raises(Malformed):
            hub_frames.card_write_body(1, UID, blocks)
    request_id, uid, blocks = card_write.parse_card_write(hub_frames.card_write_body(3, UID, {8: b"b" * 16, 4: b"a" * 16}))
    assert (request_id, uid, [b for b, _ in blocks]) == (3, UID, [4, 8])
