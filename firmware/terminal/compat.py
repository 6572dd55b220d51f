"""The few names MicroPython and CPython spell differently, once for every terminal module.

asyncio is imported when first slept on, not here: the debit path (rc522, journal) takes const
and ticks from this module without loading the event loop's modules onto the heap.
"""

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


def sleep_ms(ms):
    """asyncio.sleep_ms where the port has it (no float on MicroPython), else asyncio.sleep."""
    import asyncio
    if hasattr(asyncio, "sleep_ms"):
        return asyncio.sleep_ms(ms)
    return asyncio.sleep(ms / 1000)


def wait_ms(awaitable, timeout_ms):
    """asyncio.wait_for with a timeout in ms; raises asyncio.TimeoutError."""
    import asyncio
    if hasattr(asyncio, "wait_for_ms"):
        return asyncio.wait_for_ms(awaitable, timeout_ms)
    return asyncio.wait_for(awaitable, timeout_ms / 1000)


def forget(name):
    """Drop a module imported for one job (start-up, a rare path) so its bytecode can be collected.

    Its interned names stay (MicroPython never frees a qstr): worth it for code, not for names. On
    CPython nothing is dropped: there the firmware shares a process with the hub (the simulations),
    whose own imports of the module must stay what they are."""
    import sys
    if sys.implementation.name != "micropython":
        return
    sys.modules.pop(name, None)
    package, _, leaf = name.rpartition(".")
    parent = sys.modules.get(package)
    if parent is not None and leaf in parent.__dict__:
        delattr(parent, leaf)   # an imported submodule is also its package's attribute
    # Collected now: the allocator takes the next blocks past its last one until a collection, so the
    # code's blocks would stay holes while the heap's end fills up and fragments.
    import gc
    gc.collect()


def borrow(name, function, *args):
    """Call function(*args) of module name, imported for the call and forgotten after it (a rare job's code)."""
    module = __import__(name, None, None, (function,))
    try:
        return getattr(module, function)(*args)
    finally:
        module = None
        forget(name)
