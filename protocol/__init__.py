"""ParkCard protocol: every byte that crosses a wire or touches a card (see SPEC.md).

Pure Python that runs unchanged on MicroPython and CPython: only struct,
hashlib and binascii. No I/O, no clocks.
"""

VERSION = 1
