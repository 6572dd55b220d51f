"""A register-level virtual MFRC522 behind a machine.SPI-like object.

The driver (terminal/rc522.py) talks to ``VirtualMFRC522(field).spi`` and
``.cs`` exactly as it talks to the real chip: the SPI address byte protocol of
MFRC522 §8.1.2 (address byte ((reg << 1) & 0x7E) | 0x80 for a read, the next
address clocked in while the current value is clocked out, bursts to the
FIFO), command execution through CommandReg, and completion through the
interrupt request bits. Commands complete synchronously on the register
write that starts them; a driver must still wait on the IRQ bits, and the
hang_next_command() fault makes one command never finish.

Truer to the chip than a frame relay (MFRC522 datasheet Rev. 3.9):
- The timer unit (§8.5, §9.3.3.10-12) runs in the chip's own time (``clock``,
  microseconds; the host's monotonic clock unless a test gives its own):
  TModeReg TAuto starts it at the end of a transmission and the first bits
  of an answer stop it; ControlReg TStartNow/TStopNow start and stop it;
  TimerIRq is set only once TPrescaler and TReload have counted down, so a
  timeout fires only when a counter runs. TCounterValReg and Status1Reg
  TRunning read back its state.
- The IRQ pin (§9.3.1.3-4, ComIEnReg/DivIEnReg) is ``chip.irq``, a
  machine.Pin-like input with .value() and .irq(handler, trigger): high or
  low by IRqInv, and an open-drain output (IRQPushPull = 0) never rises on
  its own (GPIO 34 has no pull-up). ``on_timer`` (set by the host board)
  is told when a running timer will expire, so the line rises on time
  without anyone polling.
- Crypto1 has effect on the air (§9.3.1.9 Status2Reg MFCrypto1On): while
  the bit is set every frame goes out enciphered, so a card that is not
  authenticated (a REQA to a card presented again) does not understand it,
  and a plain frame to an authenticated card is noise to it too.
- MFAuthent (§10.3.1.9) does not end if the card does not answer (the timer
  ends the wait); a failed authentication leaves MFCrypto1On at 0 and, once
  the card took part in it, sets ErrorReg ProtocolErr.

Runs on MicroPython (unix port, 100 KB heap) and CPython.
"""

from sim.mifare import crc_a

try:
    from time import monotonic_ns as _ns
except ImportError:     # MicroPython unix port
    from time import time_ns as _ns


def monotonic_us():
    """The host's clock in microseconds: the chip's crystal unless a test brings its own."""
    return _ns() // 1000


# MFRC522 §9.2 register map (page 0..3).
_COMMAND = 0x01
_COM_IEN = 0x02
_DIV_IEN = 0x03
_COM_IRQ = 0x04
_DIV_IRQ = 0x05
_ERROR = 0x06
_STATUS1 = 0x07
_STATUS2 = 0x08
_FIFO_DATA = 0x09
_FIFO_LEVEL = 0x0A
_CONTROL = 0x0C
_BIT_FRAMING = 0x0D
_COLL = 0x0E
_MODE = 0x11
_TX_CONTROL = 0x14
_DEMOD = 0x19
_CRC_RESULT_H = 0x21
_CRC_RESULT_L = 0x22
_T_MODE = 0x2A
_T_PRESCALER = 0x2B
_T_RELOAD_H = 0x2C
_T_RELOAD_L = 0x2D
_T_COUNTER_H = 0x2E
_T_COUNTER_L = 0x2F
_VERSION = 0x37

# MFRC522 §10.3 Table 149 commands.
_CMD_IDLE = 0x0
_CMD_MEM = 0x1
_CMD_CALC_CRC = 0x3
_CMD_TRANSMIT = 0x4
_CMD_RECEIVE = 0x8
_CMD_TRANSCEIVE = 0xC
_CMD_MF_AUTHENT = 0xE
_CMD_SOFT_RESET = 0xF

