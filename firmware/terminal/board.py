"""The ESP32 board: every piece of hardware the application touches, built on request.

Nothing is constructed at import time; the application asks the board for a
reader, display, keypad, buzzer, watchdog, key store and clock. The host's
stand-in with the same methods is sim/board.py. Pin numbers follow the wiring
table of tools/flash/README.md.
"""

import time

from terminal.devices import Buzzer, MatrixKeypad, NvsKeyStore, Relay, TextDisplay

DEFAULT_PINS = {
    "rc522": {"spi_bus": 2, "sck": 18, "mosi": 23, "miso": 19, "cs": 5, "rst": 22, "irq": 34},
    "display": {"i2c_bus": 0, "sda": 16, "scl": 17, "address": 0x3C, "width": 128, "height": 64},
    "keypad": {"rows": (13, 14, 26, 27), "cols": (35, 21, 32, 33), "layout": ("123A", "456B", "789C", "*0#D")},
    "buzzer": {"pin": 25, "active_high": True},
    # A gate's turnstile. GPIO 4: no strapping role (GPIO 2, the old choice, picks the boot mode and lights the
    # on-board LED of many boards), silent during boot; its base pull-down keeps the relay off until the
    # firmware drives it (assemble.py, first thing). Unused on booths.
    "relay": {"pin": 4, "active_high": True},
}
_INPUT_ONLY_FROM = 34   # GPIO 34-39: input only, no internal pull resistors (ESP32 TRM §4.10): pulled up outside
SPI_BAUD = 4000000   # MFRC522 §8.1.2: SPI up to 10 Mbit/s; 4 MHz is safe on jumper wires
# MicroPython ports with a 2000 epoch report time.gmtime(0) as year 2000.
_EPOCH_OFFSET_S = 946684800 if time.gmtime(0)[0] == 2000 else 0


class Board:
    """ESP32-WROOM-32 terminal with RC522, SSD1306, 4x4 keypad and buzzer."""

    def __init__(self, pins=None):
        self.pins = pins or DEFAULT_PINS
        self._relay = None

    def reader(self):
        """The RC522 on hardware SPI (bus by id, not the bit-banged constructor), its IRQ pin if wired."""
        from machine import SPI, Pin
        from terminal.rc522 import RC522
        p = self.pins["rc522"]
        spi = SPI(p["spi_bus"], baudrate=SPI_BAUD, polarity=0, phase=0,
                  sck=Pin(p["sck"]), mosi=Pin(p["mosi"]), miso=Pin(p["miso"]))
        # The IRQ input (GPIO 34: input only, no pull resistors) is driven push-pull by the chip (rc522.init).
        irq = Pin(p["irq"], Pin.IN) if p.get("irq") is not None else None
        reader = RC522(spi, Pin(p["cs"], Pin.OUT, value=1), Pin(p["rst"], Pin.OUT, value=1), irq=irq)
        reader.init()
        return reader

    def display(self):
        """Two-line text display on the SSD1306."""
        from machine import I2C, Pin
        p = self.pins["display"]
        return TextDisplay(I2C(p["i2c_bus"], sda=Pin(p["sda"]), scl=Pin(p["scl"])), p["address"], p["width"],
                           p["height"])

    def keypad(self):
        """The 4x4 matrix keypad."""
        from machine import Pin
        p = self.pins["keypad"]
        rows = [Pin(n, Pin.OUT, value=1) for n in p["rows"]]
        cols = [Pin(n, Pin.IN, Pin.PULL_UP if n < _INPUT_ONLY_FROM else None) for n in p["cols"]]
        return MatrixKeypad(rows, cols, p["layout"])

    def buzzer(self):
        """The active buzzer."""
        from machine import Pin
        p = self.pins["buzzer"]
        return Buzzer(Pin(p["pin"], Pin.OUT, value=0 if p["active_high"] else 1), p["active_high"])

    def relay(self):
        """The gate's turnstile relay, driven inactive when first asked for (at start, by assemble); one per board."""
        if self._relay is None:
            from machine import Pin
            p = self.pins["relay"]
            self._relay = Relay(Pin(p["pin"], Pin.OUT, value=0 if p["active_high"] else 1), p["active_high"])
        return self._relay

    def watchdog(self, timeout_ms):
        """The hardware watchdog; feed() it only while the main loop is healthy."""
        from machine import WDT
        return WDT(timeout=timeout_ms)

    def keystore(self):
        """Secrets in NVS, never in application files."""
        return NvsKeyStore("parkcard")

    def clock(self):
        """UTC epoch seconds."""
        return time.time() + _EPOCH_OFFSET_S

    def set_clock(self, epoch_s):
        """Set the RTC from the hub's time."""
        from machine import RTC
        tm = time.gmtime(epoch_s - _EPOCH_OFFSET_S)
        RTC().datetime((tm[0], tm[1], tm[2], tm[6] + 1, tm[3], tm[4], tm[5], 0))

    def free_heap(self):
        """Free heap bytes for the status report."""
        import gc
        return gc.mem_free()

    def data_dir(self):
        """Where the journal and blacklist live (littlefs on the ESP32)."""
        return "/data"

    def network(self, ssid, password):
        """Start Wi-Fi without waiting for it: the MQTT client retries until it is up."""
        import network
        wlan = network.WLAN(network.STA_IF)
        wlan.active(True)
        if not wlan.isconnected():
            wlan.connect(ssid, password)
        return wlan
