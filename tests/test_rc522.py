"""The RC522 driver against the register-level MFRC522 emulator and virtual cards."""

import asyncio
from types import SimpleNamespace

import pytest

from conftest import MPY_SCRIPTS, REPO
from sim.mfrc522 import VirtualMFRC522
from sim.mifare import (
    ACCESS_TRANSPORT,
    HALT,
    IDLE,
    KEY_TRANSPORT,
    Field,
    MifareClassic1K,
    access_bytes,
    access_conditions,
    crc_a,
    value_block,
    value_of,
    with_crc,
)
from terminal import rc522
from terminal.rc522 import RC522, AuthError, Collision, CrcError, NoCard, ProtocolError, Timeout
from terminal.rc522_values import ValueBlockRC522

UID4 = bytes.fromhex("a1b2c3d4")
UID7 = bytes.fromhex("04a1b2c3d4e5f6")
KEY_A = bytes.fromhex("a0a1a2a3a4a5")
KEY_B = bytes.fromhex("b0b1b2b3b4b5")


@pytest.fixture
def rig():
    field = Field()
    chip = VirtualMFRC522(field)
    reader = ValueBlockRC522(chip.spi, chip.cs, timeout_ms=50)   # the driver, value blocks included
    reader.init()
    return SimpleNamespace(field=field, chip=chip, reader=reader)


def tap(rig, uid=UID4, blocks=None):
    """Put a card in the field and activate it; returns the card."""
    card = rig.field.add(MifareClassic1K(uid, blocks))
    assert rig.reader.detect() == (uid, 0x08)
    return card


def poke(chip, reg, *values):
    """Write values to one register in one SPI transaction (MFRC522 §8.1.2.2)."""
    chip.cs(0)
    chip.spi.write(bytes(((reg << 1) & 0x7E,) + values))
    chip.cs(1)


def keyed_sector(card, sector, conditions, key_a=KEY_A, key_b=KEY_B):
    card.blocks[sector * 4 + 3][:] = key_a + access_bytes(conditions) + key_b


# -- the virtual card on its own -----------------------------------------------------


def test_crc_a_matches_iso14443_vectors():
    assert crc_a(b"\x00\x00") == 0x1EA0          # ISO/IEC 14443-3 Annex B: A0 1E
    assert with_crc(b"\x50\x00") == bytes.fromhex("500057cd")   # HLTA
    assert crc_a(with_crc(bytes(range(16)))) == 0


def test_access_bytes_round_trip_and_transport_value():
    assert access_bytes((0, 0, 0, 1)) == ACCESS_TRANSPORT
    trailer = KEY_A + access_bytes((6, 2, 4, 3)) + KEY_B
    assert access_conditions(trailer) == (6, 2, 4, 3)
    broken = bytearray(trailer)
    broken[6] ^= 0x01
    assert access_conditions(broken) is None


def test_new_card_has_manufacturer_block_and_transport_trailers():
    card4, card7 = MifareClassic1K(UID4), MifareClassic1K(UID7)
    bcc = UID4[0] ^ UID4[1] ^ UID4[2] ^ UID4[3]
    assert bytes(card4.blocks[0][:8]) == UID4 + bytes((bcc, 0x08, 0x04, 0x00))
    assert bytes(card7.blocks[0][:10]) == UID7 + b"\x08\x44\x00"
    assert all(bytes(card4.blocks[s * 4 + 3]) == KEY_TRANSPORT + ACCESS_TRANSPORT + KEY_TRANSPORT for s in range(16))
    with pytest.raises(ValueError):
        MifareClassic1K(b"\x01\x02\x03")


# -- the chip emulator's SPI ------------------------------------------------------------


def test_emulator_spi_address_byte_protocol(rig):
    chip = rig.chip
    poke(chip, 0x09, 0x11, 0x22, 0x33)      # burst into FIFODataReg
    assert chip.reg(0x0A) == 3
    read = (0x09 << 1) | 0x80
    got = bytearray(4)
    chip.cs.value(0)
    chip.spi.write_readinto(bytes((read, read, read, 0)), got)
    chip.cs.value(1)
    assert bytes(got[1:]) == b"\x11\x22\x33"
    chip.spi.write(b"\x12\x00")     # CS high: the chip ignores it
    assert chip.ignored_bytes == 2


