"""The plan: the exact commands that flash and provision one terminal.

A plan is a list of Steps. `--dry-run` prints it (secrets replaced by
placeholders); a real run executes the very same argv lists one by one with
subprocess and stops at the first failure. Nothing here talks to a device
except through esptool and mpremote.
"""

import json
import shlex
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import chip as chip_mod
from . import device
from . import romfs as romfs_mod
from .errors import StepFailed
from .image import IMAGE_DIR, file_entry
from .tools import tool

CHIP = "esp32"  # classic ESP32 (ESP32-WROOM-32); S2/S3/C3 use other offsets
MICROPYTHON_OFFSET = "0x1000"  # where the ESP32_GENERIC .bin starts (second-stage bootloader)
BAUD_DEFAULT = 460800
PROVISION_DIR = "provision"
REQUIRED_NVS_KEYS = ("terminal_key", "transport_key", "broker_password")
BOOTLOADER_HINT = "if it cannot connect, hold BOOT, press EN, release BOOT, and run again"


@dataclass
class Step:
    """One command of the plan.

    argv is what runs; shown is what is printed (the same, with secrets
    replaced). check, if set, receives the captured stdout and returns a list
    of problems (empty = the step succeeded).
    """

    description: str
    argv: list
    shown: list = None
    check: Callable[[str], list] = None
    hint: str = ""
    report: Callable[[str], str] = None   # what to print from the captured stdout once the step passed

    def __post_init__(self):
        if self.shown is None:
            self.shown = list(self.argv)

    def command_line(self):
        return shlex.join(self.shown)


def _esptool(port, baud, *command):
    return [tool("esptool"), "--chip", CHIP, "--port", port, "--baud", str(baud), *command]


def _mpremote(port, *command):
    return [tool("mpremote"), "connect", port, *command]


def write_provision_files(build_dir, bundle):
    """Write the non-secret per-terminal files; return [(local path, device path)]."""
    out = Path(build_dir) / PROVISION_DIR
    out.mkdir(parents=True, exist_ok=True)
    for stale in (device.CONFIG_FILE, device.CA_FILE):
        (out / stale).unlink(missing_ok=True)
    files = []
    config = bundle.public_config("/" + device.CA_FILE)
    (out / device.CONFIG_FILE).write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    files.append((out / device.CONFIG_FILE, device.CONFIG_FILE))
    if bundle.ca_pem:
        (out / device.CA_FILE).write_bytes(ssl.PEM_cert_to_DER_cert(bundle.ca_pem))
        files.append((out / device.CA_FILE, device.CA_FILE))
    return files


def _write_script(build_dir, name, text):
    path = Path(build_dir) / PROVISION_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def verify_steps(port, build_dir, entries, keys):
    """The step that hashes the device's files and checks its NVS keys."""
    script = _write_script(build_dir, "verify_device.py", device.verify_script(entries, keys))
    return [Step(
        "Verify: hash %d files on the device against the manifest, check %d NVS keys exist"
        % (len(entries), len(keys)),
        _mpremote(port, "run", script),
        check=lambda stdout: device.check_verify_output(stdout, entries, keys),
        hint="flash again; if it keeps failing the board's flash may be faulty",
    )]


def nvs_step(port, bundle):
    """The step storing the secrets in NVS; the only argv that carries them."""
    secrets = {name: value for name, value in bundle.secrets().items() if value}
    real = {device.NVS_KEYS[name]: value.hex() for name, value in secrets.items()}
    masked = {device.NVS_KEYS[name]: "<%s from bundle>" % name for name in secrets}
    return Step(
        "Store %d secrets in NVS namespace %r (%s)"
        % (len(real), device.NVS_NAMESPACE, ", ".join(real)),
        _mpremote(port, "exec", device.nvs_script(real)),
        shown=_mpremote(port, "exec", device.nvs_script(masked)),
    )


def chip_step(port, baud, firmware_name=""):
    """The step reading the board through esptool (chip, features, flash size, PSRAM) before anything is written."""
    return Step("Read the chip: type, features (PSRAM), flash size; the heap class follows",
                _esptool(port, baud, "flash-id"),
                check=lambda stdout: chip_mod.problems(chip_mod.parse(stdout)),
                report=lambda stdout: chip_mod.report(chip_mod.parse(stdout), firmware_name),
                hint=BOOTLOADER_HINT)


def partition_table_step(port, baud, build_dir):
    """The step reading the chip's partition table into build_dir (MicroPython stays: is there a ROMFS?)."""
    out = Path(build_dir) / romfs_mod.PARTITION_TABLE_FILE
    return Step("Read the partition table (is there a ROMFS partition for the code?)",
                _esptool(port, baud, "read-flash", hex(romfs_mod.PARTITION_TABLE_OFFSET),
                         hex(romfs_mod.PARTITION_TABLE_BYTES), str(out)),
                hint=BOOTLOADER_HINT)


