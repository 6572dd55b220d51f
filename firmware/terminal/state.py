"""The terminal's small persistent state: boot count, frame counters, config, sync times."""

import json

from terminal import atomic
from terminal.compat import const

_NAME = const("terminal.json")
# Uplink frame counters are reserved in blocks so a reboot never reuses one
# (SPEC.md §5.2) while flash is written once per block, not once per frame.
_UP_COUNTER_BLOCK = const(256)


class TerminalState:
    """Persistent counters and settings; every change that matters is written atomically."""

    def __init__(self, dirpath):
        self.dirpath = dirpath
        raw = atomic.read(dirpath, _NAME)
        data = json.loads(raw) if raw else {}
        self.boot = data.get("boot", 0) + 1
        self.down_counter = data.get("down", 0)
        self.config_hex = data.get("config", "")
        self.last_hub_contact_s = data.get("contact", 0)
        self.blacklist_updated_s = data.get("bl_at", 0)
        self._up_reserved = data.get("up", 0)
        self.up_counter = self._up_reserved
        self.save()

    def save(self):
        """Write the state atomically."""
        atomic.write(self.dirpath, _NAME, json.dumps({
            "boot": self.boot, "down": self.down_counter, "config": self.config_hex,
            "contact": self.last_hub_contact_s, "bl_at": self.blacklist_updated_s, "up": self._up_reserved,
        }).encode())

    def next_up_counter(self):
        """Return a fresh uplink frame counter, reserving a new block on flash when needed."""
        counter = self.up_counter + 1
        if counter > self._up_reserved:
            reserved = self._up_reserved
            self._up_reserved = counter + _UP_COUNTER_BLOCK
            try:
                self.save()
            except Exception:
                # Not on flash (a full flash): the block is not ours, or a reboot would reuse its counters.
                self._up_reserved = reserved
                raise
        self.up_counter = counter
        return counter
