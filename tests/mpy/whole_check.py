"""The whole terminal on real MicroPython: main.main() as the ESP32 runs it (driven by
tests/test_terminal_whole.py and bench/bench_heap.py).

usage: micropython -X heapsize=180k -m whole_check ROOT CHIP_PORT [MODULE...]
       python tests/romfs_mapped.py ROMFS_IMAGE --kit KIT_IMAGE -X heapsize=130k
           -c "import romfs_mount; romfs_mount.run_kit('whole_check')" ROOT CHIP_PORT [MODULE...]

ROOT is the terminal's filesystem as parkcard-flash leaves it (boot.py, main.py,
terminal/*.mpy, protocol/*.mpy, terminal.json, ca.der) plus keys/ (a file a secret),
which stands in for the NVS key store. It is mounted at / as on the ESP32. Run through
tests/romfs_mapped.py (a board with a ROMFS partition), ROOT has no terminal/ nor
protocol/: they are in the mapped image, mounted at /rom as the firmware does at
start-up (romfs_mount.py) before boot.py puts /rom first on the path. The
virtual RC522 runs in a CPython process (sim/chip_server.py) reached over
CHIP_PORT. The host board below is the ESP32 board's stand-in: the real
SSD1306 text display (framebuffer and all) on an I2C bus that only counts
bytes, a keypad fed from stdin, the real RC522 driver.

With MODULE names, each is imported first and its heap printed (`import NAME
BYTES`): the bench's per-import figures. Then `start BYTES` (heap in use before
main.main()), and main.main() runs for ever.

Commands on stdin, one a line: `keys 150#` (key presses), `heap` (answered by
`heap alloc=... free=... live_peak=...` after a collection, live_peak sampled with MODULE names
only, then micropython.mem_info() and qstr_info()), `file terminal.wallet` (answered by `file PATH`: where an
imported module was loaded from), `quit`.
Events on stdout: `screen LINE1|LINE2` whenever the display changes, `relay 1` / `relay 0` when a
gate's relay is driven.
"""

import gc
import sys

gc.collect()
HEAP_START = gc.mem_alloc()

import asyncio  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from romfs_mount import mount_rom  # noqa: E402
from sim.spi_link import ChipLink, LinkedPin, LinkedSpi  # noqa: E402

ROOT = sys.argv[1]
CHIP_PORT = int(sys.argv[2])
PROFILE = sys.argv[3:]


class _CountingI2C:
    """An I2C bus with an SSD1306 that accepts everything (the screen text is printed instead)."""

    def __init__(self):
        self.bytes = 0

    def writeto(self, address, buf):
        self.bytes += len(buf)

    def writevto(self, address, bufs):
        for buf in bufs:
            self.bytes += len(buf)


class _Keypad:
    """Keys from the stdin commands, one per scan."""

    def __init__(self):
        self.pending = []

    def get_key(self):
        return self.pending.pop(0) if self.pending else None


class _Buzzer:
    def play(self, pattern):
        pass


class _RelayPin:
    """A gate's relay output: each level it is driven to is printed (`relay 1` released, `relay 0` locked)."""

    def value(self, level):
        print("relay %d" % level)


class _Watchdog:
    def __init__(self, timeout_ms):
        self.feeds = 0

    def feed(self):
        self.feeds += 1


class _KeyStore:
    """NVS's stand-in: one file a secret under /keys (not in the image)."""

    def get(self, name):
        try:
            with open("keys/" + name, "rb") as f:
                return f.read()
        except OSError:
            return None

    def set(self, name, value):
        with open("keys/" + name, "wb") as f:
            f.write(value)

    def delete(self, name):
        try:
            os.remove("keys/" + name)
        except OSError:
            pass


def _mark(what):
    """With MODULE names (the bench): the heap in use when main.main() asks the board for `what`."""
    if PROFILE:
        gc.collect()
        print("board %s %d" % (what, gc.mem_alloc() - HEAP_START))


