"""Small drivers for the terminal's peripherals: SSD1306 text display, matrix keypad, buzzer, a gate's relay,
NVS keys."""

import asyncio

from terminal.compat import const, sleep_ms

# SSD1306 datasheet §9 command table: display off, charge pump, addressing mode, on.
_SSD1306_INIT = const(b"\xae\xd5\x80\xa8\x3f\xd3\x00\x40\x8d\x14\x20\x00\xa1\xc8\xda\x12\x81\xcf\xd9\xf1\xdb\x40\xa4\xa6\xaf")
_CONTROL_CMD = const(0x00)


class TextDisplay:
    """Two lines of text on an SSD1306 over I2C, drawn with framebuf's 8x8 font."""

    def __init__(self, i2c, address, width, height):
        import framebuf
        self.i2c = i2c
        self.address = address
        self.width = width
        self.buffer = bytearray(width * height // 8)
        self.fb = framebuf.FrameBuffer(self.buffer, width, height, framebuf.MONO_VLSB)
        self._cmd = bytearray(2)
        for c in _SSD1306_INIT:
            self._command(c)
        self.lines = None  # the SSD1306's RAM holds noise at power-up: the first show() always draws

    def _command(self, c):
        self._cmd[0] = _CONTROL_CMD
        self._cmd[1] = c
        self.i2c.writeto(self.address, self._cmd)

    def show(self, line1, line2=""):
        """Replace the screen with two lines."""
        if self.lines == (line1, line2):
            return  # unchanged: skip the ~23 ms I2C redraw the 50-200 ms prompt loops would repeat
        self.lines = (line1, line2)
        self.fb.fill(0)
        self.fb.text(line1[:16], 0, 16, 1)
        self.fb.text(line2[:16], 0, 40, 1)
        for c in (0x21, 0, self.width - 1, 0x22, 0, 7):
            self._command(c)
        self.i2c.writevto(self.address, (b"\x40", self.buffer))


class MatrixKeypad:
    """A row-scanned key matrix; get_key() returns a newly pressed key or None, never blocks."""

    def __init__(self, rows, cols, layout):
        self.rows = rows
        self.cols = cols
        self.layout = layout
        self._down = None

    def get_key(self):
        """Scan once; report a key on its press edge only."""
        pressed = None
        for r, row in enumerate(self.rows):
            row.value(0)
            for c, col in enumerate(self.cols):
                if not col.value():
                    pressed = self.layout[r][c]
            row.value(1)
        if pressed == self._down:
            return None
        self._down = pressed
        return pressed


class Buzzer:
    """An active buzzer playing patterns in the background: flat tuples on_ms, off_ms, on_ms, off_ms, ..."""

    def __init__(self, pin, active_high=True):
        self.pin = pin
        self.on = 1 if active_high else 0
        self._task = None

    def play(self, pattern):
        """Start a pattern without waiting for it; a new pattern replaces the old."""
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.create_task(self._run(pattern))

    async def _run(self, pattern):
        try:
            for i in range(0, len(pattern), 2):
                on_ms, off_ms = pattern[i], pattern[i + 1]
                self.pin.value(self.on)
                await sleep_ms(on_ms)
                self.pin.value(1 - self.on)
                if off_ms:
                    await sleep_ms(off_ms)
        finally:
            self.pin.value(1 - self.on)


class Relay:
    """A gate's turnstile or door relay: open() pulses it for open_ms in the background, never blocking a tap."""

    def __init__(self, pin, active_high=True):
        self.pin = pin
        self.on = 1 if active_high else 0
        self._task = None

    def open(self, open_ms):
        """Release the turnstile for open_ms; a new opening restarts the pulse."""
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.create_task(self._pulse(open_ms))

    async def _pulse(self, open_ms):
        try:
            self.pin.value(self.on)
            await sleep_ms(open_ms)
        finally:
            self.pin.value(1 - self.on)


_ESP_ERR_NVS_NOT_FOUND = const(0x1102)       # ESP-IDF nvs.h; MicroPython raises OSError(-code)
_ESP_ERR_NVS_INVALID_LENGTH = const(0x110C)  # the buffer is smaller than the blob
_BLOB_FIRST = const(128)                     # the secrets parkcard-flash stores are at most this long
_BLOB_MAX = const(4096)


class NvsKeyStore:
    """Secrets in the ESP32's NVS partition (namespace per application)."""

    def __init__(self, namespace):
        import esp32
        self.nvs = esp32.NVS(namespace)

    def get(self, name):
        """Return the stored bytes, or None when there are none; a blob of any size up to _BLOB_MAX is read whole."""
        size = _BLOB_FIRST
        while True:
            buf = bytearray(size)
            try:
                return bytes(buf[:self.nvs.get_blob(name, buf)])
            except OSError as exc:
                code = abs(exc.args[0]) if exc.args and isinstance(exc.args[0], int) else 0
                if code == _ESP_ERR_NVS_NOT_FOUND:
                    return None
                if code != _ESP_ERR_NVS_INVALID_LENGTH or size >= _BLOB_MAX:
                    raise  # NVS trouble is not an absent secret: the terminal must not look unprovisioned
                size *= 2

    def set(self, name, value):
        """Store bytes durably."""
        self.nvs.set_blob(name, value)
        self.nvs.commit()

    def delete(self, name):
        """Forget a secret (de-authorisation)."""
        try:
            self.nvs.erase_key(name)
            self.nvs.commit()
        except OSError:
            pass