# Bits.
_POWER_DOWN = 0x10      # CommandReg §9.3.1.2
_SET = 0x80             # ComIrqReg Set1 / DivIrqReg Set2 §9.3.1.5-6
_TX_IRQ = 0x40
_RX_IRQ = 0x20
_IDLE_IRQ = 0x10
_ERR_IRQ = 0x02
_TIMER_IRQ = 0x01
_CRC_IRQ = 0x04         # DivIrqReg
_IRQ_INV = 0x80         # ComIEnReg §9.3.1.3
_IRQ_PUSH_PULL = 0x80   # DivIEnReg §9.3.1.4
_DIV_IRQ_BITS = 0x14    # DivIrqReg MfinActIRq | CRCIRq
_BUFFER_OVFL = 0x10     # ErrorReg §9.3.1.7
_COLL_ERR = 0x08
_PROTOCOL_ERR = 0x01
_CRC_READY = 0x20       # Status1Reg CRCReady §9.3.1.8
_IRQ = 0x10             # Status1Reg IRq
_T_RUNNING = 0x08       # Status1Reg TRunning
_CRYPTO1_ON = 0x08      # Status2Reg MFCrypto1On §9.3.1.9
_FLUSH = 0x80           # FIFOLevelReg FlushBuffer
_START_SEND = 0x80      # BitFramingReg
_VALUES_AFTER_COLL = 0x80   # CollReg §9.3.1.15
_COLL_POS_NOT_VALID = 0x20
_T_AUTO = 0x80          # TModeReg §9.3.3.10
_T_AUTO_RESTART = 0x10
_T_PRESCAL_EVEN = 0x10  # DemodReg §9.3.2.10
_T_STOP_NOW = 0x80      # ControlReg §9.3.1.13
_T_START_NOW = 0x40
_FC_KHZ = 13560         # the 13.56 MHz carrier the timer divides (§8.5)
_ANTENNA = 0x03         # TxControlReg Tx2RFEn | Tx1RFEn

_FIFO_SIZE = 64
_VERSION_2_0 = 0x92

# MFRC522 §9.3 reset values that differ from zero.
_RESET = ((0x02, 0x80), (_COM_IRQ, 0x14), (_STATUS1, 0x21),
          (0x0B, 0x08), (_CONTROL, 0x10), (_COLL, 0xA0), (_MODE, 0x3F),
          (_TX_CONTROL, 0x80), (0x16, 0x10), (0x17, 0x84), (0x18, 0x84),
          (0x19, 0x4D), (0x1A, 0x21), (0x24, 0x26), (0x26, 0x48), (0x27, 0x88),
          (0x28, 0x20), (0x29, 0x20), (_VERSION, _VERSION_2_0))
_CRC_PRESETS = (0x0000, 0x6363, 0xA671, 0xFFFF)   # ModeReg CRCPreset §9.3.2.2


def fire_timer_on_time(chip):
    """Let the running event loop fire the chip's timer when it runs out: the host's stand-in for its crystal.

    Without it the timer is seen only when the driver reads a register; with it the IRQ
    line rises on time while the driver awaits it.
    """
    chip.on_timer = lambda us: _schedule_tick(chip, us)


def _schedule_tick(chip, us):
    import asyncio
    get_loop = getattr(asyncio, "get_running_loop", None)
    if get_loop is None:        # MicroPython: no call_later
        asyncio.create_task(_tick_later(chip, us))
        return
    try:
        get_loop().call_later(us / 1e6, _tick, chip)
    except RuntimeError:
        pass    # no event loop: a synchronous caller polls the chip, which sees its own time


async def _tick_later(chip, us):
    import asyncio
    await asyncio.sleep(us / 1e6)
    _tick(chip)


def _tick(chip):
    chip.tick()
    left = chip.timer_remaining_us()
    if left:    # woken a little early: the count is not down yet
        _schedule_tick(chip, left)


class HostFlag:
    """asyncio.ThreadSafeFlag for CPython (its asyncio has none), in whichever event loop waits on it.

    An asyncio.Event would bind to the first loop that waits; host tests run several loops.
    """

    def __init__(self):
        self._is_set = False
        self._waiter = None

    def set(self):
        """Raise the flag and wake the task waiting on it."""
        self._is_set = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def clear(self):
        """Lower the flag."""
        self._is_set = False

    async def wait(self):
        """Wait until the flag is raised, then lower it."""
        if not self._is_set:
            import asyncio
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self._is_set = False


def irq_flag():
    """What the driver's IRQ handler raises on this interpreter: None (its own ThreadSafeFlag) or a HostFlag."""
    import asyncio
    return None if hasattr(asyncio, "ThreadSafeFlag") else HostFlag()