def test_emulator_mem_transmit_receive_and_irq_write_one_to_clear(rig):
    chip = rig.chip
    poke(chip, 0x09, *range(25))
    poke(chip, 0x01, 0x01)                  # Mem: FIFO -> internal buffer
    assert chip.reg(0x0A) == 0
    poke(chip, 0x01, 0x01)                  # Mem again, FIFO empty: buffer -> FIFO
    assert chip.reg(0x0A) == 25
    poke(chip, 0x0A, 0x80)                  # FlushBuffer
    poke(chip, 0x04, 0x7F)                  # ComIrqReg: Set1 = 0 clears
    assert chip.reg(0x04) == 0
    poke(chip, 0x04, 0x81)                  # Set1 = 1 sets the marked bit
    assert chip.reg(0x04) == 0x01
    poke(chip, 0x04, 0x7F)
    poke(chip, 0x09, 0x26)
    poke(chip, 0x01, 0x04)                  # Transmit: sent, no reception
    assert chip.reg(0x04) & 0x50 == 0x50 and chip.card_commands == 1
    poke(chip, 0x04, 0x7F)
    poke(chip, 0x01, 0x08)                  # Receive: nothing arrives unasked
    assert chip.reg(0x04) == 0 and chip.reg(0x01) & 0x0F == 0x08
    poke(chip, 0x08, 0x08)                  # Status2Reg: only MFAuthent sets MFCrypto1On
    assert chip.reg(0x08) & 0x08 == 0


def test_init_programs_timer_ask_crc_preset_and_antenna(rig):
    chip = rig.chip
    assert rig.reader.version() == 0x92
    assert chip.reg(0x2A) == 0x82 and chip.reg(0x2B) == 0xA5    # TModeReg TAuto, prescaler 677: 0.1 ms ticks
    assert (chip.reg(0x2C) << 8 | chip.reg(0x2D)) == 9          # 1 ms for the next REQA
    assert chip.reg(0x15) == 0x40           # TxASKReg Force100ASK
    assert chip.reg(0x11) & 0x03 == 0x01    # ModeReg CRCPreset 6363h
    assert chip.reg(0x14) & 0x03 == 0x03    # TxControlReg antenna on
    assert rig.field.powered
    assert chip.ignored_bytes == 0


# -- activation -----------------------------------------------------------------------------


@pytest.mark.parametrize("uid, atqa", [(UID4, 0x0004), (UID7, 0x0044)])
def test_request_and_select_both_uid_lengths(rig, uid, atqa):
    rig.field.add(MifareClassic1K(uid))
    assert rig.reader.request() == atqa
    assert rig.reader.select() == (uid, 0x08)
    # 7-byte UIDs take two cascade levels: two anticollision + two select frames.
    selects = [entry for entry in rig.chip.log if entry[0] in (0x93, 0x95)]
    assert len(selects) == (2 if len(uid) == 4 else 4)


def test_no_card_in_empty_field_and_with_antenna_off(rig):
    with pytest.raises(NoCard):
        rig.reader.request()
    assert rig.reader.detect() is None
    rig.field.add(MifareClassic1K(UID4))
    rig.reader.antenna_off()
    assert not rig.field.powered
    assert rig.reader.detect() is None
    rig.reader.antenna_on()
    assert rig.reader.detect() == (UID4, 0x08)


def test_two_cards_collide_at_first_differing_uid_bit(rig):
    rig.field.add(MifareClassic1K(bytes.fromhex("a1b2c3d4")))
    rig.field.add(MifareClassic1K(bytes.fromhex("a1b2c7d4")))    # byte 2 differs in bit 2
    assert rig.reader.request() == 0x0004   # identical ATQAs do not collide
    with pytest.raises(Collision, match="bit 19"):
        rig.reader.select()
    assert rig.chip.reg(0x0E) & 0x1F == 19  # CollReg CollPos, 1-based


def test_cards_of_different_uid_sizes_collide_in_atqa(rig):
    rig.field.add(MifareClassic1K(UID4))    # ATQA 0x0004
    rig.field.add(MifareClassic1K(UID7))    # ATQA 0x0044: bit 7 differs
    with pytest.raises(Collision, match="bit 7"):
        rig.reader.detect()


