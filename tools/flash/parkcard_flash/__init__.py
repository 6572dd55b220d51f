"""parkcard-flash: build, flash and provision a ParkCard terminal."""
