"""Virtual MIFARE Classic 1K cards and the RF field that holds them.

Frame-level model for the MFRC522 emulator (sim/mfrc522.py): a frame goes
into the field as bytes plus its bit count; each powered card that answers
gives back ``(bits, nbits)`` -- the answer as an int, least significant bit
first as ISO/IEC 14443-3 sends it -- and the emulator detects bit collisions
between answers like the chip's receiver does.

What is modelled (MF1S50yyX = MIFARE Classic 1K datasheet, Rev. 3.x):
- ISO/IEC 14443-3 states IDLE / READY / ACTIVE / HALT (MF1S50yyX §8.2 Fig. 5):
  REQA wakes only IDLE, WUPA wakes IDLE and HALT; an unexpected frame sends
  a READY/ACTIVE card back to the state it was woken from.
- Bit-oriented anticollision with any NVB, select with CRC_A, cascade level 2
  for 7-byte UIDs (cascade tag 0x88, SAK 0x04 then 0x08).
- Sector trailers with keys and access conditions (MF1S50yyX §8.7), value
  blocks (§8.6.2.1), READ / WRITE / INCREMENT / DECREMENT / RESTORE /
  TRANSFER / HALT (§12).
What is not: Crypto1 is not simulated bit-accurately. Authentication checks
the key, the UID bytes and the card's state; frames after it carry an
"enciphered" mark instead of ciphertext. The session is modelled all the
same (MF1S50yyX §10.1): once authenticated a card takes only enciphered
frames, and a card that is not takes only plain ones; any other frame is
noise to it (no answer, and a READY or ACTIVE card drops back).
A failed authentication, or a NAK, drops the card back to IDLE (or HALT when
it was woken from HALT), so the reader must WUPA + select again.
Deviation: key B authentication in a sector whose trailer makes key B
readable succeeds, but every access after it is refused (NAK), as §8.7.2
describes; a WRITE of inconsistent access bits is refused instead of
blocking the sector for ever as a real card would.
"""

# The factory key of every sector (MF1S50yyX §8.7.3), the one the park defines (protocol.card).
from protocol.card import TRANSPORT_KEY as KEY_TRANSPORT
# MF1S50yyX §8.7.1: FF 07 80 = data blocks 000, trailer 001; byte 9 is user data.
ACCESS_TRANSPORT = b"\xff\x07\x80\x69"

IDLE = 0
READY = 1
ACTIVE = 2
HALT = 3

_REQA = 0x26
_WUPA = 0x52
_SEL = (0x93, 0x95)
_CASCADE_TAG = 0x88
_NVB_SELECT = 0x70
_HLTA = 0x50
_READ = 0x30
_WRITE = 0xA0
_DECREMENT = 0xC0
_INCREMENT = 0xC1
_RESTORE = 0xC2
_TRANSFER = 0xB0
_ACK = 0x0A
_NAK_INVALID = 0x04   # MF1S50yyX §12.1 Table 23: invalid operation
_NAK_CRC = 0x01       # transmission (parity or CRC) error

# Access permission codes: which key may do an operation.
_NEVER = 0
_A = 1
_B = 2
_AB = 3

# MF1S50yyX §8.7.3 Table 8, indexed by C1C2C3 as a 3-bit number:
# (read, write, increment, decrement/transfer/restore).
_DATA_ACCESS = (
    (_AB, _AB, _AB, _AB),       # 000 transport configuration
    (_AB, _NEVER, _NEVER, _AB),  # 001 value block, decrement only
    (_AB, _NEVER, _NEVER, _NEVER),  # 010 read only
    (_B, _B, _NEVER, _NEVER),   # 011
    (_AB, _B, _NEVER, _NEVER),  # 100
    (_B, _NEVER, _NEVER, _NEVER),  # 101
    (_AB, _B, _B, _AB),         # 110 value block
    (_NEVER, _NEVER, _NEVER, _NEVER),  # 111
)
# MF1S50yyX §8.7.2 Table 7: (key A write, access bits read, access bits
# write, key B read, key B write). Key A is never readable.
_TRAILER_ACCESS = (
    (_A, _A, _NEVER, _A, _A),   # 000
    (_A, _A, _A, _A, _A),       # 001 transport configuration
    (_NEVER, _A, _NEVER, _A, _NEVER),  # 010
    (_B, _AB, _B, _NEVER, _B),  # 011
    (_B, _AB, _NEVER, _NEVER, _B),  # 100
    (_NEVER, _AB, _B, _NEVER, _NEVER),  # 101
    (_NEVER, _AB, _NEVER, _NEVER, _NEVER),  # 110
    (_NEVER, _AB, _NEVER, _NEVER, _NEVER),  # 111
)
# Trailer conditions under which key B is readable and so unusable (§8.7.2).
_KEY_B_READABLE = (0, 1, 2)