class IrqPin:
    """The chip's IRQ output as the board's GPIO input sees it, like machine.Pin: value(), irq()."""

    IRQ_RISING = 1      # the ESP32 port's values
    IRQ_FALLING = 2

    def __init__(self):
        self._level = 0
        self._handler = None
        self._trigger = 0
        self.edges = 0

    def value(self, v=None):
        """The line's level (0 or 1); an input cannot be driven."""
        return self._level

    def irq(self, handler=None, trigger=IRQ_RISING):
        """Call handler(pin) on the given edges, like machine.Pin.irq."""
        self._handler = handler
        self._trigger = trigger

    def _drive(self, level):
        if level == self._level:
            return
        self._level = level
        self.edges += 1
        if self._handler is not None and self._trigger & (self.IRQ_RISING if level else self.IRQ_FALLING):
            self._handler(self)


class _Pin:
    """Chip select: callable like machine.Pin and with .value()."""

    def __init__(self, chip):
        self._chip = chip
        self._level = 1

    def value(self, v=None):
        if v is None:
            return self._level
        v = 1 if v else 0
        if self._level and not v:
            self._chip._select()
        self._level = v

    __call__ = value


class _Spi:
    """machine.SPI-compatible: write, read, readinto, write_readinto."""

    def __init__(self, chip):
        self._chip = chip

    def write(self, buf):
        clock = self._chip._clock
        for b in buf:
            clock(b)

    def read(self, nbytes, write=0x00):
        buf = bytearray(nbytes)
        self.readinto(buf, write)
        return bytes(buf)

    def readinto(self, buf, write=0x00):
        clock = self._chip._clock
        for i in range(len(buf)):
            buf[i] = clock(write)

    def write_readinto(self, write_buf, read_buf):
        if len(write_buf) != len(read_buf):
            raise ValueError("buffers must be the same length")
        clock = self._chip._clock
        for i in range(len(write_buf)):
            read_buf[i] = clock(write_buf[i])


