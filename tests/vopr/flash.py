"""The terminals' flash on the host, with the power cut at any write.

The firmware writes its journal, blacklist and state through `open()` in
terminal.journal, terminal.blacklist and terminal.atomic. For the run, those
modules get an `open` that hands back unbuffered files whose every write() is
one flash write: an armed cut lets a prefix of the write through, then the
terminal is dead (every later write fails too) until it is rebooted.
PowerCut is a BaseException so that no `except Exception` in the firmware can
carry on as if the supply were still there.
"""

import builtins
import contextlib

from terminal import atomic, blacklist, journal

FIRMWARE_WRITERS = (journal, blacklist, atomic)


ENOSPC = 28


class PowerCut(BaseException):
    """The terminal's supply died during a flash write."""


class Flash:
    """One terminal's flash: counts writes, cuts the power at an armed one."""

    def __init__(self, root):
        self.root = root
        self.writes = 0
        self.dead = False
        self._cut = None          # (writes left before the cut, fraction of its bytes that land)
        self.full_writes = 0      # the next n writes find the flash full (OSError ENOSPC, nothing lands)

    def arm(self, nth_write, keep_fraction):
        """Cut the power during the nth next write (1 = the next), letting keep_fraction of it land."""
        self._cut = (nth_write, keep_fraction)

    def disarm(self):
        """No cut pending, and room on the flash."""
        self._cut = None
        self.full_writes = 0

    @property
    def armed(self):
        """True while a cut is pending."""
        return self._cut is not None

    def restore(self):
        """Power back on (the terminal is rebooted by the caller)."""
        self.dead = False
        self.disarm()

    def write(self, raw, data):
        """Write data to the raw file as one flash write, or die part-way through."""
        if self.dead:
            raise PowerCut("the power is off")
        self.writes += 1
        if self.full_writes > 0:
            self.full_writes -= 1
            raise OSError(ENOSPC, "no space left on the flash")
        if self._cut is not None:
            left, fraction = self._cut
            if left <= 1:
                self._cut = None
                self.dead = True
                kept = int(len(data) * fraction)
                raw.write(memoryview(data)[:kept])
                raise PowerCut("cut after %d of %d bytes" % (kept, len(data)))
            self._cut = (left - 1, fraction)
        return raw.write(data)


class _FlashFile:
    """A file open for writing on a terminal's flash."""

    def __init__(self, flash, raw):
        self._flash = flash
        self._raw = raw

    def write(self, data):
        """One flash write."""
        return self._flash.write(self._raw, data)

    def flush(self):
        """Unbuffered: every write is already on the medium."""

    def fileno(self):
        """The host file descriptor (atomic.sync fsyncs it)."""
        return self._raw.fileno()

    def close(self):
        """Close the host file."""
        self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FlashFiles:
    """Routes the firmware's file writes to the Flash of the terminal whose directory they are in."""

    def __init__(self):
        self._flashes = {}

    def flash(self, root):
        """The Flash of the terminal living in root (made on first use)."""
        flash = self._flashes.get(root)
        if flash is None:
            flash = self._flashes[root] = Flash(root)
        return flash

    def open(self, path, mode="r", *args, **kwargs):
        """open() as the firmware modules see it during the run."""
        if not any(c in mode for c in "wa+"):
            return builtins.open(path, mode, *args, **kwargs)
        for root, flash in self._flashes.items():
            if path.startswith(root + "/"):
                if flash.dead:
                    raise PowerCut("the power is off")
                return _FlashFile(flash, builtins.open(path, mode, buffering=0))
        return builtins.open(path, mode, *args, **kwargs)

    @contextlib.contextmanager
    def installed(self):
        """The firmware's writes go through this object for the duration of the block."""
        for module in FIRMWARE_WRITERS:
            module.open = self.open
        try:
            yield self
        finally:
            for module in FIRMWARE_WRITERS:
                module.__dict__.pop("open", None)
