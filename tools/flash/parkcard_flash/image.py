"""Build the application image a terminal runs, its manifest and the key scan.

Layout of the staging directory (what lands at the root of the device's
filesystem):

    boot.py, main.py         source: MicroPython runs only .py for these two
    terminal/*.mpy           firmware/terminal compiled for the ESP32 (xtensawin)
    protocol/*.mpy           protocol/ compiled the same way

firmware/sim/ (host-only virtual hardware), tests, test vectors and anything
else are never staged. The manifest (path, size, sha256 of every staged file)
is written beside the image, not into it, and is what `verify` compares the
device against.
"""

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from .errors import FlashError
from .tools import tool

ARCH = "xtensawin"  # ESP32 (Xtensa LX6, windowed ABI)
# Line-number tables would be loaded into the terminal's heap with the code
# (about 2 KB for the sync stack, which then no longer runs in 100 KB);
# tracebacks still name the file and the function.
MPY_CROSS_OPTIONS = ("-X", "no-source-lines")
SOURCE_FILES = ("boot.py", "main.py")
PACKAGES = ("terminal", "protocol")
# Never staged, wherever they appear below a package. protocol/ is also a distribution's
# folder: building its wheel there leaves a copy of every module in protocol/build/.
EXCLUDED_DIRS = frozenset(("sim", "tests", "test", "vectors", "__pycache__", "build"))
IMAGE_DIR = "image"
MANIFEST = "manifest.json"
SECRET_BYTES_MIN = 8  # shorter values would match by chance and protect nothing


def package_modules(package_dir):
    """Return the .py files of a package to compile, relative to it, sorted."""
    found = []
    for src in sorted(package_dir.rglob("*.py")):
        rel = src.relative_to(package_dir)
        if EXCLUDED_DIRS.intersection(rel.parts[:-1]) or rel.name.startswith("test_"):
            continue
        found.append(rel)
    return found


def _compile(src, dest, source_name, mpy_cross):
    dest.parent.mkdir(parents=True, exist_ok=True)
    argv = [mpy_cross, "-march=" + ARCH, *MPY_CROSS_OPTIONS, "-s", source_name, "-o", str(dest), str(src)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True)
    except FileNotFoundError:
        raise FlashError("mpy-cross not found (%s): run ./setup.sh" % mpy_cross) from None
    if proc.returncode != 0:
        # mpy-cross words a syntax error as a traceback; keep only where and what.
        lines = [line for line in (proc.stderr or proc.stdout).strip().splitlines()
                 if not line.startswith("Traceback (most recent call last)")]
        return "mpy-cross failed on %s:\n%s" % (src, "\n".join(lines))
    return None


def build_image(firmware_dir, protocol_dir, build_dir, mpy_cross=None):
    """Compile and stage the image into build_dir/image; return the manifest entries.

    Raises FlashError naming every module mpy-cross rejected, or a missing
    boot.py / main.py.
    """
    firmware_dir, protocol_dir, build_dir = Path(firmware_dir), Path(protocol_dir), Path(build_dir)
    mpy_cross = mpy_cross or tool("mpy-cross")
    sources = {"terminal": firmware_dir / "terminal", "protocol": protocol_dir}
    for name in SOURCE_FILES:
        if not (firmware_dir / name).is_file():
            raise FlashError("%s missing: the image needs firmware/boot.py and firmware/main.py"
                             % (firmware_dir / name))
    for package, src_dir in sources.items():
        if not src_dir.is_dir():
            raise FlashError("%s missing: no %s package to compile" % (src_dir, package))

    image = build_dir / IMAGE_DIR
    if image.exists():
        shutil.rmtree(image)  # a module deleted from the tree must not linger in the image
    image.mkdir(parents=True)
    failures = []
    for package, src_dir in sources.items():
        for rel in package_modules(src_dir):
            dest = image / package / rel.with_suffix(".mpy")
            failure = _compile(src_dir / rel, dest, "%s/%s" % (package, rel.as_posix()), mpy_cross)
            if failure:
                failures.append(failure)
    if failures:
        raise FlashError("\n".join(failures))
    for name in SOURCE_FILES:
        shutil.copyfile(firmware_dir / name, image / name)

    entries = manifest_entries(image)
    write_manifest(build_dir, entries)
    return entries


def file_entry(path, device_path):
    """The manifest entry {"path", "size", "sha256"} of one local file, under its path on the device."""
    data = Path(path).read_bytes()
    return {"path": device_path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def manifest_entries(image):
    """Return [{"path", "size", "sha256"}] for every file below image, sorted by path."""
    return [file_entry(path, path.relative_to(image).as_posix())
            for path in sorted(p for p in Path(image).rglob("*") if p.is_file())]


def write_manifest(build_dir, entries):
    (Path(build_dir) / MANIFEST).write_text(json.dumps({"files": entries}, indent=1) + "\n")


def read_manifest(build_dir):
    """Return the manifest entries of a built image, or raise FlashError."""
    path = Path(build_dir) / MANIFEST
    try:
        return json.loads(path.read_text())["files"]
    except FileNotFoundError:
        raise FlashError("%s missing: run `parkcard-flash build` first" % path) from None
    except (ValueError, KeyError, TypeError):
        raise FlashError("%s is damaged: run `parkcard-flash build` again" % path) from None


def _encodings(secret):
    """The forms a secret could take inside a file: raw, hex either case, base64."""
    forms = [secret, secret.hex().encode(), secret.hex().upper().encode()]
    if len(secret) >= 8:
        forms.append(base64.b64encode(secret).rstrip(b"="))
    return forms


def scan_for_secrets(root, secrets):
    """Refuse (FlashError) if any file below root holds a secret in any encoding.

    secrets: {name: bytes}. Values under SECRET_BYTES_MIN (an open Wi-Fi network's
    empty password) are skipped: they would match everywhere and protect nothing.
    """
    needles = [(name, form) for name, value in secrets.items() if len(value) >= SECRET_BYTES_MIN
               for form in _encodings(value)]
    hits = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        data = path.read_bytes()
        for name, form in needles:
            if form in data:
                hits.append("%s contains the %s" % (path, name))
                break
    if hits:
        raise FlashError("refusing to flash: key material in the image\n" + "\n".join(hits)
                         + "\nKeys go into the device's NVS only; remove them from the source tree.")
