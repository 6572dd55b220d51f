"""Runs first at every reset: keep the REPL quiet and the heap tidy, then main.py runs."""

import gc

try:
    import esp

    esp.osdebug(None)  # no ROM debug output on UART0: it is the technician's REPL
except ImportError:
    pass

try:
    import os

    os.mkdir("/data")  # journal, blacklist and state live here
except OSError:
    pass

gc.threshold(16384)  # collect early: the ESP32 without PSRAM has ~110 KB of heap
