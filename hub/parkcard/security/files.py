"""Writing the hub's files safely: secrets never readable by others, replacements never half-written."""

import os
from pathlib import Path


def write_new(path, data, mode):
    """Create path afresh (an old file is removed) with `mode` from its first byte; data is on disk on return."""
    path = Path(path)
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)     # the umask may have narrowed it
        with os.fdopen(fd, "wb") as f:
            fd = None
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    finally:
        if fd is not None:
            os.close(fd)


def write_atomic(path, data, mode):
    """Replace path with data in one step: a reader sees the old file or the new one, whole."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write_new(tmp, data, mode)
    os.replace(tmp, path)


def write_export(path, data, force=False):
    """Write an export (a report's CSV) readable by all; FileExistsError if the file exists, unless force."""
    if not force:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)   # never over an earlier export
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return
    write_atomic(path, data, 0o644)     # the old export stays whole until the new one is
