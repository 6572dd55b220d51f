"""The RC522 driver against the emulated MFRC522 under real MicroPython.

Run by tests/test_rc522.py with a 120 KB heap (the virtual chip shares it); prints "rc522_check ok N"
after N scenarios pass and raises on the first that does not.
"""

import gc

# Each import compiles source on the host; collecting in between keeps the
# parser's transient memory from fragmenting the 100 KB heap.
from terminal.rc522 import AuthError, Collision, CrcError, NoCard, ProtocolError, Timeout
from terminal.rc522_values import ValueBlockRC522

gc.collect()
from sim.mifare import KEY_TRANSPORT, Field, MifareClassic1K, access_bytes, value_block, value_of

gc.collect()
from sim.mfrc522 import VirtualMFRC522, fire_timer_on_time

gc.collect()

UID4 = b"\xa1\xb2\xc3\xd4"
UID7 = b"\x04\xa1\xb2\xc3\xd4\xe5\xf6"
KEY_A = b"\xa0\xa1\xa2\xa3\xa4\xa5"
passed = 0


def check(name, ok):
    global passed
    if not ok:
        raise SystemExit("rc522_check FAILED " + name)
    passed += 1


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


def rig(*uids, irq=False):
    field = Field()
    chip = VirtualMFRC522(field)
    reader = ValueBlockRC522(chip.spi, chip.cs, timeout_ms=20, irq=chip.irq if irq else None)
    reader.init()
    cards = [field.add(MifareClassic1K(uid)) for uid in uids]
    return field, chip, reader, cards


field, chip, reader, _ = rig()
check("version", reader.version() == 0x92)
check("empty field", reader.detect() is None and raises(NoCard, reader.request))

for uid in (UID4, UID7):
    field, chip, reader, (card,) = rig(uid)
    check("select", reader.detect() == (uid, 0x08))
    reader.auth(8, KEY_TRANSPORT, uid)
    reader.write_block(8, value_block(500, 8))
    reader.decrement(8, 120)
    reader.transfer(8)
    check("value", value_of(reader.read_block(8)) == 380)

field, chip, reader, _ = rig(UID4, b"\xa1\xb2\xc7\xd4")
check("collision", reader.request() == 4 and raises(Collision, reader.select))

field, chip, reader, (card,) = rig(UID4)
reader.detect()
card.blocks[7][:] = KEY_A + access_bytes((2, 2, 2, 3)) + KEY_A
check("wrong key", raises(AuthError, reader.auth, 4, KEY_TRANSPORT, UID4))
reader.reselect(UID4)
reader.auth(4, KEY_A, UID4)
check("read-only block", raises(ProtocolError, reader.write_block, 4, bytes(16)))

reader.reselect(UID4)
reader.auth(4, KEY_A, UID4)
chip.corrupt_next_response()
check("crc", raises(CrcError, reader.read_block, 4))

chip.hang_next_command()
check("timeout", raises(Timeout, reader.read_block, 4))

field, chip, reader, (card,) = rig(UID4)
reader.detect()
reader.auth(4, KEY_TRANSPORT, UID4)
field.tear_next_write(5)
check("torn write", raises(NoCard, reader.write_block, 4, b"B" * 16) and bytes(card.blocks[4]) == b"B" * 5 + bytes(11))
check("counters", reader.card_commands == chip.card_commands and reader.spi_transfers == chip.spi_transactions)

# Crypto1 on the air: a plain READ after crypto off is not answered; a failed second
# authentication leaves MFCrypto1On at 0 with ErrorReg ProtocolErr (MFRC522 §10.3.1.9).
field, chip, reader, (card,) = rig(UID4)
reader.detect()
reader.auth(4, KEY_TRANSPORT, UID4)
reader.stop_crypto()
check("plain read unanswered", raises(NoCard, reader.read_block, 4))
reader.reselect(UID4)
card.blocks[11][:] = KEY_A + access_bytes((0, 0, 0, 3)) + KEY_A
reader.auth(4, KEY_TRANSPORT, UID4)
check("second auth", raises(AuthError, reader.auth, 8, KEY_TRANSPORT, UID4)
      and chip.reg(0x08) & 0x08 == 0 and chip.reg(0x06) & 0x01)

# The interrupt-driven poll: the IRQ line's edge (the chip's timer, fired on time by a task
# as the host board does) ends the wait for an empty field.
gc.collect()
import asyncio

field, chip, reader, _ = rig(irq=True)
fire_timer_on_time(chip)
edges = chip.irq.edges
check("irq empty field", asyncio.run(reader.poll_card()) is False and chip.irq.edges > edges)
field.add(MifareClassic1K(UID7))
check("irq card", asyncio.run(reader.poll_card()) is True and reader.detect() == (UID7, 0x08))

gc.collect()
print("rc522_check ok", passed)
