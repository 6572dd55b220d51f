"""A gate's turnstile relay (terminal/roles/gate.py asks the board for it): apart from terminal/devices.py,
so a booth never loads it."""

import asyncio

from terminal.compat import sleep_ms


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
