"""MicroPython's start-up mount of a board's ROMFS partition, on the unix port (used by whole_check.py and
bench/bench_heap.py), and the test kit's own image.

On a board whose firmware has a ROMFS partition, MicroPython (1.25 and later) mounts it at /rom during
start-up, with `vfs.VfsRom(vfs.rom_ioctl(2, 0))`: a memoryview of the memory-mapped flash partition, and
appends /rom/lib to sys.path. The unix port has no ROM partition; tests/romfs_mapped.py maps the image file
with libc mmap outside the GC heap and passes its address and size in PARKCARD_ROMFS, and this module
mounts those bytes in place (uctypes.bytearray_at: no copy), so imports from /rom execute bytecode in place
as on the ESP32.

The host board (whole_check.py with sim/spi_link.py) stands in for terminal/board.py, which a ROMFS board
runs from its image too: with PARKCARD_KIT those modules come from a second mapped image, mounted at /kit
(`micropython -c "import romfs_mount; romfs_mount.run_kit('whole_check')" ROOT PORT`), so that their
bytecode is not on the heap either.
"""

import os
import sys


def _mount(variable, mount_point):
    at = os.getenv(variable)
    if not at:
        return False
    import uctypes
    import vfs

    address, size = at.split(":")
    vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(address), int(size))), mount_point)
    return True


def mount_rom():
    """Mount the mapped image at /rom as the firmware does at start-up; False when none is mapped."""
    if not _mount("PARKCARD_ROMFS", "/rom"):
        return False
    sys.path.append("/rom/lib")
    return True


def run_kit(module):
    """Import module (the test driver, which runs for ever) from the kit's mapped image at /kit."""
    if _mount("PARKCARD_KIT", "/kit"):
        sys.path.insert(0, "/kit")
    __import__(module)