class HostBoard:
    """terminal/board.py's methods on the unix port: what main.main() asks of a board."""

    def __init__(self):
        self.link = ChipLink("127.0.0.1", CHIP_PORT)
        self._display = None
        self._keypad = _Keypad()
        self.offset_s = 0

    def reader(self):
        _mark("reader")
        from terminal.rc522 import RC522
        reader = RC522(LinkedSpi(self.link), LinkedPin(self.link))
        reader.init()
        return reader

    def display(self):
        if self._display is None:
            from terminal.devices import TextDisplay

            class Display(TextDisplay):
                def show(self, line1, line2=""):
                    if self.lines != (line1, line2):
                        print("screen %s|%s" % (line1, line2))
                    TextDisplay.show(self, line1, line2)

            self._display = Display(_CountingI2C(), 0x3C, 128, 64)
        return self._display

    def keypad(self):
        _mark("keypad")
        return self._keypad

    def buzzer(self):
        return _Buzzer()

    def relay(self):
        from terminal.devices import Relay
        return Relay(_RelayPin())

    def watchdog(self, timeout_ms):
        _mark("watchdog")
        return _Watchdog(timeout_ms)

    def keystore(self):
        return _KeyStore()

    def clock(self):
        return int(time.time()) + self.offset_s

    def set_clock(self, epoch_s):
        self.offset_s = epoch_s - int(time.time())

    def free_heap(self):
        return gc.mem_free()

    def data_dir(self):
        # Relative: the unix port's VfsPosix with a root renames absolute paths wrongly (both
        # names share one buffer), and the journal, blacklist and state replace files by rename.
        return "data"

    def network(self, ssid, password):
        _mark("network")
        return None


_peak = [0]  # the most heap in use after a collection, sampled every 10 ms (with MODULE names only)


async def sample_peak():
    """With MODULE names (the bench): keep the live peak, so `heap` can say what the busiest moment took."""
    while True:
        gc.collect()
        _peak[0] = max(_peak[0], gc.mem_alloc() - HEAP_START)
        await asyncio.sleep_ms(10)


def heap_line():
    gc.collect()
    info = "heap alloc=%d free=%d live_peak=%d" % (gc.mem_alloc() - HEAP_START, gc.mem_free(), _peak[0])
    try:
        import micropython
        micropython.mem_info()  # on stdout: the tests take the largest free block from it
        micropython.qstr_info()  # and the bench the interned names: a pool more is KBs at once
    except (ImportError, AttributeError):
        pass
    return info


async def commands(board):
    stdin = asyncio.StreamReader(sys.stdin)
    while True:
        words = (await stdin.readline()).split()
        if not words or words[0] == b"quit":
            print("bye")
            raise SystemExit(0)
        if words[0] == b"keys":
            board.keypad().pending.extend(words[1].decode())
            print("keys ok")
        elif words[0] == b"heap":
            print(heap_line())
        elif words[0] == b"file":
            print("file %s" % sys.modules[words[1].decode()].__file__)


# The device's filesystem at /, as the ESP32 mounts its littlefs partition.
os.umount("/")
os.mount(os.VfsPosix(ROOT), "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]
mount_rom()  # with a mapped image only: MicroPython mounts a ROMFS partition before boot.py runs

import boot  # noqa: E402,F401 - as the ESP32 runs it at reset (it puts /rom first when there is one)

for name in PROFILE:
    gc.collect()
    before = gc.mem_alloc()
    __import__(name)
    gc.collect()
    print("import %s %d" % (name, gc.mem_alloc() - before))

board = HostBoard()
asyncio.create_task(commands(board))  # MicroPython's asyncio.run() runs the tasks created before it
if PROFILE:
    asyncio.create_task(sample_peak())
gc.collect()
print("start %d" % (gc.mem_alloc() - HEAP_START))
import main  # noqa: E402

main.main(board)