def romfs_step(port, baud, partition, romfs_image):
    """The step writing the ROMFS image at its partition's offset (read from the partition table)."""
    return Step("Write the ROMFS image (terminal/, protocol/: %d bytes) to partition %r at 0x%x"
                % (Path(romfs_image).stat().st_size, partition["label"], partition["offset"]),
                _esptool(port, baud, "write-flash", hex(partition["offset"]), str(romfs_image)),
                hint=BOOTLOADER_HINT)


def flash_plan(port, bundle, build_dir, entries, micropython=None, baud=BAUD_DEFAULT, romfs=None):
    """Return the steps flashing MicroPython (unless micropython is None), the image and the config.

    romfs: None installs terminal/ and protocol/ as files on the filesystem; (partition, image path) writes
    them as one ROMFS image to that partition instead (and verifies them under /rom).
    """
    build_dir = Path(build_dir)
    image = build_dir / IMAGE_DIR
    steps = []
    if micropython is not None:
        steps += [
            chip_step(port, baud, Path(micropython).name),
            Step("Erase the whole flash (MicroPython, files, NVS)", _esptool(port, baud, "erase-flash"),
                 hint=BOOTLOADER_HINT),
            Step("Write MicroPython %s at %s" % (Path(micropython).name, MICROPYTHON_OFFSET),
                 _esptool(port, baud, "write-flash", MICROPYTHON_OFFSET, str(micropython)),
                 hint="check the .bin is the ESP32_GENERIC build for a classic ESP32"),
        ]
    if romfs is not None:
        # Before MicroPython next starts: it mounts the partition at /rom only at start-up.
        steps.append(romfs_step(port, baud, *romfs))
    clean = _write_script(build_dir, "clean_device.py", device.clean_script())
    steps.append(Step("Remove the previous application (code and config; data files stay)",
                      _mpremote(port, "run", clean),
                      hint="is MicroPython on the board? run without --skip-micropython"))
    if romfs is None:
        # The clean step removed :terminal and :protocol, so `cp -r DIR :name`
        # creates :name and copies DIR's contents into it (into an existing
        # directory mpremote would nest a second level).
        for package in romfs_mod.ROMFS_PACKAGES:
            count = sum(1 for e in entries if e["path"].startswith(package + "/"))
            steps.append(Step("Copy %s/ (%d compiled modules)" % (package, count),
                              _mpremote(port, "fs", "cp", "-r", str(image / package), ":" + package)))
    else:
        entries = romfs_mod.rom_entries(entries)
    provision = write_provision_files(build_dir, bundle)
    for local, device_path in provision:
        steps.append(Step("Write /%s (non-secret settings)" % device_path,
                          _mpremote(port, "fs", "cp", str(local), ":" + device_path)))
    steps.append(nvs_step(port, bundle))
    # boot.py and main.py last: until they are there, a reset cannot start a half-copied application.
    for name in ("boot.py", "main.py"):
        steps.append(Step("Copy %s" % name, _mpremote(port, "fs", "cp", str(image / name), ":" + name)))
    checked = list(entries) + [file_entry(local, path) for local, path in provision]
    steps += verify_steps(port, build_dir, checked, device.nvs_keys(bundle))
    steps.append(Step("Reset the terminal: it starts and asks for the admin card", _mpremote(port, "reset")))
    return steps


def format_plan(steps):
    """Return the numbered plan as text, secrets masked."""
    lines = []
    for i, step in enumerate(steps, 1):
        lines.append("%d. %s" % (i, step.description))
        lines.append("   $ " + step.command_line())
    return "\n".join(lines)


def run_plan(steps, echo=print, runner=subprocess.run):
    """Run every step in order; raise StepFailed at the first that fails."""
    total = len(steps)
    for i, step in enumerate(steps, 1):
        echo("[%d/%d] %s" % (i, total, step.description))
        echo("   $ " + step.command_line())
        where = "step %d of %d (%s)" % (i, total, step.description)
        try:
            proc = runner(step.argv, stdout=subprocess.PIPE if step.check else None, text=True)
        except FileNotFoundError:
            raise StepFailed("%s: %s not found; run ./setup.sh" % (where, step.shown[0])) from None
        if proc.returncode != 0:
            message = "%s failed: %s exited with %d; the steps after it were not run" % (
                where, Path(step.shown[0]).name, proc.returncode)
            raise StepFailed(message + ("\nhint: " + step.hint if step.hint else ""))
        if step.check:
            problems = step.check(proc.stdout or "")
            if problems:
                raise StepFailed("%s failed:\n  %s%s" % (
                    where, "\n  ".join(problems), "\nhint: " + step.hint if step.hint else ""))
        if step.report:
            echo(step.report(proc.stdout or ""))
    echo("done: %d steps" % total)
