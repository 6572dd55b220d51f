"""Run MicroPython with a ROMFS image mapped outside its heap, as an ESP32 maps its ROMFS flash partition.

usage: .venv/bin/python tests/romfs_mapped.py IMAGE [--kit KIT_IMAGE] [micropython arguments: -X heapsize=130k ...]

On an ESP32 the ROMFS partition is flash the MMU maps into the address space: MicroPython reads the
bytecode and constants of an imported .mpy there and never copies them into its heap. The unix port
(without its `ffi` module here) has no way to map a file itself, so this process maps IMAGE read-only with
libc mmap, puts its address and size in PARKCARD_ROMFS, and runs the interpreter in this same process
(`micropython_run.run_main`, what .venv/bin/micropython runs). tests/mpy/romfs_mount.py, in MicroPython,
mounts those bytes at /rom with vfs.VfsRom. The mapping is not in the GC heap that `-X heapsize` caps, and it
is read-only: a write to the "flash" faults, as it would on the device. With --kit, a second image (the
test kit's host board, in place of terminal/board.py) is mapped the same way into PARKCARD_KIT.
"""

import ctypes
import mmap
import os
import sys

ENV = "PARKCARD_ROMFS"
KIT_ENV = "PARKCARD_KIT"


def map_image(path):
    """(address, size) of a read-only private mapping of the file at path; it stays mapped until exit."""
    size = os.path.getsize(path)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                          ctypes.c_long]
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_PRIVATE, fd, 0)
    finally:
        os.close(fd)                  # the mapping outlives the descriptor
    if address in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap of %s failed" % path)
    return address, size


def main(argv):
    """Map argv[1] and run MicroPython with the rest of argv; return its exit status."""
    import micropython_run

    os.environ[ENV] = "%d:%d" % map_image(argv[1])
    rest = argv[2:]
    if rest[:1] == ["--kit"]:
        os.environ[KIT_ENV] = "%d:%d" % map_image(rest[1])
        rest = rest[2:]
    return micropython_run.run_main(["micropython"] + rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