def test_halt_then_only_wupa_wakes_the_card(rig):
    card = tap(rig)
    rig.reader.halt()
    assert card.state == HALT
    assert rig.reader.detect() is None
    assert rig.reader.detect(wakeup=True) == (UID4, 0x08)


# -- authentication --------------------------------------------------------------------------


def test_wrong_key_raises_auth_error_then_reselect_works(rig):
    card = tap(rig)
    keyed_sector(card, 1, (0, 0, 0, 3))
    with pytest.raises(AuthError):
        rig.reader.auth(4, KEY_TRANSPORT, UID4)
    assert card.state == IDLE
    assert rig.reader.reselect(UID4) == (UID4, 0x08)
    rig.reader.auth(4, KEY_A, UID4)
    assert rig.reader.read_block(4) == bytes(16)


def test_seven_byte_uid_authenticates_with_uid3_to_uid6(rig):
    tap(rig, UID7)
    with pytest.raises(AuthError):
        rig.reader.auth(4, KEY_TRANSPORT, UID7[:4])     # the CL1 bytes are the wrong ones
    rig.reader.reselect(UID7)
    rig.reader.auth(4, KEY_TRANSPORT, UID7)
    rig.reader.write_block(4, b"seven byte uid!!")
    assert rig.reader.read_block(4) == b"seven byte uid!!"


# -- memory and value operations ---------------------------------------------------------------


@pytest.mark.parametrize("uid", [UID4, UID7])
def test_write_read_and_value_operations(rig, uid):
    card = tap(rig, uid)
    reader = rig.reader
    reader.auth(8, KEY_TRANSPORT, uid)
    reader.write_block(8, value_block(1000, 8))
    reader.increment(8, 250)
    reader.transfer(8)
    assert value_of(reader.read_block(8)) == 1250
    reader.decrement(8, 1300)
    reader.transfer(9)
    assert value_of(card.blocks[9]) == -50 and card.blocks[9][12] == 8
    reader.restore(8)
    reader.transfer(10)
    assert bytes(card.blocks[10]) == bytes(card.blocks[8])
    reader.halt()
    assert not rig.chip.reg(0x08) & 0x08    # Status2Reg MFCrypto1On cleared


def test_value_operation_on_a_plain_data_block_is_nak(rig):
    card = tap(rig)
    rig.reader.auth(4, KEY_TRANSPORT, UID4)
    rig.reader.write_block(4, b"not a value blk!")
    with pytest.raises(ProtocolError, match="NAK"):
        rig.reader.increment(4, 1)
    assert bytes(card.blocks[4]) == b"not a value blk!"


def test_manufacturer_block_is_read_only(rig):
    card = tap(rig)
    rig.reader.auth(0, KEY_TRANSPORT, UID4)
    with pytest.raises(ProtocolError, match="NAK"):
        rig.reader.write_block(0, bytes(16))
    assert bytes(card.blocks[0][:4]) == UID4


def test_counters_match_the_emulator(rig):
    tap(rig)
    rig.reader.auth(4, KEY_TRANSPORT, UID4)
    rig.reader.read_block(4)
    assert rig.reader.card_commands == rig.chip.card_commands == len(rig.chip.log) == 5
    assert rig.reader.spi_transfers == rig.chip.spi_transactions
    assert rig.chip.log[-1] == (0x30, 4, 18)
    assert rig.chip.ignored_bytes == 0


# -- access conditions, MF1S50yyX §8.7 ---------------------------------------------------------

# (conditions of block 0, 1, 2 of the sector, key, op, allowed)
DATA_ACCESS_CASES = [
    (2, "a", "write", False),    # 010 read only
    (2, "a", "read", True),
    (4, "a", "write", False),    # 100 write with key B only
    (4, "b", "write", True),
    (3, "a", "read", False),     # 011 key B only
    (3, "b", "read", True),
    (6, "a", "increment", False),  # 110 value block: increment with key B only
    (6, "b", "increment", True),
    (6, "a", "decrement", True),
    (1, "b", "increment", False),  # 001 decrement only
    (1, "b", "decrement", True),
    (7, "b", "read", False),
]


