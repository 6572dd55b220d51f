"""MFRC522 (RC522 module) driver for MIFARE Classic cards, over SPI.

Runs on MicroPython (ESP32) and CPython. The driver takes its bus: ``spi`` is
anything with ``write``, ``readinto`` and ``write_readinto`` like
machine.SPI; ``cs`` and ``rst`` are machine.Pin objects or plain callables
``pin(v)``. Nothing touches hardware at import time.

Design notes
- Every wait ends on the chip's own flags (ComIrqReg RxIRq/IdleIRq/ErrIRq/
  TimerIRq, DivIrqReg CRCIRq, CommandReg PowerDown) and is bounded by a
  deadline of ``timeout_ms`` plus a poll cap; running out raises Timeout and
  puts the chip back to Idle. "No card" is the chip's timer firing
  (TModeReg TAuto), which is NoCard, not Timeout.
- The timer is programmed per command with what the card needs (TReloadReg
  in 0.1 ms ticks): ISO/IEC 14443-3 activation frames 1 ms (a card answers
  REQA within about 91 us), MF1S50yyX §11 time-outs for the rest
  (authentication 1 ms a pass, READ 5 ms, WRITE 5 + 10 ms, value operations
  5 + 5 ms, TRANSFER 10 ms). An empty field costs 1 ms, not 25.
- With ``irq`` (the GPIO wired to the chip's IRQ pin) the chip drives it
  push-pull and active high for RxIRq/IdleIRq/ErrIRq/TimerIRq (ComIEnReg,
  DivIEnReg IRQPushPull, MFRC522 §9.3.1.3-4) and the pin interrupt only sets
  an asyncio.ThreadSafeFlag. ``poll_card()`` awaits it, so the event loop
  runs while a REQA waits for its answer; without ``irq`` it polls
  ComIrqReg between yields. The card exchanges that follow a tap stay
  synchronous: a few milliseconds, each bounded by its timer.
- CRC_A is computed by the chip's coprocessor (CommandReg CalcCRC, MFRC522
  §10.3.1.4) for every frame that carries one, and every answer that carries
  one is checked the same way. TxModeReg/RxModeReg TxCRCEn/RxCRCEn would save
  a few SPI transfers, but the datasheet does not say whether the received
  CRC stays in the FIFO or how RxCRCEn treats the 4-bit ACK, and a frame type
  that needs no CRC (REQA, anticollision, ACK) would need a mode switch:
  one explicit path is easier to get right on real chips.
- FIFO traffic is one SPI transaction per burst (MFRC522 §8.1.2.1-2); all
  buffers are allocated in __init__.
- MFAuthent with a 7-byte UID uses the last four UID bytes, UID3..UID6 (the
  UID CL2 bytes): MF1S50yyX §10.1.3 Table 16 "Sequence 1" (the normal
  cascade-level-2 activation this driver performs), NXP AN10927 §3.2.5.
- Status2Reg MFCrypto1On enciphers every frame while it is set (§9.3.1.9):
  it is cleared before every REQA/WUPA and after HLTA, or a card presented
  again would not understand the request.
- A collision in anticollision raises Collision (with the CollReg position)
  rather than being resolved: a payment terminal must not pick one of two
  cards the holder did not mean to present.
"""

from terminal.compat import const, ticks_diff, ticks_ms, wait_ms


class RC522Error(Exception):
    """Base of every error this driver raises."""


class NoCard(RC522Error):
    """Nothing answered before the chip's timer ran out."""


class Collision(RC522Error):
    """More than one card answered (ErrorReg CollErr)."""


class AuthError(RC522Error):
    """MFAuthent did not switch Crypto1 on: wrong key, UID or block."""


class CrcError(RC522Error):
    """The CRC_A of an answer is wrong."""


class Timeout(RC522Error):
    """The chip did not finish a command (its IRQ bit never came)."""


class ProtocolError(RC522Error):
    """NAK, an answer of the wrong length or bits, parity or FIFO overflow."""