class VirtualMFRC522:
    """The chip: registers, a 64-byte FIFO, commands, and the field it drives."""

    def __init__(self, field, clock=monotonic_us):
        self.field = field
        self.clock = clock          # microseconds: the chip's own time
        self.on_timer = None        # on_timer(us): the running timer expires in us microseconds
        self.spi = _Spi(self)
        self.cs = _Pin(self)
        self.irq = IrqPin()
        self.card_commands = 0
        self.spi_bytes = 0
        self.spi_transactions = 0
        self.ignored_bytes = 0      # clocked while CS was high: a driver bug
        self.log = []               # (first frame byte, tx bytes, rx bytes) per card command
        self._corrupt = False
        self._inject_error = 0
        self._hang = False
        self._stuck = False
        self._regs = bytearray(64)
        self._fifo = bytearray()
        self._addr = None           # None: next byte is an address byte
        self._t_start = None        # when the running timer was (re)loaded; None: stopped
        self._t_div = 1             # timer clock divider and reload value, latched at start
        self._t_reload = 0
        self._soft_reset()

    # -- fault hooks ---------------------------------------------------------------

    def corrupt_next_response(self):
        """Flip the last received bit of the next card answer (breaks its CRC)."""
        self._corrupt = True

    def error_next_response(self, error_bits):
        """The next card answer arrives with these ErrorReg bits set (ParityErr 0x02, ...)."""
        self._inject_error = error_bits

    def hang_next_command(self):
        """The next command never finishes: no IRQ bit is ever set for it."""
        self._hang = True

    def reg(self, addr):
        """A register's value, without side effects other than the chip's time passing (for tests)."""
        self.tick()
        if addr == _FIFO_LEVEL:
            return len(self._fifo)
        if addr == _STATUS1:
            v = self._regs[_STATUS1] & ~(_IRQ | _T_RUNNING) & 0xFF
            return v | (_IRQ if self._irq_asserted() else 0) | (_T_RUNNING if self._t_start is not None else 0)
        if addr in (_T_COUNTER_H, _T_COUNTER_L):
            value = self._t_counter()
            return value >> 8 if addr == _T_COUNTER_H else value & 0xFF
        return self._regs[addr]

    # -- timer unit, MFRC522 §8.5 -----------------------------------------------------

    def _t_us(self, counts):
        """Microseconds for counts timer clocks (§8.5: (2 * TPrescaler + 1) / 13.56 MHz each)."""
        return counts * self._t_div * 1000 // _FC_KHZ

    def _timer_start(self):
        regs = self._regs
        prescaler = ((regs[_T_MODE] & 0x0F) << 8) | regs[_T_PRESCALER]
        self._t_div = 2 * prescaler + (2 if regs[_DEMOD] & _T_PRESCAL_EVEN else 1)
        self._t_reload = (regs[_T_RELOAD_H] << 8) | regs[_T_RELOAD_L]
        self._t_start = self.clock()
        if self.on_timer is not None:
            self.on_timer(self.timer_remaining_us())

    def _timer_stop(self):
        self.tick()
        self._t_start = None

    def _t_counter(self):
        if self._t_start is None:
            return 0
        elapsed = (self.clock() - self._t_start) * _FC_KHZ // (1000 * self._t_div)
        return max(0, self._t_reload - elapsed)

    def timer_remaining_us(self):
        """Microseconds until the running timer reaches zero, or None when it is stopped."""
        if self._t_start is None:
            return None
        return max(0, self._t_start + self._t_us(self._t_reload + 1) - self.clock())

    def tick(self):
        """Let the chip's time pass: a timer that counted down sets TimerIRq (§9.3.1.5) and the IRQ line."""
        if self._t_start is None:
            return
        period = self._t_us(self._t_reload + 1)
        late = self.clock() - self._t_start - period
        if late < 0:
            return
        self._regs[_COM_IRQ] |= _TIMER_IRQ
        if self._regs[_T_MODE] & _T_AUTO_RESTART:
            # §9.3.3.10 TAutoRestart: reloads and counts down again from TReload.
            self._t_start += period * (1 + late // max(period, 1))
            if self.on_timer is not None:
                self.on_timer(self.timer_remaining_us())
        else:
            self._t_start = None
        self._update_irq()

    # -- IRQ pin, MFRC522 §9.3.1.3-4 ----------------------------------------------------

    def _irq_asserted(self):
        regs = self._regs
        return bool(regs[_COM_IRQ] & regs[_COM_IEN] & 0x7F or regs[_DIV_IRQ] & regs[_DIV_IEN] & _DIV_IRQ_BITS)

    def _update_irq(self):
        regs = self._regs
        level = self._irq_asserted() != bool(regs[_COM_IEN] & _IRQ_INV)
        # Open drain (IRQPushPull = 0) only pulls low: with no pull-up on the input the line never rises.
        self.irq._drive(1 if level and regs[_DIV_IEN] & _IRQ_PUSH_PULL else 0)

    # -- SPI, MFRC522 §8.1.2 -------------------------------------------------------

    def _select(self):
        self.spi_transactions += 1
        self._addr = None

    def _clock(self, mosi):
        if self.cs._level:
            self.ignored_bytes += 1
            return 0xFF
        self.spi_bytes += 1
        addr = self._addr
        self._addr = mosi
        if addr is None:
            return 0
        if addr & 0x80:
            return self._read((addr >> 1) & 0x3F)
        self._addr = addr   # a write keeps its address: a burst to one register
        self._write((addr >> 1) & 0x3F, mosi)
        return 0

    def _read(self, reg):
        if reg == _FIFO_DATA:
            if not self._fifo:
                return 0
            b = self._fifo[0]
            self._fifo = self._fifo[1:]
            return b
        return self.reg(reg)

    def _write(self, reg, v):
        regs = self._regs
        if reg == _COMMAND:
            regs[_COMMAND] = (regs[_COMMAND] & 0x0F) | (v & 0x30)
            self._command(v & 0x0F)
        elif reg in (_COM_IRQ, _DIV_IRQ):
            if v & _SET:
                regs[reg] |= v & 0x7F
            else:
                regs[reg] &= ~v & 0xFF
        elif reg == _FIFO_DATA:
            self._push(bytes((v,)))
        elif reg == _FIFO_LEVEL:
            if v & _FLUSH:
                self._fifo = bytearray()
                regs[_ERROR] &= ~_BUFFER_OVFL & 0xFF
        elif reg == _STATUS2:
            # §9.3.1.9: software may clear MFCrypto1On, only MFAuthent sets it.
            regs[_STATUS2] = (regs[_STATUS2] & (0x07 | (v & _CRYPTO1_ON))) | (v & 0xC0)
        elif reg == _COLL:
            regs[_COLL] = (regs[_COLL] & 0x7F) | (v & _VALUES_AFTER_COLL)
        elif reg == _BIT_FRAMING:
            regs[reg] = v
            if v & _START_SEND and regs[_COMMAND] & 0x0F == _CMD_TRANSCEIVE and not self._stuck:
                self._transceive()
        elif reg == _TX_CONTROL:
            regs[reg] = v
            self.field.rf(v & _ANTENNA != 0)
        elif reg == _CONTROL:
            # §9.3.1.13: TStopNow stops the timer, TStartNow starts it; both read back as 0.
            if v & _T_STOP_NOW:
                self._timer_stop()
            elif v & _T_START_NOW:
                self._timer_start()
        elif reg not in (_ERROR, _STATUS1, _CRC_RESULT_H, _CRC_RESULT_L, _VERSION, _T_COUNTER_H, _T_COUNTER_L):
            regs[reg] = v
        self._update_irq()

    def _push(self, data):
        space = _FIFO_SIZE - len(self._fifo)
        if len(data) > space:
            self._regs[_ERROR] |= _BUFFER_OVFL
            self._regs[_COM_IRQ] |= _ERR_IRQ
            data = data[:space]
        self._fifo += data

    # -- commands, MFRC522 §10.3 -------------------------------------------------------

    def _set_command(self, cmd):
        self._regs[_COMMAND] = (self._regs[_COMMAND] & 0xF0) | cmd

    def _command(self, cmd):
        if cmd == _CMD_SOFT_RESET:
            self._soft_reset()
            return
        self._set_command(cmd)
        if cmd == _CMD_IDLE:
            self._stuck = False
            return
        if self._hang:
            self._hang = False
            self._stuck = True
            return
        self._regs[_ERROR] = 0      # errors are cleared when a command starts
        if cmd == _CMD_CALC_CRC:
            crc = crc_a(self._fifo, None, _CRC_PRESETS[self._regs[_MODE] & 0x03])
            self._fifo = bytearray()
            self._regs[_CRC_RESULT_H] = crc >> 8
            self._regs[_CRC_RESULT_L] = crc & 0xFF
            self._regs[_STATUS1] |= _CRC_READY
            self._regs[_DIV_IRQ] |= _CRC_IRQ
        elif cmd == _CMD_MF_AUTHENT:
            self._authenticate()
        elif cmd == _CMD_TRANSMIT:
            frame = bytes(self._fifo)
            self._fifo = bytearray()
            self._send(frame, len(frame) * 8)
            self._regs[_COM_IRQ] |= _TX_IRQ | _IDLE_IRQ
            self._set_command(_CMD_IDLE)
        elif cmd == _CMD_MEM:
            self._mem()
        elif cmd == _CMD_TRANSCEIVE:
            if self._regs[_BIT_FRAMING] & _START_SEND:
                self._transceive()
        elif cmd != _CMD_RECEIVE:   # nothing ever arrives unasked: Receive waits forever
            self._regs[_COM_IRQ] |= _IDLE_IRQ
            self._set_command(_CMD_IDLE)

    def _soft_reset(self):
        self._regs = bytearray(64)
        for reg, v in _RESET:
            self._regs[reg] = v
        self._fifo = bytearray()
        self._mem_buf = bytes(25)
        self._stuck = False
        self._t_start = None
        self.field.rf(False)
        self._update_irq()

    def _mem(self):
        # §10.3.1.2 Mem: 25 bytes from the FIFO to the internal buffer, or back when empty.
        if self._fifo:
            self._mem_buf = bytes(self._fifo[:25])
            self._fifo = self._fifo[25:]
        else:
            self._push(self._mem_buf)
        self._regs[_COM_IRQ] |= _IDLE_IRQ
        self._set_command(_CMD_IDLE)

    def _transmission(self):
        """A frame goes out: under TAuto the timer restarts at its end, so an old count stops (§9.3.3.10)."""
        if self._regs[_T_MODE] & _T_AUTO:
            self._timer_stop()

    def _no_answer(self):
        """The transmission ended and nothing came back: TAuto starts the timer now (§9.3.3.10)."""
        if self._regs[_T_MODE] & _T_AUTO:
            self._timer_start()

    def _crypto_on(self):
        return bool(self._regs[_STATUS2] & _CRYPTO1_ON)

    def _send(self, frame, nbits):
        self.card_commands += 1
        return self.field.transceive(frame, nbits, self._crypto_on())

    def _authenticate(self):
        # §10.3.1.9 MFAuthent: FIFO = command, block, 6 key bytes, 4 UID bytes.
        f = bytes(self._fifo)
        self._fifo = bytearray()
        self.card_commands += 1
        answered = None
        self._transmission()
        if len(f) == 12 and f[0] in (0x60, 0x61) and self._regs[_TX_CONTROL] & _ANTENNA:
            # A nested authentication goes out enciphered under the current session (MF1S50yyX §10.1).
            answered = self.field.authenticate(f[0] == 0x61, f[1], f[2:8], f[8:12], self._crypto_on())
        # Air time: AUTH + CRC (4) -> nT (4); nR aR (8) -> aT (4).
        self.log.append((f[0] if f else 0, 12, 8 if answered else (4 if answered is False else 0)))
        regs = self._regs
        if answered:
            regs[_STATUS2] |= _CRYPTO1_ON
            regs[_COM_IRQ] |= _IDLE_IRQ
            self._set_command(_CMD_IDLE)
            return
        # §10.3.1.9: MFCrypto1On is 0 after a failed authentication, and an error in it sets
        # ErrorReg ProtocolErr. The command does not end by itself: the timer (TAuto) ends the wait.
        regs[_STATUS2] &= ~_CRYPTO1_ON & 0xFF
        if answered is False:
            regs[_ERROR] |= _PROTOCOL_ERR
            regs[_COM_IRQ] |= _ERR_IRQ
        self._no_answer()

    def _transceive(self):
        regs = self._regs
        framing = regs[_BIT_FRAMING]
        regs[_BIT_FRAMING] = framing & 0x7F
        frame = bytes(self._fifo)
        self._fifo = bytearray()
        tx_last = framing & 0x07
        rx_align = (framing >> 4) & 0x07
        nbits = len(frame) * 8 - ((8 - tx_last) if tx_last else 0)
        regs[_COM_IRQ] |= _TX_IRQ
        self._transmission()
        answers = self._send(frame, nbits) if regs[_TX_CONTROL] & _ANTENNA else []
        if not answers:
            self.log.append((frame[0] if frame else 0, len(frame), 0))
            self._no_answer()
            return
        bits, count, coll = _combine(answers)
        if self._corrupt:
            self._corrupt = False
            bits ^= 1 << (count - 1)
        if coll is not None and not regs[_COLL] & _VALUES_AFTER_COLL:
            bits &= (1 << coll) - 1
        total = count + rx_align
        data = (bits << rx_align).to_bytes((total + 7) // 8, "little")
        self.log.append((frame[0] if frame else 0, len(frame), len(data)))
        self._push(data)
        regs[_CONTROL] = (regs[_CONTROL] & 0xF8) | (total & 0x07)
        if coll is not None:
            pos = coll + rx_align + 1   # 1-based bit of the received frame
            regs[_COLL] = (regs[_COLL] & 0x80) | (_COLL_POS_NOT_VALID if pos > 32 else pos & 0x1F)
            regs[_ERROR] |= _COLL_ERR
        regs[_ERROR] |= self._inject_error
        self._inject_error = 0
        if regs[_ERROR]:
            regs[_COM_IRQ] |= _ERR_IRQ
        regs[_COM_IRQ] |= _RX_IRQ
        # §9.3.3.10 TAuto: the first bits of the answer stop the timer; Transceive stays active.


def _combine(answers):
    """What the receiver hears from several cards: (bits, nbits, first collision bit)."""
    bits, count = answers[0]
    coll = None
    for other, n in answers[1:]:
        m = min(n, count)
        diff = (other ^ bits) & ((1 << m) - 1)
        if diff:
            i = 0
            while not (diff >> i) & 1:
                i += 1
        elif n != count:
            i = m
        else:
            continue
        coll = i if coll is None else min(coll, i)
        if n > count:
            bits, count = other, n
    return bits, count, coll