@pytest.mark.parametrize("cond, key, op, allowed", DATA_ACCESS_CASES)
def test_data_block_access_conditions(rig, cond, key, op, allowed):
    card = tap(rig)
    keyed_sector(card, 2, (cond, cond, cond, 3))    # trailer 011: key B not readable
    card.blocks[8][:] = value_block(10, 8)
    before = bytes(card.blocks[8])
    reader = rig.reader
    reader.auth(8, KEY_B if key == "b" else KEY_A, UID4, use_key_b=key == "b")
    action = {
        "read": lambda: reader.read_block(8),
        "write": lambda: reader.write_block(8, value_block(99, 8)),
        "increment": lambda: reader.increment(8, 5),
        "decrement": lambda: reader.decrement(8, 5),
    }[op]
    if allowed:
        action()
    else:
        with pytest.raises(ProtocolError, match="NAK"):
            action()
        assert bytes(card.blocks[8]) == before


def test_trailer_read_hides_key_a_and_unreadable_key_b(rig):
    card = tap(rig)
    keyed_sector(card, 3, (0, 0, 0, 3))
    rig.reader.auth(15, KEY_A, UID4)
    assert rig.reader.read_block(15) == bytes(6) + access_bytes((0, 0, 0, 3)) + bytes(6)


def test_readable_key_b_cannot_be_used(rig):
    card = tap(rig)
    keyed_sector(card, 1, (0, 0, 0, 1))     # transport trailer 001: key B readable
    rig.reader.auth(7, KEY_A, UID4)
    assert rig.reader.read_block(7)[10:] == KEY_B
    rig.reader.reselect(UID4)
    rig.reader.auth(4, KEY_B, UID4, use_key_b=True)
    with pytest.raises(ProtocolError, match="NAK"):
        rig.reader.read_block(4)


def test_trailer_write_changes_only_what_the_key_may_change(rig):
    card = tap(rig)
    keyed_sector(card, 1, (0, 0, 0, 3))     # 011: key B writes keys and access bits
    new_access = access_bytes((2, 2, 2, 3))
    rig.reader.auth(7, KEY_A, UID4)
    with pytest.raises(ProtocolError, match="NAK"):
        rig.reader.write_block(7, KEY_B + new_access + KEY_A)
    rig.reader.reselect(UID4)
    rig.reader.auth(7, KEY_B, UID4, use_key_b=True)
    rig.reader.write_block(7, KEY_B + new_access + KEY_A)
    assert bytes(card.blocks[7]) == KEY_B + new_access + KEY_A


# -- injected faults --------------------------------------------------------------------------


def test_corrupted_answer_raises_crc_error_and_wakeup_recovers(rig):
    tap(rig)
    rig.reader.auth(4, KEY_TRANSPORT, UID4)
    rig.chip.corrupt_next_response()
    with pytest.raises(CrcError):
        rig.reader.read_block(4)
    assert rig.reader.read_block(4) == bytes(16)    # the card itself is still fine
    # A card left active is found again by detect(wakeup=True): the first WUPA
    # only drops it to IDLE (ISO/IEC 14443-3), the second wakes it.
    rig.chip.log.clear()
    assert rig.reader.detect(wakeup=True) == (UID4, 0x08)
    assert [entry for entry in rig.chip.log if entry[0] == 0x52] == [(0x52, 1, 0), (0x52, 1, 2)]


@pytest.mark.parametrize("error_bits", [0x01, 0x02, 0x10])   # ProtocolErr, ParityErr, BufferOvfl
def test_receive_errors_raise_protocol_error(rig, error_bits):
    tap(rig)
    rig.reader.auth(4, KEY_TRANSPORT, UID4)
    rig.chip.error_next_response(error_bits)
    with pytest.raises(ProtocolError, match="ErrorReg 0x%02x" % error_bits):
        rig.reader.read_block(4)


class _RegisterReadCounter:
    """The emulator's SPI, counting single-register reads per register address."""

    def __init__(self, spi):
        self._spi = spi
        self.reads = {}

    def write(self, buf):
        self._spi.write(buf)

    def write_readinto(self, out, into):
        if len(out) == 2 and out[0] & 0x80:          # MSB 1 = read (§8.1.2.3)
            reg = (out[0] >> 1) & 0x3F
            self.reads[reg] = self.reads.get(reg, 0) + 1
        self._spi.write_readinto(out, into)


