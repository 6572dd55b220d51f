"""Durable small-file helpers shared by the journal and the blacklist.

A file is replaced by writing a sibling ``<name>.tmp``, making it durable and
renaming it over the old name. Rename replaces an existing file atomically on
littlefs (lfs_rename) and on POSIX, so after a power cut at any byte the name
holds either the old or the new content, never a mix.
"""

import os

TMP = ".tmp"


def sync(f):
    """Push a written file to the medium before anything depends on it."""
    f.flush()  # MicroPython littlefs: flush is lfs_file_sync, the commit point
    if hasattr(os, "fsync"):  # CPython: flush only reaches the page cache
        os.fsync(f.fileno())
    elif hasattr(os, "sync"):  # ESP32 port: flush the block device cache
        os.sync()


def sync_dir(dirpath):
    """Make a create/rename/remove in dirpath durable (POSIX needs the directory fsynced)."""
    if hasattr(os, "O_RDONLY"):  # absent on MicroPython, where littlefs commits metadata itself
        fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def remove(path):
    """Remove path if present (leftovers of an interrupted write)."""
    try:
        os.remove(path)
    except OSError:
        pass


def replace(tmp_path, path, dirpath):
    """Atomically move a durable tmp_path over path."""
    # os.replace is the CPython spelling that also overwrites on Windows;
    # MicroPython only has rename, which replaces on littlefs.
    getattr(os, "replace", os.rename)(tmp_path, path)
    sync_dir(dirpath)


def write(dirpath, name, data):
    """Replace dirpath/name with data so that it is either all old or all new."""
    path = dirpath + "/" + name
    with open(path + TMP, "wb") as f:
        f.write(data)
        sync(f)
    replace(path + TMP, path, dirpath)


def read(dirpath, name):
    """Return the content of dirpath/name, or None if it does not exist."""
    try:
        with open(dirpath + "/" + name, "rb") as f:
            return f.read()
    except OSError:
        return None


def makedirs(dirpath):
    """Create dirpath (one level) if missing."""
    if not exists(dirpath):
        os.mkdir(dirpath)


def crc_of(path, size, buf=None):
    """crc32 of the first size bytes of path, read through buf (a bytearray; 256 bytes of its own by default);
    None when the file is shorter.

    A handle of its own: a caller's lookup handle must not keep the file's start in its read buffer.
    """
    from binascii import crc32
    mv = memoryview(bytearray(256) if buf is None else buf)
    chunk = len(mv)
    crc = 0
    with open(path, "rb") as f:
        while size:
            got = f.readinto(mv[: min(chunk, size)])
            if not got:
                return None
            crc = crc32(mv[:got], crc)
            size -= got
    return crc

