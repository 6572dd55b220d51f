"""Default wiring of a ParkCard terminal (ESP32-WROOM-32, no PSRAM).

This is the table of tools/flash/README.md, kept as data so the firmware's board
module and the tests read the same numbers. GPIO numbers, not header labels.

Avoided on purpose: 0, 2, 12, 15 (strapping pins that decide the boot mode and
flash voltage), 1 and 3 (UART0: the REPL that esptool and mpremote use), 6-11
(the module's SPI flash). 34-39 are input-only with no internal pull resistors,
so an input there is driven by its source or pulled up outside: the RC522's
IRQ, which the driver (firmware/terminal/rc522.py init) sets push-pull and
active high (MFRC522 datasheet §9.3.1.3-4: DivIEnReg IRQPushPull = 1, ComIEnReg
IRqInv = 0) and reads on a rising edge, and keypad column 1 on GPIO 35 with a
10 kΩ pull-up to 3V3 (EXTERNAL_PULLUPS). GPIO 5 is a strapping pin too (SDIO
timing), but it is the VSPI chip select by default and idles high with its
pull-up, which is what the strap wants. The gate's relay is on GPIO 4, no
strapping pin and quiet while the board boots: with the transistor's 10 kΩ base
pull-down the relay stays off from power-on until the firmware drives the pin
inactive, first thing at start. (GPIO 2, its first pin, chooses the boot mode
and drives the on-board LED of many boards.) Booths leave it unconnected.
"""

# Keys read left to right, top to bottom, matching the rows and cols below.
KEYPAD_LAYOUT = ("123A", "456B", "789C", "*0#D")

DEFAULT_PINS = {
    # MFRC522 on hardware SPI bus 2 (VSPI): machine.SPI(2, sck=18, mosi=23, miso=19).
    "rc522": {"spi_bus": 2, "sck": 18, "mosi": 23, "miso": 19, "cs": 5, "rst": 22, "irq": 34},
    # SSD1306 128x64 on hardware I2C bus 0, address 0x3C.
    "display": {"i2c_bus": 0, "sda": 16, "scl": 17, "address": 0x3C, "width": 128, "height": 64},
    # 4x4 matrix: rows are driven low one at a time (outputs), columns are
    # inputs with the internal pull-up (column 1, input-only GPIO 35: an
    # external one); a pressed key reads low.
    "keypad": {"rows": (13, 14, 26, 27), "cols": (35, 21, 32, 33), "layout": KEYPAD_LAYOUT},
    # Active buzzer through an NPN transistor; high = sound.
    "buzzer": {"pin": 25, "active_high": True},
    # A gate's turnstile relay through an NPN transistor; high = released. Unused on booths.
    "relay": {"pin": 4, "active_high": True},
}

STRAPPING_PINS = (0, 2, 5, 12, 15)
INPUT_ONLY_PINS = (34, 35, 36, 37, 38, 39)
RESERVED_PINS = (1, 3, 6, 7, 8, 9, 10, 11)
EXTERNAL_PULLUPS = (35,)    # inputs pulled up by a 10 kΩ resistor to 3V3 on the board, not by the chip

# Every pin the firmware drives or reads, with its direction.
OUTPUT_ROLES = (("rc522", "sck"), ("rc522", "mosi"), ("rc522", "cs"), ("rc522", "rst"),
                ("display", "sda"), ("display", "scl"), ("buzzer", "pin"), ("relay", "pin"))
INPUT_ROLES = (("rc522", "miso"), ("rc522", "irq"))


def assigned_pins(pins=DEFAULT_PINS):
    """Return [(part, role, gpio, direction)] for every wired GPIO."""
    out = []
    for part, role in OUTPUT_ROLES:
        out.append((part, role, pins[part][role], "out"))
    for part, role in INPUT_ROLES:
        out.append((part, role, pins[part][role], "in"))
    for i, gpio in enumerate(pins["keypad"]["rows"]):
        out.append(("keypad", "row%d" % (i + 1), gpio, "out"))
    for i, gpio in enumerate(pins["keypad"]["cols"]):
        out.append(("keypad", "col%d" % (i + 1), gpio, "in"))
    return out
