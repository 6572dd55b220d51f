"""The ParkCard terminal firmware (MicroPython on the ESP32; runs on CPython for the host's tests)."""

# The firmware version: the status frame reports it (SPEC.md §5.3), parkcard-flash stages it; set only here.
VERSION = b"0.1.0"
