"""The ROMFS install: the compiled application in a read-only image the ESP32 executes in place.

MicroPython 1.25 and later (`vfs.VfsRom`, `vfs.rom_ioctl`) mount a board's ROMFS
partition at /rom during start-up, before boot.py. The partition is memory-mapped
flash: bytecode and constants of a .mpy imported from it stay in flash instead of
being copied into the heap, which is what lets the whole terminal run on an ESP32
without PSRAM. The stock ESP32_GENERIC firmware has no such partition; its ROMFS
variant (partitions-4MiB-romfs.csv: `romfs, data, 0x8f, 0x1E0000, 0x20000`) has one
of 128 KB.

The image holds terminal/ and protocol/ as `build_image` compiled them; boot.py,
main.py, the settings, the CA and the journal stay on the filesystem (MicroPython
runs boot.py and main.py from the filesystem only, and the ROMFS cannot be written
by the terminal).

Whether a board has the partition is read from its partition table: in the
MicroPython .bin about to be flashed (written at 0x1000, its table at 0x8000), or
read from the chip with esptool when MicroPython stays.
"""

import contextlib
import io
import shutil
import struct
from pathlib import Path

from .errors import FlashError

ROMFS_IMAGE = "romfs.img"
PARTITION_TABLE_FILE = "partition-table.bin"   # the chip's table, read by esptool when MicroPython stays
ROMFS_PACKAGES = ("terminal", "protocol")
ROMFS_DIR = "rom"                     # MicroPython's mount point of the first ROMFS partition
ROMFS_SUBTYPE = 0x8F                  # ESP-IDF data subtype MicroPython's esp32 port looks for
PARTITION_TABLE_OFFSET = 0x8000       # ESP-IDF default (CONFIG_PARTITION_TABLE_OFFSET)
PARTITION_TABLE_BYTES = 0xC00         # the table's flash sector holds at most 95 entries and the MD5 row
_ENTRY = struct.Struct("<2sBBII16sI")  # ESP-IDF esp_partition_info_t: magic, type, subtype, offset, size, label
_ENTRY_MAGIC = b"\xaa\x50"
_MD5_MAGIC = b"\xeb\xeb"
_TYPE_DATA = 0x01


def pack(staging, out):
    """Write the ROMFS image of the directory staging (its files as they are) to out; return out."""
    from mpremote.romfs import make_romfs

    with contextlib.redirect_stdout(io.StringIO()):   # make_romfs prints the tree it packs
        data = make_romfs(str(staging), mpy_cross=False)
    Path(out).write_bytes(data)
    return Path(out)


def build_romfs(image_dir, build_dir):
    """Write build_dir/romfs.img from image_dir's terminal/ and protocol/ (already compiled); return its path."""
    staging = Path(build_dir) / "romfs"
    if staging.exists():
        shutil.rmtree(staging)  # a module deleted from the tree must not linger in the image
    staging.mkdir(parents=True)
    for package in ROMFS_PACKAGES:
        src = Path(image_dir) / package
        if not src.is_dir():
            raise FlashError("%s missing: build the image first (`parkcard-flash build`)" % src)
        shutil.copytree(src, staging / package)
    return pack(staging, Path(build_dir) / ROMFS_IMAGE)


def parse_partition_table(data):
    """[{"label", "type", "subtype", "offset", "size"}] from an ESP-IDF partition table's bytes.

    Raises FlashError when the bytes hold no table (not an ESP32 firmware, or a table at another offset)."""
    partitions = []
    for at in range(0, len(data) - _ENTRY.size + 1, _ENTRY.size):
        magic, kind, subtype, offset, size, label, _flags = _ENTRY.unpack_from(data, at)
        if magic != _ENTRY_MAGIC:
            break                     # the MD5 row (0xEBEB) or erased flash (0xFFFF) ends the table
        partitions.append({"label": label.rstrip(b"\0").decode("ascii", "replace"), "type": kind,
                           "subtype": subtype, "offset": offset, "size": size})
    if not partitions:
        raise FlashError("no ESP-IDF partition table at 0x%x: is this a MicroPython firmware for the ESP32?"
                         % PARTITION_TABLE_OFFSET)
    return partitions


def firmware_partition_table(firmware, flash_offset):
    """The partition table inside a MicroPython .bin written at flash_offset (the downloads hold bootloader,
    table and application in one file); None when the file holds none there (an application image alone)."""
    with open(firmware, "rb") as f:
        f.seek(PARTITION_TABLE_OFFSET - flash_offset)
        data = f.read(PARTITION_TABLE_BYTES)
    try:
        return parse_partition_table(data)
    except FlashError:
        return None


def romfs_partition(partitions):
    """The first ROMFS partition of a table (MicroPython mounts that one at /rom), or None."""
    for part in partitions:
        if part["type"] == _TYPE_DATA and part["subtype"] == ROMFS_SUBTYPE:
            return part
    return None


def rom_entries(entries):
    """The manifest entries as a ROMFS install places them: terminal/ and protocol/ below /rom."""
    return [dict(e, path=ROMFS_DIR + "/" + e["path"]) if e["path"].split("/")[0] in ROMFS_PACKAGES else e
            for e in entries]


def check_fits(partition, image_bytes):
    """Refuse (FlashError) an image larger than the partition it is for."""
    if image_bytes > partition["size"]:
        raise FlashError("the ROMFS image is %d bytes and the board's %r partition holds %d: the application "
                         "does not fit; use a firmware with a larger ROMFS partition" % (
                             image_bytes, partition["label"], partition["size"]))


def install_report(partition, image_bytes, firmware_name="the firmware"):
    """What the technician reads about where the code goes and what that means for the heap."""
    if partition is False:
        return ("install: decided on a real run from the partition table it first reads from the chip (a ROMFS "
                "partition: the code goes there; none: files on the filesystem)")
    if partition is None:
        return ("install: files on the filesystem (%s has no ROMFS partition): the code is loaded into the "
                "heap, which a board without PSRAM does not have room for with the whole terminal; on such a "
                "board flash the ROMFS variant (ESP32_GENERIC-ROMFS)" % firmware_name)
    return ("install: ROMFS partition %r at 0x%x (image %d of %d bytes): terminal/ and protocol/ run in place "
            "from flash, the heap holds the terminal's data only (the whole ride terminal runs in 130 KB on the 64-bit "
            "unix port that way, about 90 KB on the ESP32)"
            % (partition["label"], partition["offset"], image_bytes, partition["size"]))
