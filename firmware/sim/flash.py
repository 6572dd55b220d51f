"""A flash chip on the host whose power can be cut at any byte.

FileBlockDevice implements MicroPython's extended block protocol
(readblocks/writeblocks with an offset, ioctl 1..6 with erase) so that
vfs.VfsLfs2 runs on it as on the ESP32's flash. The data lives in a host file
reached by seek/readinto/write: a 1 MB disk costs no MicroPython heap (the unix
port runs with the ESP32's 100 KB). It works the same from CPython.
"""

_IOCTL_INIT, _IOCTL_DEINIT, _IOCTL_SYNC = 1, 2, 3
_IOCTL_BLOCK_COUNT, _IOCTL_BLOCK_SIZE, _IOCTL_BLOCK_ERASE = 4, 5, 6
_ERASED = 0xFF
_BLANK_CHUNK = 256  # block sizes are powers of two: a multiple of it, or smaller  # NOR flash reads all ones after an erase


class PowerCut(Exception):
    """The simulated supply died: the write in progress stopped part-way."""


class FileBlockDevice:
    def __init__(self, path, block_size=4096, block_count=256, create=True):
        self.block_size = block_size
        self.block_count = block_count
        self.bytes_written = 0
        self._cut_in = -1  # bytes left before the power dies; -1: never
        self._dead = False
        self._quiet = False  # while dead: drop writes instead of raising
        # Erased flash, written in small pieces: a block-sized buffer would
        # cost the MicroPython heap a large contiguous allocation.
        chunk = min(_BLANK_CHUNK, block_size)
        self._blank = bytearray(chunk)
        for i in range(chunk):
            self._blank[i] = _ERASED
        if create:
            with open(path, "wb") as f:
                for _ in range(block_count * block_size // chunk):
                    f.write(self._blank)
        self._f = open(path, "r+b")

    def cut_after(self, nbytes):
        """Let nbytes more bytes reach the flash, then cut the power."""
        self._cut_in = nbytes

    def restore_power(self):
        self._cut_in = -1
        self._dead = False
        self._quiet = False

    def discard_writes(self):
        """While the power stays off, let writes vanish instead of raising PowerCut.

        After a cut, files of the dead mount are still open; their finalisers
        close (and so write) when the garbage collector runs. Nothing reaches a
        dead chip either way, but raising inside a finaliser only prints noise.
        """
        self._quiet = True

    def _off(self):
        if not self._quiet:
            raise PowerCut("power is off")
        return 0  # littlefs takes the dropped write as done

    def close(self):
        self._f.close()

    def readblocks(self, block_num, buf, offset=0):
        self._f.seek(block_num * self.block_size + offset)
        self._f.readinto(buf)

    def writeblocks(self, block_num, buf, offset=0):
        if self._dead:
            return self._off()
        n = len(buf)
        self._f.seek(block_num * self.block_size + offset)
        if 0 <= self._cut_in < n:
            # The cut lands inside this write: only its first bytes arrive.
            kept = self._cut_in
            self._f.write(memoryview(buf)[:kept])
            self._f.flush()
            self.bytes_written += kept
            self._cut_in = -1
            self._dead = True
            raise PowerCut("cut after %d bytes of a %d byte write" % (kept, n))
        if self._cut_in > 0:
            self._cut_in -= n
        self._f.write(buf)
        self.bytes_written += n

    def ioctl(self, op, arg):
        if op == _IOCTL_BLOCK_COUNT:
            return self.block_count
        if op == _IOCTL_BLOCK_SIZE:
            return self.block_size
        if op == _IOCTL_BLOCK_ERASE:
            if self._dead:
                return self._off()
            self._f.seek(arg * self.block_size)
            for _ in range(self.block_size // len(self._blank)):
                self._f.write(self._blank)
            return 0
        if op == _IOCTL_SYNC or op == _IOCTL_DEINIT:  # no tuple: finalisers run with the heap locked
            self._f.flush()
        return 0  # _IOCTL_INIT and the rest: nothing to do


def mount_littlefs(device, mountpoint, format=False):
    """Mount device as littlefs at mountpoint (MicroPython only), formatting first if asked."""
    import vfs

    if format:
        vfs.VfsLfs2.mkfs(device)
    fs = vfs.VfsLfs2(device)
    vfs.mount(fs, mountpoint)
    return fs


def unmount(mountpoint):
    """Unmount mountpoint; after a power cut littlefs may object, and that is fine."""
    import vfs

    try:
        vfs.umount(mountpoint)
    except (OSError, PowerCut):
        pass


def copy_image(src, dst, chunk_bytes=4096):
    """Copy a disk image file in chunks (a power-loss test restarts from one)."""
    buf = bytearray(chunk_bytes)
    mv = memoryview(buf)
    with open(src, "rb") as fin:
        with open(dst, "wb") as fout:
            while True:
                got = fin.readinto(buf)
                if not got:
                    break
                fout.write(mv[:got])