def crc_a(data, n=None, preset=0x6363):
    """CRC_A of ISO/IEC 14443-3 Annex B (MFRC522 CalcCRC with CRCPreset 6363h)."""
    crc = preset
    for i in range(len(data) if n is None else n):
        ch = (data[i] ^ crc) & 0xFF
        ch = (ch ^ (ch << 4)) & 0xFF
        crc = ((crc >> 8) ^ (ch << 8) ^ (ch << 3) ^ (ch >> 4)) & 0xFFFF
    return crc


def with_crc(data):
    """data followed by its CRC_A, low byte first."""
    crc = crc_a(data)
    return bytes(data) + bytes((crc & 0xFF, crc >> 8))


def access_bytes(conditions, user_byte=0x69):
    """Trailer bytes 6..9 for (C1C2C3 of block 0, 1, 2, trailer), MF1S50yyX §8.7.1."""
    c1 = c2 = c3 = 0
    for i in range(4):
        cond = conditions[i]
        c1 |= ((cond >> 2) & 1) << i
        c2 |= ((cond >> 1) & 1) << i
        c3 |= (cond & 1) << i
    return bytes(((~c2 & 0xF) << 4 | (~c1 & 0xF), c1 << 4 | (~c3 & 0xF), c3 << 4 | c2, user_byte))


def access_conditions(trailer):
    """(C1C2C3 of block 0..3) from a trailer, or None when bytes 6..8 disagree."""
    b6, b7, b8 = trailer[6], trailer[7], trailer[8]
    c1, c2, c3 = b7 >> 4, b8 & 0xF, b8 >> 4
    if b6 != ((~c2 & 0xF) << 4 | (~c1 & 0xF)) or b7 & 0xF != ~c3 & 0xF:
        return None
    return tuple(((c1 >> i) & 1) << 2 | ((c2 >> i) & 1) << 1 | ((c3 >> i) & 1) for i in range(4))


def value_block(value, addr):
    """A value block, MF1S50yyX §8.6.2.1: value, ~value, value, addr ~addr addr ~addr."""
    v = (value & 0xFFFFFFFF).to_bytes(4, "little")
    inv = bytes(b ^ 0xFF for b in v)
    return v + inv + v + bytes((addr, addr ^ 0xFF, addr, addr ^ 0xFF))


def value_of(block):
    """The signed value of a value block, or None when the format is broken."""
    v = bytes(block[0:4])
    if v != bytes(block[8:12]) or bytes(b ^ 0xFF for b in block[4:8]) != v:
        return None
    if block[12] != block[14] or block[13] != block[15] or block[12] ^ block[13] != 0xFF:
        return None
    n = int.from_bytes(v, "little")
    return n - 0x100000000 if n & 0x80000000 else n


def _frame_bits(data):
    return int.from_bytes(bytes(data), "little"), 8 * len(data)


