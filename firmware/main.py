"""ParkCard terminal entry point on the ESP32: MicroPython compiles this file on the heap, so the work is in
terminal/start.py, installed compiled (the host's tests call main() with their own board)."""

from terminal.start import main

if __name__ == "__main__":  # MicroPython runs main.py as __main__ after boot.py
    main()