@pytest.mark.parametrize("clock", ["running", "stopped"])
def test_chip_that_never_finishes_raises_timeout_after_bounded_polls(rig, monkeypatch, clock):
    """The wait for ComIrqReg ends after timeout_ms of ticks, or after _POLLS_MAX polls should the clock stop."""
    rig.field.add(MifareClassic1K(UID4))
    spi = _RegisterReadCounter(rig.chip.spi)
    reader = RC522(spi, rig.chip.cs, timeout_ms=20)
    reader.init()
    ticks, looks = [1000], [0]

    def ticks_ms():                                    # one millisecond per look at the clock, or none
        looks[0] += 1
        assert looks[0] < 1000, "the driver never gave up waiting"   # fail, do not hang
        if clock == "running":
            ticks[0] += 1
        return ticks[0]

    with monkeypatch.context() as patch:
        patch.setattr(rc522, "ticks_ms", ticks_ms)
        patch.setattr(rc522, "_POLLS_MAX", 50)
        spi.reads.clear()
        rig.chip.hang_next_command()
        with pytest.raises(Timeout, match="register 0x04"):
            reader.request()
    assert spi.reads[0x04] == (20 if clock == "running" else 50) + 1   # ComIrqReg polls
    assert rig.chip.reg(0x01) & 0x0F == 0   # the driver put the chip back to Idle
    assert reader.detect() == (UID4, 0x08)


def test_chip_timer_off_means_timeout_not_no_card(rig):
    rig.reader.timeout_ms = 20
    poke(rig.chip, 0x2A, 0x0D)      # TModeReg without TAuto
    with pytest.raises(Timeout):
        rig.reader.request()


def test_card_removed_mid_write_keeps_old_block(rig):
    card = tap(rig)
    rig.reader.auth(4, KEY_TRANSPORT, UID4)
    rig.reader.write_block(4, b"A" * 16)
    rig.field.remove_after(2)       # the data frame of the next WRITE
    with pytest.raises(NoCard):
        rig.reader.write_block(4, b"B" * 16)
    assert bytes(card.blocks[4]) == b"A" * 16
    assert card not in rig.field.cards
    assert rig.reader.detect(wakeup=True) is None


def test_torn_write_leaves_partial_block(rig):
    card = tap(rig)
    rig.reader.auth(4, KEY_TRANSPORT, UID4)
    rig.reader.write_block(4, b"A" * 16)
    rig.field.tear_next_write(5)
    with pytest.raises(NoCard):
        rig.reader.write_block(4, b"B" * 16)
    assert bytes(card.blocks[4]) == b"B" * 5 + b"A" * 11
    assert card not in rig.field.cards


def test_bad_arguments_are_named_errors(rig):
    tap(rig)
    commands = rig.chip.card_commands
    with pytest.raises(ValueError):
        rig.reader.auth(4, b"short", UID4)
    with pytest.raises(ValueError):
        rig.reader.write_block(4, bytes(15))
    with pytest.raises(ValueError):
        rig.reader.increment(5, 1 << 31)
    with pytest.raises(ValueError):
        rig.reader.decrement(5, -(1 << 31) - 1)
    with pytest.raises(ValueError):
        rig.reader.auth(256, KEY_TRANSPORT, UID4)
    with pytest.raises(ValueError):
        rig.reader.auth(4, KEY_TRANSPORT, UID4 + b"\x00")    # UIDs are 4, 7 or 10 bytes
    with pytest.raises(ValueError):
        rig.reader.read_block(-1)
    assert rig.chip.card_commands == commands     # nothing bad reached the card


def test_reselect_refuses_another_card(rig):
    tap(rig)
    with pytest.raises(ProtocolError, match="another card"):
        rig.reader.reselect(UID7)


# -- MicroPython ------------------------------------------------------------------------------


@pytest.mark.micropython
def test_driver_and_emulator_under_micropython(micropython):
    # The virtual chip and its cards share this heap with the driver (on a board they are hardware): at
    # 100k their blocks failed now and then to find room, so this correctness check gets 20 KB more.
    proc = micropython(REPO / "tests" / "mpy" / "rc522_check.py", heap="120k")
    assert proc.stdout.strip().splitlines()[-1] == "rc522_check ok 17"



