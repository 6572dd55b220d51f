"""Runs first at every reset: keep the REPL quiet and the heap tidy, then main.py runs."""

import gc
import os
import sys

try:
    import esp

    esp.osdebug(None)  # no ROM debug output on UART0: it is the technician's REPL
except ImportError:
    pass

try:
    os.mkdir("/data")  # journal, blacklist and state live here
except OSError:
    pass

# A board whose firmware has a ROMFS partition: MicroPython (1.25+) mounted it at /rom before this file
# runs, and parkcard-flash put terminal/ and protocol/ there, compiled. Imported from /rom their bytecode
# and constants stay in flash instead of the heap. /rom goes first so that no copy on the filesystem can
# shadow it; on a board without the partition there is no /rom and the path stays as it was.
try:
    os.stat("/rom/terminal")
    sys.path.insert(0, "/rom")
except OSError:
    pass

gc.threshold(16384)  # collect early: the ESP32 without PSRAM has ~110 KB of heap
