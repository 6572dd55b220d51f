"""The host's stand-in for terminal/board.py: virtual reader, recorded screen and buzzer."""

import json
import os
import time

from sim.mfrc522 import VirtualMFRC522, fire_timer_on_time, irq_flag
from sim.mifare import Field


KEPT_MAX = 64       # what a recording part remembers, the newest: a long demo must not grow without end


def keep(kept, value):
    """Append value to a recording part's list, dropping the oldest past KEPT_MAX."""
    kept.append(value)
    if len(kept) > KEPT_MAX:
        kept.pop(0)


class RecordingDisplay:
    """Keeps the current two lines and a bounded history for tests and the demo."""

    def __init__(self):
        self.lines = ("", "")
        self.history = []

    def show(self, line1, line2=""):
        """Replace the screen with two lines."""
        self.lines = (line1, line2)
        keep(self.history, self.lines)


class ScriptedKeypad:
    """Keys fed by a test or the demo, returned one per scan."""

    def __init__(self):
        self.pending = []

    def feed(self, keys):
        """Queue key presses, e.g. feed('1250#')."""
        self.pending.extend(keys)

    def get_key(self):
        """Return the next queued key or None."""
        return self.pending.pop(0) if self.pending else None


class RecordingBuzzer:
    """Remembers the patterns played."""

    def __init__(self):
        self.played = []

    def play(self, pattern):
        """Record a pattern instead of sounding it."""
        keep(self.played, pattern)


class RecordingRelay:
    """A gate's relay on the host: counts and remembers its openings (open_ms each)."""

    def __init__(self):
        self.openings = []

    def open(self, open_ms):
        """Record an opening instead of switching a turnstile."""
        keep(self.openings, open_ms)


class SimWatchdog:
    """Counts feeds; a test can check the loop kept feeding it."""

    def __init__(self, timeout_ms):
        self.timeout_ms = timeout_ms
        self.feeds = 0

    def feed(self):
        """Record a feed."""
        self.feeds += 1


class FileKeyStore:
    """Secrets in one small file outside the application directory (the host's NVS)."""

    def __init__(self, path):
        self.path = path

    def _load(self):
        try:
            with open(self.path) as f:
                return json.load(f)
        except OSError:
            return {}

    def get(self, name):
        """Return the stored bytes or None."""
        value = self._load().get(name)
        return bytes.fromhex(value) if value is not None else None

    def set(self, name, value):
        """Store bytes."""
        data = self._load()
        data[name] = "".join("%02x" % b for b in value)
        self._save(data)

    def delete(self, name):
        """Forget a secret."""
        data = self._load()
        if name in data:
            del data[name]
            self._save(data)

    def _save(self, data):
        # All or nothing, like NVS commits: a cut mid-write leaves the old secrets.
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.rename(tmp, self.path)


class SimBoard:
    """A terminal on the host: the real driver talks to a register-level virtual MFRC522."""

    def __init__(self, root, field=None, clock=None):
        self.root = root
        self.field = field if field is not None else Field()
        self.chip = VirtualMFRC522(self.field)
        self._clock = clock
        self.clock_offset_s = 0
        self._display = RecordingDisplay()
        self._keypad = ScriptedKeypad()
        self._buzzer = RecordingBuzzer()
        self._relay = RecordingRelay()
        for sub in ("", "/data"):
            try:
                os.mkdir(root + sub)
            except OSError:
                pass

    def reader(self, irq=True):
        """The real RC522 driver on the virtual chip, its IRQ line wired as on the board (irq=False: polled)."""
        from terminal.rc522 import RC522
        fire_timer_on_time(self.chip)
        reader = RC522(self.chip.spi, self.chip.cs, irq=self.chip.irq if irq else None, flag=irq_flag())
        reader.init()
        return reader

    def display(self):
        """The recorded display."""
        return self._display

    def keypad(self):
        """The scripted keypad."""
        return self._keypad

    def buzzer(self):
        """The recorded buzzer."""
        return self._buzzer

    def relay(self):
        """The recorded gate relay."""
        return self._relay

    def watchdog(self, timeout_ms):
        """A watchdog that only counts feeds."""
        return SimWatchdog(timeout_ms)

    def keystore(self):
        """Secrets kept beside, not inside, the data directory."""
        return FileKeyStore(self.root + "/keys.json")

    def clock(self):
        """UTC epoch seconds (the demo may drive its own clock)."""
        return (self._clock() if self._clock else int(time.time())) + self.clock_offset_s

    def set_clock(self, epoch_s):
        """Adopt the hub's time."""
        self.clock_offset_s = epoch_s - (self._clock() if self._clock else int(time.time()))

    def free_heap(self):
        """Free heap bytes (MicroPython), or 0 on CPython."""
        try:
            import gc
            return gc.mem_free()
        except AttributeError:
            return 0

    def data_dir(self):
        """Journal and blacklist directory."""
        return self.root + "/data"

    def network(self, ssid, password):
        """The host is always on the network."""
        return None
