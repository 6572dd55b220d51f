"""The few names MicroPython and CPython spell differently, once for every terminal module."""

import asyncio

try:
    from micropython import const
except ImportError:  # CPython
    def const(value):
        """CPython has no const(): the value itself."""
        return value

try:
    from time import ticks_diff, ticks_ms
except ImportError:  # CPython
    from time import monotonic

    def ticks_ms():
        """Milliseconds from an arbitrary start."""
        return int(monotonic() * 1000)

    def ticks_diff(end, start):
        """end - start in ms (CPython's ints do not wrap)."""
        return end - start

_sleep_ms = getattr(asyncio, "sleep_ms", None)
_wait_for_ms = getattr(asyncio, "wait_for_ms", None)


def sleep_ms(ms):
    """asyncio.sleep_ms where the port has it (no float on MicroPython), else asyncio.sleep."""
    return _sleep_ms(ms) if _sleep_ms else asyncio.sleep(ms / 1000)


def wait_ms(awaitable, timeout_ms):
    """asyncio.wait_for with a timeout in ms; raises asyncio.TimeoutError."""
    if _wait_for_ms is not None:
        return _wait_for_ms(awaitable, timeout_ms)
    return asyncio.wait_for(awaitable, timeout_ms / 1000)