# MFRC522 §9.2 registers.
_CommandReg = const(0x01)
_ComIEnReg = const(0x02)
_DivIEnReg = const(0x03)
_ComIrqReg = const(0x04)
_DivIrqReg = const(0x05)
_ErrorReg = const(0x06)
_Status2Reg = const(0x08)
_FIFODataReg = const(0x09)
_FIFOLevelReg = const(0x0A)
_ControlReg = const(0x0C)
_BitFramingReg = const(0x0D)
_CollReg = const(0x0E)
_ModeReg = const(0x11)
_TxControlReg = const(0x14)
_TxASKReg = const(0x15)
_CRCResultRegH = const(0x21)
_CRCResultRegL = const(0x22)
_TModeReg = const(0x2A)
_TPrescalerReg = const(0x2B)
_TReloadRegH = const(0x2C)
_TReloadRegL = const(0x2D)
_VersionReg = const(0x37)

# MFRC522 §10.3 Table 149 commands.
_CMD_IDLE = const(0x00)
_CMD_CALC_CRC = const(0x03)
_CMD_TRANSCEIVE = const(0x0C)
_CMD_MF_AUTHENT = const(0x0E)
_CMD_SOFT_RESET = const(0x0F)

# Register bits.
_POWER_DOWN = const(0x10)       # CommandReg §9.3.1.2
_IRQ_CLEAR_ALL = const(0x7F)    # ComIrqReg §9.3.1.5: Set1 = 0 clears the marked bits
_RX_IRQ = const(0x20)
_IDLE_IRQ = const(0x10)
_ERR_IRQ = const(0x02)
_TIMER_IRQ = const(0x01)
_TRANSCEIVE_DONE = const(0x33)  # RxIRq | IdleIRq | ErrIRq | TimerIRq
_CRC_IRQ = const(0x04)          # DivIrqReg §9.3.1.6
_BUFFER_OVFL = const(0x10)      # ErrorReg §9.3.1.7
_COLL_ERR = const(0x08)
_CRC_ERR = const(0x04)
_PARITY_ERR = const(0x02)
_PROTOCOL_ERR = const(0x01)
_CRYPTO1_ON = const(0x08)       # Status2Reg §9.3.1.9 MFCrypto1On
_FLUSH_BUFFER = const(0x80)     # FIFOLevelReg §9.3.1.11
_RX_LAST_BITS = const(0x07)     # ControlReg §9.3.1.13
_START_SEND = const(0x80)       # BitFramingReg §9.3.1.14
_COLL_POS_NOT_VALID = const(0x20)   # CollReg §9.3.1.15
_ANTENNA_ON = const(0x03)       # TxControlReg §9.3.2.5 Tx2RFEn | Tx1RFEn
_FORCE_100_ASK = const(0x40)    # TxASKReg §9.3.2.6
# ModeReg §9.3.2.2: TxWaitRF, MFIN active high, CRCPreset 01 = 6363h (CRC_A).
_MODE_CRC_A = const(0x3D)
# Timer §8.5, TModeReg/TPrescalerReg §9.3.3.10-11: TAuto, prescaler 0x2A5:
# 13.56 MHz / (2 * 677 + 1) = 10 kHz, 0.1 ms a tick; TReload = ticks - 1.
_T_MODE_AUTO = const(0x82)
_T_PRESCALER_LO = const(0xA5)
_TICKS_PER_MS = const(10)
# Time-outs in ticks: ISO/IEC 14443-3 activation (FDT about 91 us; HLTA is
# taken as done after 1 ms of silence, §6.4.3), MF1S50yyX §11 Tables 18-26.
_TICKS_ACTIVATE = const(10)
_TICKS_AUTH = const(10)
_TICKS_READ = const(50)
_TICKS_COMMAND = const(50)      # WRITE part 1 (and the value operations' parts, terminal/rc522_values.py)
_TICKS_STORE = const(100)       # WRITE part 2, TRANSFER: the EEPROM write
_TRANSCEIVE_MS = const(5)       # transceive()'s default: ISO/IEC 14443-4 FWT for FWI 4 is 4.8 ms
# ComIEnReg §9.3.1.3: RxIEn | IdleIEn | ErrIEn | TimerIEn, IRqInv 0 (the pin is high while asserted).
_IRQ_SOURCES = const(0x33)
_IRQ_PUSH_PULL = const(0x80)    # DivIEnReg §9.3.1.4: CMOS output (GPIO 34 has no pull-up)