# -- the chip's timer, MFRC522 §8.5 and §9.3.3.10-12 -------------------------------------------


class ChipClock:
    """The chip's time for a test: stopped, or stepping on every look (the counter runs as the driver polls)."""

    def __init__(self, step_us=0):
        self.now_us = 0
        self.step_us = step_us

    def __call__(self):
        self.now_us += self.step_us
        return self.now_us


def chip_rig(clock, **reader_args):
    field = Field()
    chip = VirtualMFRC522(field, clock=clock)
    reader = RC522(chip.spi, chip.cs, timeout_ms=50, **reader_args)
    reader.init()
    return SimpleNamespace(field=field, chip=chip, reader=reader)


def test_timer_counts_down_only_between_tstartnow_and_zero_or_tstopnow():
    clock = ChipClock()
    chip = chip_rig(clock).chip
    poke(chip, 0x2A, 0x02)                  # TModeReg: no TAuto, prescaler 0x2A5 -> 0.1 ms a count
    poke(chip, 0x2C, 0)
    poke(chip, 0x2D, 9)                     # TReload 9: (9 + 1) counts = 1 ms
    poke(chip, 0x04, 0x7F)
    clock.now_us += 5000
    assert chip.reg(0x04) & 0x01 == 0 and chip.reg(0x07) & 0x08 == 0    # stopped: no TimerIRq, not TRunning
    poke(chip, 0x0C, 0x40)                  # ControlReg TStartNow
    assert chip.reg(0x07) & 0x08 and chip.reg(0x0C) & 0xC0 == 0         # TRunning; the bits read back 0
    clock.now_us += 500
    assert chip.reg(0x2F) == 4 and chip.reg(0x04) & 0x01 == 0          # TCounterVal after 5 counts
    clock.now_us += 498
    assert chip.reg(0x04) & 0x01 == 0
    clock.now_us += 1                       # 10 * 1355 / 13.56 MHz = 999.3 us
    assert chip.reg(0x04) & 0x01 and chip.reg(0x07) & 0x08 == 0        # zero: TimerIRq, stopped
    poke(chip, 0x04, 0x7F)
    poke(chip, 0x0C, 0x40)
    clock.now_us += 300
    poke(chip, 0x0C, 0x80)                  # ControlReg TStopNow
    clock.now_us += 10000
    assert chip.reg(0x04) & 0x01 == 0 and chip.reg(0x07) & 0x08 == 0


def test_no_answer_times_out_only_when_the_chip_clock_runs():
    stopped = chip_rig(ChipClock(0))
    stopped.reader.timeout_ms = 5
    with pytest.raises(Timeout):            # TAuto started the counter, but no time passes: no TimerIRq
        stopped.reader.request()
    running = chip_rig(ChipClock(10))       # 10 us of chip time per look at the clock
    spi = _RegisterReadCounter(running.chip.spi)
    reader = RC522(spi, running.chip.cs, timeout_ms=50)
    reader.init()
    with pytest.raises(NoCard):
        reader.request()
    # The empty field costs the REQA's 1 ms of chip time (ISO/IEC 14443-3), not 25 ms: 100 looks.
    assert 95 <= spi.reads[0x04] <= 105


def test_each_command_waits_what_the_card_needs():
    rig = chip_rig(ChipClock(10))
    reload = []

    class Spy:
        def write(self, buf):
            if buf[0] >> 1 == 0x2D:         # TReloadRegL
                reload.append(buf[1])
            rig.chip.spi.write(buf)

        def write_readinto(self, out, into):
            rig.chip.spi.write_readinto(out, into)

    reader = RC522(Spy(), rig.chip.cs)
    reader.init()
    rig.field.add(MifareClassic1K(UID4))
    reader.detect()
    reader.auth(4, KEY_TRANSPORT, UID4)
    reader.read_block(4)
    reader.write_block(4, bytes(16))
    reader.halt()
    # TReload + 1 counts of 0.1 ms, written only when it changes: activation and auth 1 ms,
    # READ and WRITE part 1 5 ms, WRITE part 2 10 ms, HLTA 1 ms.
    assert [r + 1 for r in reload] == [10, 50, 100, 10]


# -- the IRQ pin, MFRC522 §9.3.1.3-4 --------------------------------------------------------