class MifareClassic1K:
    """One MIFARE Classic 1K card: 64 blocks of 16 bytes in 16 sectors."""

    def __init__(self, uid, blocks=None):
        uid = bytes(uid)
        if len(uid) not in (4, 7):
            raise ValueError("MIFARE Classic UIDs are 4 or 7 bytes")
        self.uid = uid
        self.atqa = 0x0004 if len(uid) == 4 else 0x0044   # MF1S50yyX §9.4
        if blocks is None:
            blocks = [bytes(16)] * 64
            blocks[0] = self._manufacturer_block()
            for sector in range(16):
                blocks[sector * 4 + 3] = KEY_TRANSPORT + ACCESS_TRANSPORT + KEY_TRANSPORT
        if len(blocks) != 64:
            raise ValueError("a 1K card has 64 blocks")
        self.blocks = [bytearray(b) for b in blocks]
        for b in self.blocks:
            if len(b) != 16:
                raise ValueError("blocks are 16 bytes")
        self.tear_keep = None   # set by Field.tear_next_write
        self.torn = False
        self.power_off()

    def _manufacturer_block(self):
        # MF1S50yyX §8.6.1 Fig. 7 / §10.3: UID (+ BCC for 4 bytes), SAK, ATQA.
        if len(self.uid) == 4:
            head = self.uid + bytes((_bcc(self.uid), 0x08, 0x04, 0x00))
        else:
            head = self.uid + bytes((0x08, 0x44, 0x00))
        return head + b"ParkCard-sim"[: 16 - len(head)]

    def power_off(self):
        """Field lost: the card resets to IDLE (MF1S50yyX §8.2)."""
        self.state = IDLE
        self._home = IDLE
        self._level = 0
        self._auth = None       # (sector, used key B)
        self._pending = None    # second step of a two-step command: (cmd, block)
        self._buffer = None     # value transfer buffer (value, addr)

    # -- anticollision -----------------------------------------------------------

    def _cln(self, level):
        """UID CLn of ISO/IEC 14443-3 §6.5.4: 4 UID bytes (with CT) + BCC."""
        if len(self.uid) == 4:
            part = self.uid
        elif level == 0:
            part = bytes((_CASCADE_TAG,)) + self.uid[0:3]
        else:
            part = self.uid[3:7]
        return part + bytes((_bcc(part),))

    def _drop(self):
        self.state = self._home
        self._auth = None
        self._pending = None
        self._buffer = None
        return None

    def receive(self, frame, nbits, enciphered=False):
        """Answer one frame from the reader: (bits, nbits) or None for silence."""
        if enciphered != (self._auth is not None):
            # A frame under the wrong cipher state decodes to noise (parity and CRC fail): silence.
            return self._drop() if self.state in (READY, ACTIVE) else None
        if nbits == 7:
            return self._wake(frame[0])
        if self.state == READY and nbits >= 16:
            return self._anticollision(frame, nbits)
        if self.state == ACTIVE and nbits % 8 == 0:
            return self._active(frame)
        if self.state in (READY, ACTIVE):
            return self._drop()
        return None

    def _wake(self, cmd):
        if (cmd == _REQA and self.state == IDLE) or (cmd == _WUPA and self.state in (IDLE, HALT)):
            self._home = self.state
            self.state = READY
            self._level = 0
            return self.atqa, 16
        if self.state in (READY, ACTIVE):
            return self._drop()
        return None

    def _anticollision(self, frame, nbits):
        if frame[0] != _SEL[self._level]:
            return self._drop()
        nvb = frame[1]
        cln = self._cln(self._level)
        if nvb == _NVB_SELECT and nbits == 72:
            if crc_a(frame) != 0 or bytes(frame[2:7]) != cln:
                return self._drop()
            if len(self.uid) == 7 and self._level == 0:
                self._level = 1
                return _frame_bits(with_crc(b"\x04"))
            self.state = ACTIVE
            return _frame_bits(with_crc(b"\x08"))
        known = ((nvb >> 4) - 2) * 8 + (nvb & 0x0F)
        if known < 0 or known >= 40 or nbits != known + 16:
            return self._drop()
        mask = (1 << known) - 1
        uid_bits = int.from_bytes(cln, "little")
        if int.from_bytes(bytes(frame[2:]), "little") & mask != uid_bits & mask:
            return None     # not this card: keeps quiet and stays READY
        return uid_bits >> known, 40 - known

    # -- memory commands (MF1S50yyX §12) ---------------------------------------------

    def _active(self, frame):
        if len(frame) < 3 or crc_a(frame) != 0:
            return _NAK_CRC, 4
        data = frame[:-2]
        if self._pending is not None:
            return self._second_step(data)
        cmd = data[0]
        if cmd == _HLTA and len(data) == 2 and data[1] == 0:
            self._drop()
            self.state = HALT   # MF1S50yyX §12.2: HLTA is never answered
            return None
        if len(data) != 2 or data[1] > 63:
            return self._nak()
        block = data[1]
        if self._auth is None or self._auth[0] != block // 4:
            return self._nak()
        if cmd == _READ:
            return self._read(block)
        if cmd == _WRITE:
            ok = block != 0 and (self._trailer_writable(block) or self._allowed(block, 1))
        elif cmd == _INCREMENT:
            ok = self._allowed(block, 2) and value_of(self.blocks[block]) is not None
        elif cmd in (_DECREMENT, _RESTORE):
            ok = self._allowed(block, 3) and value_of(self.blocks[block]) is not None
        elif cmd == _TRANSFER:
            if not (self._allowed(block, 3) and self._buffer is not None):
                return self._nak()
            value, addr = self._buffer
            self.blocks[block][:] = value_block(value, addr)
            return _ACK, 4
        else:
            ok = False
        if not ok:
            return self._nak()
        self._pending = (cmd, block)
        return _ACK, 4

    def _second_step(self, data):
        cmd, block = self._pending
        self._pending = None
        if cmd == _WRITE:
            if len(data) != 16:
                return self._nak()
            if self.tear_keep is not None:
                # Torn write: only the first bytes reach EEPROM, then the card is gone.
                keep = self.tear_keep
                self.blocks[block][:keep] = data[:keep]
                self.tear_keep = None
                self.torn = True
                return None
            if block % 4 == 3:
                return self._write_trailer(block, data)
            self.blocks[block][:] = data
            return _ACK, 4
        if len(data) != 4:
            return self._nak()
        old = self.blocks[block]
        value = value_of(old)
        operand = int.from_bytes(bytes(data), "little")
        if operand & 0x80000000:
            operand -= 0x100000000
        if cmd == _INCREMENT:
            value += operand
        elif cmd == _DECREMENT:
            value -= operand
        self._buffer = (value, old[12])
        return None   # MF1S50yyX §12.6: the operand frame gets no acknowledge

    def _read(self, block):
        if block % 4 != 3:
            if not self._allowed(block, 0):
                return self._nak()
            return _frame_bits(with_crc(self.blocks[block]))
        rights = self._trailer_rights(block)
        if rights is None or not self._may(rights[1]):
            return self._nak()
        trailer = self.blocks[block]
        key_b = trailer[10:16] if self._may(rights[3]) else bytes(6)
        return _frame_bits(with_crc(bytes(6) + trailer[6:10] + key_b))

    def _write_trailer(self, block, data):
        rights = self._trailer_rights(block)
        trailer = self.blocks[block]
        if self._may(rights[2]):
            if access_conditions(data) is None:
                return self._nak()
            trailer[6:10] = data[6:10]
        if self._may(rights[0]):
            trailer[0:6] = data[0:6]
        if self._may(rights[4]):
            trailer[10:16] = data[10:16]
        return _ACK, 4

    def _trailer_rights(self, block):
        cond = access_conditions(self.blocks[block | 3])
        return None if cond is None else _TRAILER_ACCESS[cond[3]]

    def _trailer_writable(self, block):
        rights = self._trailer_rights(block) if block % 4 == 3 else None
        return rights is not None and (self._may(rights[0]) or self._may(rights[2]) or self._may(rights[4]))

    def _allowed(self, block, op):
        if block % 4 == 3:
            return False
        cond = access_conditions(self.blocks[block | 3])
        return cond is not None and self._may(_DATA_ACCESS[cond[block % 4]][op])

    def _may(self, who):
        key_b = self._auth[1]
        if key_b:
            cond = access_conditions(self.blocks[self._auth[0] * 4 + 3])
            if cond is None or cond[3] in _KEY_B_READABLE:
                return False
        return bool(who & (_B if key_b else _A))

    def _nak(self):
        self._drop()
        return _NAK_INVALID, 4

    # -- authentication ------------------------------------------------------------

    def authenticate(self, key_b, block, key, uid4, enciphered=False):
        """Three-pass authentication (Crypto1 not simulated), MF1S50yyX §8.8 and §10.1.

        None: the card did not answer the first pass (not active, or the request was noise to it);
        False: it sent its nonce but the reader's answer was wrong (key or UID); True: authenticated.
        A nested authentication (card already authenticated) arrives enciphered.
        """
        if self.state != ACTIVE or enciphered != (self._auth is not None):
            if self.state in (READY, ACTIVE):
                self._drop()
            return None
        if block > 63:
            self._drop()
            return None
        # MF1S50yyX §10.1.3 Table 16: a cascaded 7-byte UID authenticates with UID3..UID6.
        if bytes(uid4) != self.uid[-4:]:
            self._drop()
            return False
        trailer = self.blocks[block | 3]
        stored = trailer[10:16] if key_b else trailer[0:6]
        if bytes(key) != bytes(stored):
            self._drop()
            return False
        self._pending = None
        self._auth = (block // 4, key_b)
        return True


def _bcc(part):
    return part[0] ^ part[1] ^ part[2] ^ part[3]


class Field:
    """The reader's RF field: the cards in it, and injected faults."""

    def __init__(self):
        self.cards = []
        self.powered = False
        self.commands = 0
        self._leave_in = {}

    def add(self, card):
        if card not in self.cards:
            card.power_off()
            card.torn = False
            self.cards.append(card)
        return card

    def remove(self, card):
        if card in self.cards:
            self.cards.remove(card)
        self._leave_in.pop(id(card), None)
        card.power_off()

    def rf(self, on):
        """Antenna on or off; cards lose power and reset when it goes off."""
        if self.powered and not on:
            for card in self.cards:
                card.power_off()
        self.powered = on

    def _card(self, card):
        if card is None:
            if not self.cards:
                raise ValueError("no card in the field")
            card = self.cards[0]
        return card

    def remove_after(self, n, card=None):
        """The card leaves during the n-th further card command (which it never answers)."""
        if n < 1:
            raise ValueError("n counts commands from 1")
        card = self._card(card)
        self._leave_in[id(card)] = (card, n)

    def tear_next_write(self, keep_bytes, card=None):
        """The next WRITE stores only its first keep_bytes, then the card leaves."""
        if not 0 <= keep_bytes <= 16:
            raise ValueError("keep_bytes is 0..16")
        self._card(card).tear_keep = keep_bytes

    def _present(self):
        """Cards still here for this command, after the remove_after countdowns."""
        here = []
        for card in list(self.cards):
            entry = self._leave_in.get(id(card))
            if entry is not None:
                if entry[1] <= 1:
                    self.remove(card)
                    continue
                self._leave_in[id(card)] = (card, entry[1] - 1)
            here.append(card)
        return here

    def transceive(self, frame, nbits, enciphered=False):
        """Deliver one frame (Crypto1 on or not); return the answers of the cards that gave one."""
        self.commands += 1
        if not self.powered:
            return []
        answers = []
        for card in self._present():
            answer = card.receive(frame, nbits, enciphered)
            if card.torn:
                self.remove(card)
            elif answer is not None:
                answers.append(answer)
        return answers

    def authenticate(self, key_b, block, key, uid4, enciphered=False):
        """MFAuthent as one exchange: True authenticated, False a card answered but refused, None silence."""
        self.commands += 1
        if not self.powered:
            return None
        outcome = None
        for card in self._present():
            got = card.authenticate(key_b, block, key, uid4, enciphered)
            if got is not None:
                outcome = got or bool(outcome)
        return outcome