_FIFO_SIZE = const(64)
_TIMEOUT_MS = const(100)        # above the chip timer: reaching it means the chip hung
_POLLS_MAX = const(100000)      # safety cap should the clock stop

# ISO/IEC 14443-3 and MF1S50yyX §12 card commands.
_REQA = const(0x26)
_WUPA = const(0x52)
_SEL_CL1 = const(0x93)
_SEL_CL2 = const(0x95)
_SEL_CL3 = const(0x97)
_NVB_ANTICOLL = const(0x20)
_NVB_SELECT = const(0x70)
_CASCADE_TAG = const(0x88)
_SAK_CASCADE = const(0x04)
_HLTA = const(0x50)
_MF_AUTH_KEY_A = const(0x60)
_MF_AUTH_KEY_B = const(0x61)
_MF_READ = const(0x30)
_MF_WRITE = const(0xA0)
_MF_ACK = const(0x0A)           # MF1S50yyX §12.1: 4-bit ACK

# The driver's error texts, one constant string in the image (_error() cuts one out when raised) instead of an
# object each on the heap; _E_* number them in order.
_ERRORS = const("MFRC522 register 0x%02x never signalled 0x%02x|"
                "CRC_A of a %d-byte answer is wrong|"
                "cards collide at bit %d|"
                "ErrorReg CRCErr|"
                "ErrorReg 0x%02x|"
                "command ended without an answer|"
                "a frame is 1 to %d bytes|"
                "timeout_ms out of range|"
                "answer of %d bytes + %d bits|"
                "NAK 0x%x to command 0x%02x|"
                "answer of %d bytes + %d bits, expected %d bytes|"
                "answer of %d bytes + %d bits, expected a 4-bit ACK|"
                "block out of range|"
                "ATQA of %d bytes + %d bits|"
                "UID CLn of %d bytes + %d bits|"
                "BCC of UID CLn is wrong|"
                "SAK asks for another level without a cascade tag|"
                "more than three cascade levels|"
                "another card answered|"
                "a card answered HLTA|"
                "MIFARE keys are 6 bytes|"
                "UIDs are 4, 7 or 10 bytes|"
                "authentication of block %d failed|"
                "a block is 16 bytes|")
_E_HUNG = const(0)
_E_CRC = const(1)
_E_COLLIDE = const(2)
_E_CRC_ERR = const(3)
_E_ERROR_REG = const(4)
_E_ENDED = const(5)
_E_FRAME_SIZE = const(6)
_E_TIMEOUT_RANGE = const(7)
_E_ANSWER = const(8)
_E_NAK_TO = const(9)
_E_ANSWER_SIZE = const(10)
_E_NOT_ACK = const(11)
_E_BLOCK_RANGE = const(12)
_E_ATQA = const(13)
_E_UID_CLN = const(14)
_E_BCC = const(15)
_E_NO_CASCADE_TAG = const(16)
_E_LEVELS = const(17)
_E_OTHER_CARD = const(18)
_E_HLTA_ANSWERED = const(19)
_E_KEY_SIZE = const(20)
_E_UID_SIZE = const(21)
_E_AUTH = const(22)
_E_BLOCK_SIZE = const(23)


def _error(number):
    """Error text _E_* number of _ERRORS."""
    at = 0
    for _ in range(number):
        at = _ERRORS.find("|", at) + 1
    return _ERRORS[at:_ERRORS.find("|", at)]


def _pin(pin):
    """machine.Pin (has .value) or a plain callable pin(v)."""
    return getattr(pin, "value", pin)