def test_irq_line_rises_push_pull_for_enabled_interrupts_only():
    rig = chip_rig(ChipClock(0), irq=None)
    chip = rig.chip
    assert chip.irq.value() == 0
    poke(chip, 0x02, 0x33)                  # ComIEnReg: Rx, Idle, Err, Timer; IRqInv 0
    poke(chip, 0x04, 0x7F)                  # clear what reset and init left (IdleIRq)
    poke(chip, 0x04, 0x84)                  # Set1: HiAlertIRq, not enabled
    assert chip.irq.value() == 0 and chip.reg(0x07) & 0x10 == 0
    poke(chip, 0x04, 0x81)                  # TimerIRq: enabled, but open drain (DivIEnReg 0) never rises
    assert chip.reg(0x07) & 0x10 and chip.irq.value() == 0
    poke(chip, 0x03, 0x80)                  # IRQPushPull
    assert chip.irq.value() == 1
    poke(chip, 0x02, 0xB3)                  # IRqInv: low while asserted
    assert chip.irq.value() == 0
    poke(chip, 0x04, 0x7F)
    assert chip.irq.value() == 1


def test_driver_sets_the_irq_pin_up_and_waits_on_its_edge(tmp_path):
    from sim.board import SimBoard
    board = SimBoard(str(tmp_path))
    reader = board.reader()
    chip = board.chip
    assert chip.reg(0x02) == 0x33 and chip.reg(0x03) & 0x80     # sources, active high, push-pull
    before = chip.spi_transactions
    assert asyncio.run(reader.poll_card()) is False             # empty field: the timer's edge ends it
    polled = chip.spi_transactions - before
    board.field.add(MifareClassic1K(UID4))
    chip.log.clear()
    assert asyncio.run(reader.poll_card()) is True
    assert reader.detect() == (UID4, 0x08)
    assert [entry[0] for entry in chip.log].count(0x26) == 1    # detect() went on from the poll's REQA
    # A polled reader reads ComIrqReg again and again for the same millisecond.
    polling = board.reader(irq=False)
    board.field.remove(board.field.cards[0])
    before = chip.spi_transactions
    assert asyncio.run(polling.poll_card()) is False
    assert polled <= 12 < chip.spi_transactions - before


def test_poll_card_hands_a_collision_to_detect(rig):
    rig.field.add(MifareClassic1K(UID4))
    rig.field.add(MifareClassic1K(UID7))    # ATQAs differ in bit 7
    assert asyncio.run(rig.reader.poll_card()) is True
    with pytest.raises(Collision):
        rig.reader.detect()
    assert rig.reader.detect() is None      # the next detect asks again (the cards dropped to IDLE)


# -- Crypto1 on the air, MFRC522 §9.3.1.9 and MF1S50yyX §10.1 -------------------------------------


def test_a_plain_read_after_crypto_off_is_not_answered(rig):
    tap(rig)
    rig.reader.auth(4, KEY_TRANSPORT, UID4)
    assert rig.chip.reg(0x08) & 0x08
    rig.reader.read_block(4)
    rig.reader.stop_crypto()
    with pytest.raises(NoCard):
        rig.reader.read_block(4)
    rig.reader.reselect(UID4)
    rig.reader.auth(4, KEY_TRANSPORT, UID4)
    assert rig.reader.read_block(4) == bytes(16)


def test_a_card_presented_again_under_crypto_does_not_answer(rig, monkeypatch):
    card = tap(rig)
    rig.reader.auth(4, KEY_TRANSPORT, UID4)
    rig.reader.halt()
    rig.field.remove(card)
    rig.field.add(card)
    assert rig.reader.detect() == (UID4, 0x08)  # the driver cleared MFCrypto1On after HLTA
    rig.reader.auth(4, KEY_TRANSPORT, UID4)
    monkeypatch.setattr(rig.reader, "stop_crypto", lambda: None)    # a driver that forgets
    rig.reader.halt()
    rig.field.remove(card)
    rig.field.add(card)
    assert rig.chip.reg(0x08) & 0x08
    assert rig.reader.detect() is None          # its REQA went out enciphered
    assert rig.reader.detect(wakeup=True) is None