class RC522:
    """One MFRC522 on an SPI bus.

        reader = RC522(machine.SPI(2, baudrate=4_000_000), machine.Pin(5, machine.Pin.OUT),
                       irq=machine.Pin(34, machine.Pin.IN))
        reader.init()
        # The loop runs while the REQA waits; detect() then selects: (uid, sak) or None.
        found = reader.detect() if await reader.poll_card() else None
        if found:
            reader.auth(4, key_a, found[0])
            data = reader.read_block(4)
            reader.halt()

    irq: the input pin wired to the chip's IRQ (machine.Pin with .irq()), or
    None to poll; flag: what its interrupt raises, asyncio.ThreadSafeFlag unless
    given (CPython's asyncio has none: the host board brings its own).
    timeout_ms bounds every wait for the chip (tests make it short).
    card_commands and spi_transfers count frames sent to the card and SPI
    transactions, for the benchmark.
    """

    def __init__(self, spi, cs, rst=None, timeout_ms=_TIMEOUT_MS, irq=None, flag=None):
        self._spi = spi
        self._cs = _pin(cs)
        self._rst = None if rst is None else _pin(rst)
        self.timeout_ms = timeout_ms
        self.card_commands = 0
        self.spi_transfers = 0
        self._crypto = False
        self._ticks = -1            # TReload as programmed, -1: unknown
        self._ready = None          # poll_card()'s outcome for detect(): True (ATQA) or the error it met
        self._irq = irq
        self._flag = None
        if irq is not None:
            if flag is None:
                import asyncio
                flag = asyncio.ThreadSafeFlag()
            self._flag = flag
            # Interrupts only raise the flag; the task waiting on it reads the chip.
            irq.irq(handler=self._on_irq, trigger=irq.IRQ_RISING)
        # Register access: address byte + up to two data bytes.
        self._reg_out = bytearray(3)
        self._reg_in = bytearray(3)
        out = memoryview(self._reg_out)
        into = memoryview(self._reg_in)
        self._out2, self._out3, self._in2, self._in3 = out[:2], out, into[:2], into
        # FIFO bursts, MFRC522 §8.1.2: byte 0 is the address byte. The
        # outgoing frame is built in place at _tx[1:].
        self._tx = bytearray(_FIFO_SIZE + 1)
        self._tx[0] = _FIFODataReg << 1
        self._rx = bytearray(_FIFO_SIZE + 1)
        self._fifo_read_addr = bytearray(_FIFO_SIZE + 1)
        for i in range(_FIFO_SIZE + 1):
            self._fifo_read_addr[i] = (_FIFODataReg << 1) | 0x80
        self._tx_mv = memoryview(self._tx)
        self._rx_mv = memoryview(self._rx)
        self._fifo_read_mv = memoryview(self._fifo_read_addr)
        self._cs(1)

    def _on_irq(self, pin):
        self._flag.set()

    # -- SPI, MFRC522 §8.1.2 ------------------------------------------------------------

    def _xfer(self, out, into):
        self.spi_transfers += 1
        self._cs(0)
        try:
            if into is None:
                self._spi.write(out)
            else:
                self._spi.write_readinto(out, into)
        finally:
            self._cs(1)

    def _wr(self, reg, value):
        out = self._reg_out
        out[0] = (reg << 1) & 0x7E     # §8.1.2.3: MSB 0 = write, LSB 0
        out[1] = value
        self._xfer(self._out2, None)

    def _rd(self, reg):
        return self._rd2(reg, None)

    def _rd2(self, reg, reg2):
        """Read one register, or two in one transaction (second into _reg_in[2])."""
        out = self._reg_out
        out[0] = ((reg << 1) & 0x7E) | 0x80
        if reg2 is None:
            out[1] = 0
            self._xfer(self._out2, self._in2)
        else:
            out[1] = ((reg2 << 1) & 0x7E) | 0x80
            out[2] = 0
            self._xfer(self._out3, self._in3)
        return self._reg_in[1]

    def _left_ms(self, start, polls, reg, mask, extra_ms):
        """Milliseconds left for a wait; at none (or too many polls) idle the chip and raise Timeout."""
        left = self.timeout_ms + extra_ms - ticks_diff(ticks_ms(), start)
        if polls > _POLLS_MAX or left < 0:
            self._wr(_CommandReg, _CMD_IDLE)
            raise Timeout(_error(_E_HUNG) % (reg, mask))
        return left

    def _wait(self, reg, mask, until_clear=False, extra_ms=0):
        """Poll reg until a mask bit is set (or all clear); bounded by timeout_ms (+ extra_ms)."""
        start = ticks_ms()
        polls = 0
        while True:
            v = self._rd(reg)
            if (v & mask == 0) if until_clear else (v & mask):
                return v
            polls += 1
            self._left_ms(start, polls, reg, mask, extra_ms)

    async def _wait_async(self, mask, edge_ms):
        """_wait on ComIrqReg that lets the event loop run: on the IRQ flag, or polling between yields.

        The flag is awaited edge_ms at a time (the command's own time-out and a little more), so an
        IRQ line that never rises (not wired) costs that, not timeout_ms.
        """
        import asyncio
        start = ticks_ms()
        polls = 0
        while True:
            v = self._rd(_ComIrqReg)
            if v & mask:
                return v
            polls += 1
            left_ms = self._left_ms(start, polls, _ComIrqReg, mask, 0)
            if self._flag is None:
                await asyncio.sleep(0)
                continue
            try:
                await wait_ms(self._flag.wait(), min(left_ms, edge_ms))
            except asyncio.TimeoutError:
                pass    # read ComIrqReg again: the line may be missing, or this is the deadline

    def _timer(self, ticks):
        """Program TReloadReg so the chip's timer ends the next wait after ticks of 0.1 ms (§9.3.3.12)."""
        if ticks != self._ticks:
            self._wr(_TReloadRegH, (ticks - 1) >> 8)
            self._wr(_TReloadRegL, (ticks - 1) & 0xFF)
            self._ticks = ticks

    def _start(self, n, command, irq_reg=_ComIrqReg, irq_bits=_IRQ_CLEAR_ALL):
        """Idle the chip, clear IRQ bits and the FIFO, load _tx[1:n+1], start command."""
        self._wr(_CommandReg, _CMD_IDLE)
        self._wr(irq_reg, irq_bits)     # §9.3.1.5-6: Set1/Set2 = 0 clears the marked bits
        if self._flag is not None:
            self._flag.clear()          # the IRQ line is low again: only this command's edge counts
        self._wr(_FIFOLevelReg, _FLUSH_BUFFER)
        self._xfer(self._tx_mv[: n + 1], None)     # _tx[1:n+1] into the FIFO in one burst (§8.1.2.2)
        self._wr(_CommandReg, command)

    # -- set-up -----------------------------------------------------------------------

    def init(self):
        """Reset the chip and set it up: timer, 100 % ASK, CRC_A preset, IRQ pin, antenna on."""
        if self._rst is not None:
            self._rst(1)    # §8.8.1: NRSTPD high leaves hard power-down
        self._wr(_CommandReg, _CMD_SOFT_RESET)
        self._wait(_CommandReg, _POWER_DOWN, True)     # §10.3.1.10: PowerDown clears when ready
        self._crypto = False
        self._ready = None
        self._wr(_TModeReg, _T_MODE_AUTO)
        self._wr(_TPrescalerReg, _T_PRESCALER_LO)
        self._ticks = -1
        self._timer(_TICKS_ACTIVATE)
        self._wr(_TxASKReg, _FORCE_100_ASK)            # ISO/IEC 14443 A needs 100 % ASK
        self._wr(_ModeReg, _MODE_CRC_A)
        if self._irq is not None:
            self._wr(_ComIEnReg, _IRQ_SOURCES)
            self._wr(_DivIEnReg, _IRQ_PUSH_PULL)
        self.antenna_on()

    def antenna_on(self):
        """Switch the field on (TxControlReg Tx1RFEn, Tx2RFEn)."""
        v = self._rd(_TxControlReg)
        if v & _ANTENNA_ON != _ANTENNA_ON:
            self._wr(_TxControlReg, v | _ANTENNA_ON)

    def antenna_off(self):
        """Switch the field off: every card in it loses power."""
        self._wr(_TxControlReg, self._rd(_TxControlReg) & ~_ANTENNA_ON & 0xFF)
        self._crypto = False

    def version(self):
        """VersionReg: 0x91 or 0x92 for an MFRC522 (§9.3.4.8)."""
        return self._rd(_VersionReg)

    # -- CRC through the coprocessor, §10.3.1.4 ---------------------------------------------

    def _calc_crc(self, n):
        """CRC_A of _tx[1:n+1]; leaves low, high in _reg_in[1], _reg_in[2]."""
        self._start(n, _CMD_CALC_CRC, _DivIrqReg, _CRC_IRQ)
        self._wait(_DivIrqReg, _CRC_IRQ)
        self._rd2(_CRCResultRegL, _CRCResultRegH)

    def _append_crc(self, n):
        self._calc_crc(n)
        self._tx[n + 1] = self._reg_in[1]
        self._tx[n + 2] = self._reg_in[2]
        return n + 2

    def _check_crc(self, n):
        """The last two of the n received bytes must be the CRC_A of the others."""
        m = n - 2
        self._tx_mv[1: m + 1] = self._rx_mv[1: m + 1]
        self._calc_crc(m)
        if self._reg_in[1] != self._rx[n - 1] or self._reg_in[2] != self._rx[n]:
            raise CrcError(_error(_E_CRC) % n)

    # -- card exchange, §10.3.1.8 Transceive ------------------------------------------------

    def _send(self, n, tx_last_bits, ticks):
        """Start Transceive of _tx[1:n+1] with the timer set to ticks."""
        self.card_commands += 1
        self._timer(ticks)
        self._wr(_BitFramingReg, tx_last_bits)
        self._start(n, _CMD_TRANSCEIVE)
        self._wr(_BitFramingReg, tx_last_bits | _START_SEND)

    def _transceive(self, n, ticks, tx_last_bits=0, extra_ms=0):
        """Send _tx[1:n+1]; the answer lands in _rx[1:]. Returns (bytes, last bits)."""
        self._send(n, tx_last_bits, ticks)
        return self._received(self._wait(_ComIrqReg, _TRANSCEIVE_DONE, False, extra_ms))

    def _received(self, irq):
        """The outcome of a Transceive that ended with ComIrqReg irq: (bytes, last bits) or an error."""
        if irq & _ERR_IRQ:
            err = self._rd(_ErrorReg)
            if err & _COLL_ERR:
                coll = self._rd(_CollReg)
                pos = -1 if coll & _COLL_POS_NOT_VALID else (coll & 0x1F) or 32
                raise Collision(_error(_E_COLLIDE) % pos)
            if err & _CRC_ERR:
                raise CrcError(_error(_E_CRC_ERR))
            if err & (_BUFFER_OVFL | _PARITY_ERR | _PROTOCOL_ERR):
                raise ProtocolError(_error(_E_ERROR_REG) % err)
        if not irq & _RX_IRQ:
            if irq & _TIMER_IRQ:
                raise NoCard("no answer")
            raise ProtocolError(_error(_E_ENDED))
        count = self._rd(_FIFOLevelReg) & 0x7F
        last_bits = self._rd(_ControlReg) & _RX_LAST_BITS
        if count:
            # The n FIFO bytes into _rx[1:n+1] in one burst (§8.1.2.1): the last address byte sent, 0, ends it.
            addr = self._fifo_read_addr
            addr[count] = 0
            try:
                self._xfer(self._fifo_read_mv[: count + 1], self._rx_mv[: count + 1])
            finally:
                addr[count] = (_FIFODataReg << 1) | 0x80
        return count, last_bits

    def transceive(self, data, timeout_ms=_TRANSCEIVE_MS, crc=True):
        """Send a frame to the active card and return its answer (ISO/IEC 14443-4 blocks and the like).

        crc=True appends CRC_A and checks and strips the answer's; timeout_ms is the card's
        frame waiting time. NoCard when it stays silent.
        """
        n = len(data)
        if not 0 < n <= _FIFO_SIZE - (2 if crc else 0):
            raise ValueError(_error(_E_FRAME_SIZE) % (_FIFO_SIZE - (2 if crc else 0)))
        if not 0 < timeout_ms <= 0xFFFF // _TICKS_PER_MS:
            raise ValueError(_error(_E_TIMEOUT_RANGE))
        self._tx_mv[1: n + 1] = data
        if crc:
            n = self._append_crc(n)
        count, last_bits = self._transceive(n, timeout_ms * _TICKS_PER_MS, 0, timeout_ms)
        if last_bits or count < (3 if crc else 1):
            raise ProtocolError(_error(_E_ANSWER) % (count, last_bits))
        if crc:
            self._check_crc(count)
            count -= 2
        return bytes(self._rx_mv[1: count + 1])

    def _expect(self, answer, size):
        """A whole-byte answer of size bytes whose last two are its CRC_A."""
        count, last_bits = answer
        if count == 1 and last_bits == 4:
            raise ProtocolError(_error(_E_NAK_TO) % (self._rx[1] & 0x0F, self._tx[1]))
        if count != size or last_bits:
            raise ProtocolError(_error(_E_ANSWER_SIZE) % (count, last_bits, size))
        self._check_crc(count)

    def _ack(self, answer):
        """MF1S50yyX §12.1: a 4-bit answer, 0xA is ACK, anything else NAK."""
        count, last_bits = answer
        if count != 1 or last_bits != 4:
            raise ProtocolError(_error(_E_NOT_ACK) % (count, last_bits))
        if self._rx[1] & 0x0F != _MF_ACK:
            raise ProtocolError("NAK 0x%x" % (self._rx[1] & 0x0F))

    def _command(self, command, block, ticks=_TICKS_COMMAND):
        """command, block + CRC_A; returns the answer."""
        if not 0 <= block <= 0xFF:
            raise ValueError(_error(_E_BLOCK_RANGE))
        self._tx[1] = command
        self._tx[2] = block
        return self._transceive(self._append_crc(2), ticks)

    # -- activation, ISO/IEC 14443-3 §6 ---------------------------------------------------------

    def _request_frame(self, wakeup):
        self._ready = None
        if self._crypto:
            self.stop_crypto()
        self._tx[1] = _WUPA if wakeup else _REQA

    def _atqa(self, answer):
        count, last_bits = answer
        if count != 2 or last_bits:
            raise ProtocolError(_error(_E_ATQA) % (count, last_bits))
        return self._rx[1] | (self._rx[2] << 8)

    def request(self, wakeup=False):
        """REQA (or WUPA) as a 7-bit short frame; returns ATQA."""
        self._request_frame(wakeup)
        return self._atqa(self._transceive(1, _TICKS_ACTIVATE, 7))

    async def poll_card(self, wakeup=False):
        """REQA (or WUPA) that lets the event loop run while it waits: True when a card answered.

        The card is then READY and the next detect() selects it without a new request; an
        answer that was an error (a collision of ATQAs) is raised by that detect().
        """
        self._request_frame(wakeup)
        self._send(1, 7, _TICKS_ACTIVATE)
        try:
            self._atqa(self._received(await self._wait_async(_TRANSCEIVE_DONE, _TICKS_ACTIVATE // _TICKS_PER_MS + 1)))
        except NoCard:
            return False
        except RC522Error as exc:
            self._ready = exc
            return True
        self._ready = True
        return True

    def select(self):
        """Anticollision + select through the cascade levels; returns (uid, sak)."""
        tx = self._tx
        rx = self._rx
        self._wr(_CollReg, 0)   # §9.3.1.15 ValuesAfterColl = 0: bits after a collision are 0
        uid = b""
        for sel in (_SEL_CL1, _SEL_CL2, _SEL_CL3):
            tx[1] = sel
            tx[2] = _NVB_ANTICOLL
            count, last_bits = self._transceive(2, _TICKS_ACTIVATE)
            if count != 5 or last_bits:
                raise ProtocolError(_error(_E_UID_CLN) % (count, last_bits))
            if rx[1] ^ rx[2] ^ rx[3] ^ rx[4] != rx[5]:
                raise ProtocolError(_error(_E_BCC))
            cln = bytes(self._rx_mv[1:6])
            tx[1] = sel
            tx[2] = _NVB_SELECT
            self._tx_mv[3:8] = cln
            self._expect(self._transceive(self._append_crc(7), _TICKS_ACTIVATE), 3)
            sak = rx[1]
            if sak & _SAK_CASCADE:
                if cln[0] != _CASCADE_TAG:
                    raise ProtocolError(_error(_E_NO_CASCADE_TAG))
                uid += cln[1:4]
            else:
                return uid + cln[0:4], sak
        raise ProtocolError(_error(_E_LEVELS))

    def _wakeup(self):
        """WUPA, twice if need be; returns ATQA.

        ISO/IEC 14443-3 §6.2 state diagram: a card still ACTIVE (after a CRC
        error, a NAK, a lost ACK) takes the first WUPA as an unexpected frame
        and drops to IDLE or HALT without answering; the second WUPA wakes it.
        The cost is a second timer period (1 ms) when the field is empty.
        """
        try:
            return self.request(True)
        except NoCard:
            return self.request(True)

    def detect(self, wakeup=False):
        """(uid, sak) of the card in the field, or None when there is none.

        wakeup=False polls with REQA (cards in HALT stay quiet); wakeup=True
        finds again a card that was halted, failed authentication or is still
        active from an interrupted exchange.
        """
        ready, self._ready = self._ready, None
        if ready is None:
            try:
                if wakeup:
                    self._wakeup()
                else:
                    self.request()
            except NoCard:
                return None
        elif ready is not True:
            raise ready
        return self.select()

    def reselect(self, uid):
        """WUPA + select the same card again (after AuthError, a NAK or halt)."""
        self.stop_crypto()
        self._wakeup()
        found, sak = self.select()
        if found != bytes(uid):
            raise ProtocolError(_error(_E_OTHER_CARD))
        return found, sak

    def halt(self):
        """HLTA; ISO/IEC 14443-3 §6.4.3: silence is success. Crypto1 is switched off after."""
        self._tx[1] = _HLTA
        self._tx[2] = 0
        try:
            answer = self._transceive(self._append_crc(2), _TICKS_ACTIVATE)
        except NoCard:
            answer = None
        self.stop_crypto()
        if answer is not None:
            raise ProtocolError(_error(_E_HLTA_ANSWERED))

    def release(self):
        """End a card session: HLTA and Crypto1 off, whatever state the card (or its absence) is in."""
        self._ready = None
        try:
            self.halt()
        except RC522Error:
            self.stop_crypto()

    # -- MIFARE Classic, MF1S50yyX §12 ------------------------------------------------------

    def auth(self, block, key, uid, use_key_b=False):
        """MFAuthent (§10.3.1.9) with key A or B; AuthError unless Crypto1 is on after."""
        if not 0 <= block <= 0xFF:
            raise ValueError(_error(_E_BLOCK_RANGE))
        if len(key) != 6:
            raise ValueError(_error(_E_KEY_SIZE))
        if len(uid) not in (4, 7, 10):
            raise ValueError(_error(_E_UID_SIZE))
        tx = self._tx
        tx[1] = _MF_AUTH_KEY_B if use_key_b else _MF_AUTH_KEY_A
        tx[2] = block
        tx[3:9] = key
        tx[9:13] = uid[-4:]     # MF1S50yyX §10.1.3 Table 16: UID3..UID6 for 7-byte UIDs
        self.card_commands += 1
        self._timer(_TICKS_AUTH)
        self._start(12, _CMD_MF_AUTHENT)
        # §10.3.1.9: IdleIRq when authenticated; a silent card leaves it to the timer, and a failed
        # exchange sets ErrorReg ProtocolErr (ErrIRq). MFCrypto1On is valid only once it ended.
        self._wait(_ComIrqReg, _IDLE_IRQ | _ERR_IRQ | _TIMER_IRQ)
        if not self._rd(_Status2Reg) & _CRYPTO1_ON:
            self._wr(_CommandReg, _CMD_IDLE)
            self._crypto = False
            raise AuthError(_error(_E_AUTH) % block)
        self._crypto = True

    def stop_crypto(self):
        """Clear Status2Reg MFCrypto1On (§9.3.1.9)."""
        self._wr(_Status2Reg, self._rd(_Status2Reg) & ~_CRYPTO1_ON & 0xFF)
        self._crypto = False

    def read_block(self, block):
        """READ (§12.3): 16 bytes, CRC_A checked."""
        self._expect(self._command(_MF_READ, block, _TICKS_READ), 18)
        return bytes(self._rx_mv[1:17])

    def write_block(self, block, data):
        """WRITE (§12.4): command and the 16 data bytes, each acknowledged."""
        if len(data) != 16:
            raise ValueError(_error(_E_BLOCK_SIZE))
        self._ack(self._command(_MF_WRITE, block))
        self._tx[1:17] = data
        self._ack(self._transceive(self._append_crc(16), _TICKS_STORE))