def test_nested_authentication_goes_enciphered(rig):
    card = tap(rig)
    keyed_sector(card, 2, (0, 0, 0, 3))
    card.blocks[8][:] = b"sector two data!"
    rig.reader.auth(4, KEY_TRANSPORT, UID4)
    rig.reader.auth(8, KEY_A, UID4)             # Crypto1 stays on: the second AUTH is enciphered
    assert rig.reader.read_block(8) == b"sector two data!"


def test_a_failed_second_authentication_clears_crypto1_and_sets_protocol_err(rig):
    card = tap(rig)
    keyed_sector(card, 2, (0, 0, 0, 3))
    rig.reader.auth(4, KEY_TRANSPORT, UID4)
    with pytest.raises(AuthError):
        rig.reader.auth(8, KEY_TRANSPORT, UID4)     # wrong key for sector 2
    assert rig.chip.reg(0x08) & 0x08 == 0           # §10.3.1.9: MFCrypto1On 0 after a failed MFAuthent
    assert rig.chip.reg(0x06) & 0x01                # ErrorReg ProtocolErr
    assert card.state == IDLE
    # A driver that took the second authentication for granted reads nothing.
    with pytest.raises(NoCard):
        rig.reader.read_block(4)
    rig.reader.reselect(UID4)
    rig.reader.auth(8, KEY_A, UID4)
    assert rig.chip.reg(0x06) == 0


def test_authentication_of_a_card_gone_times_out_without_protocol_err(rig):
    card = tap(rig)
    rig.field.remove(card)
    with pytest.raises(AuthError):
        rig.reader.auth(4, KEY_TRANSPORT, UID4)
    assert rig.chip.reg(0x06) == 0 and rig.chip.reg(0x04) & 0x01   # the timer ended it, no error
    assert rig.chip.reg(0x08) & 0x08 == 0


# -- public transceive, for ISO/IEC 14443-4 later ---------------------------------------------------


def test_transceive_sends_a_frame_with_crc_and_returns_the_answer(rig):
    card = tap(rig)
    card.blocks[4][:] = b"transceive test!"
    rig.reader.auth(4, KEY_TRANSPORT, UID4)
    assert rig.reader.transceive(b"\x30\x04") == b"transceive test!"     # READ as a raw frame
    rig.reader.halt()
    with pytest.raises(NoCard):
        rig.reader.transceive(b"\x30\x04", timeout_ms=2)
    with pytest.raises(ValueError):
        rig.reader.transceive(bytes(63))


@pytest.mark.micropython
def test_an_empty_field_costs_a_handful_of_spi_transactions_when_interrupt_driven(micropython):
    # bench/bench_reader.py prints the loop's stalls; here only what does not depend on time:
    # the poll awaits the IRQ edge instead of reading ComIrqReg until the timer fires.
    got = dict(kv.split("=") for kv in micropython(MPY_SCRIPTS / "reader_stall.py", "irq", 1).stdout.split())
    assert int(got["polls"]) >= 5 and int(got["spi_per_poll"]) <= 12


def test_the_irq_wait_works_in_one_event_loop_after_another(tmp_path):
    from sim.board import SimBoard
    board = SimBoard(str(tmp_path))
    reader = board.reader()
    for _ in range(3):      # host tests run several loops over one terminal
        assert asyncio.run(reader.poll_card()) is False


def test_an_irq_line_that_never_rises_costs_the_command_time_not_the_deadline(tmp_path, monkeypatch):
    from sim.board import SimBoard
    board = SimBoard(str(tmp_path))
    reader = board.reader()
    reader.timeout_ms = 10000
    poke(board.chip, 0x03, 0x00)        # open drain: with no pull-up the line stays low (an unwired IRQ)
    waits = []
    wait_for = asyncio.wait_for

    def recording_wait_for(aw, timeout):
        waits.append(timeout)
        return wait_for(aw, timeout)

    monkeypatch.setattr(asyncio, "wait_for", recording_wait_for)
    edges = board.chip.irq.edges
    for _ in range(3):
        assert asyncio.run(reader.poll_card()) is False
    assert board.chip.irq.edges == edges
    # Each edge is awaited for the REQA's 1 ms time-out and 1 ms more, never the 10 s deadline.
    assert waits and max(waits) <= 0.002
