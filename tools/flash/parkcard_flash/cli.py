"""parkcard-flash: build the image, flash and provision a terminal, verify it."""

import os
from pathlib import Path

import click

from . import device
from . import image as image_mod
from . import romfs as romfs_mod
from .bundle import load_bundle
from .errors import FlashError, StepFailed
from .plan import (BAUD_DEFAULT, MICROPYTHON_OFFSET, REQUIRED_NVS_KEYS, file_entry, flash_plan, format_plan,
                   partition_table_step, run_plan, verify_steps, write_provision_files)

REPO = Path(__file__).resolve().parents[3]
ESP_IMAGE_MAGIC = 0xE9  # first byte of every ESP32 app/bootloader image (esptool image format)
NO_PORT = "no serial port %s: is the board plugged in? list ports with `parkcard-flash ports`"


class _Fail(click.ClickException):
    """Print 'Error: message' without a traceback and exit with the given code."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


def _guard(fn):
    """Turn the tool's own errors into clean exits: 2 for input, 1 for a failed device step."""
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FlashError as exc:
            raise _Fail(str(exc), 2) from None
        except StepFailed as exc:
            raise _Fail(str(exc), 1) from None
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _check_port(port, dry_run):
    # Only device paths can be checked; COM3 or rfc2217://host:port are left to esptool.
    if not dry_run and port.startswith("/") and not os.path.exists(port):
        raise FlashError(NO_PORT % port)


def _check_micropython(path):
    path = Path(path)
    if not path.is_file():
        raise FlashError("MicroPython firmware %s: no such file; download ESP32_GENERIC "
                         "from https://micropython.org/download/ESP32_GENERIC/" % path)
    with path.open("rb") as f:
        first = f.read(1)
    if not first or first[0] != ESP_IMAGE_MAGIC:
        raise FlashError("MicroPython firmware %s: not an ESP32 firmware image (.bin)" % path)
    return path


def _build(source, build_dir, bundle=None):
    source = Path(source)
    if not (source / "firmware").is_dir():
        # Installed from a wheel, the tool is not inside a checkout: the default source is then wrong.
        raise FlashError("%s holds no firmware/: pass --source with a checkout of the ParkCard repository "
                         "(the image is compiled from its firmware/ and protocol/)" % source)
    entries = image_mod.build_image(source / "firmware", source / "protocol", build_dir)
    if bundle is not None:
        image_mod.scan_for_secrets(Path(build_dir) / image_mod.IMAGE_DIR, bundle.secrets())
    romfs_mod.build_romfs(Path(build_dir) / image_mod.IMAGE_DIR, build_dir)
    return entries


def _romfs_partition(port, baud, build_dir, firmware, dry_run):
    """The board's ROMFS partition (dict), None when it has none, False when only a real run can tell."""
    if firmware is not None:
        table = romfs_mod.firmware_partition_table(firmware, int(MICROPYTHON_OFFSET, 16))
        return romfs_mod.romfs_partition(table) if table else None
    if dry_run:
        return False
    run_plan([partition_table_step(port, baud, build_dir)], echo=click.echo)
    data = (Path(build_dir) / romfs_mod.PARTITION_TABLE_FILE).read_bytes()
    return romfs_mod.romfs_partition(romfs_mod.parse_partition_table(data))


source_option = click.option("--source", type=click.Path(file_okay=False), default=str(REPO),
                             show_default=True, help="checkout holding firmware/ and protocol/")
build_option = click.option("--out", "build_dir", type=click.Path(file_okay=False),
                            default=str(REPO / "build"), show_default=True,
                            help="build directory: image/, manifest.json, provision/")


@click.group()
def main():
    """Build, flash, provision and verify ParkCard terminals (classic ESP32)."""


@main.command()
@build_option
@source_option
@click.option("--bundle", "bundle_path", type=click.Path(dir_okay=False),
              help="also refuse the image if it holds this terminal's keys")
@_guard
def build(build_dir, source, bundle_path):
    """Compile firmware/terminal and protocol/ with mpy-cross and write the manifest."""
    bundle = load_bundle(bundle_path) if bundle_path else None
    entries = _build(source, build_dir, bundle)
    size = sum(e["size"] for e in entries)
    click.echo("image: %d files, %d bytes in %s" % (len(entries), size,
                                                    Path(build_dir) / image_mod.IMAGE_DIR))
    romfs = Path(build_dir) / romfs_mod.ROMFS_IMAGE
    click.echo("romfs image: %d bytes in %s (terminal/ and protocol/, for a board with a ROMFS partition)"
               % (romfs.stat().st_size, romfs))
    click.echo("manifest: %s" % (Path(build_dir) / image_mod.MANIFEST))


@main.command()
@click.option("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
@click.option("--bundle", "bundle_path", required=True, type=click.Path(dir_okay=False),
              help="from `parkcard terminal add ... --export bundle.json`")
@click.option("--micropython", "micropython", type=click.Path(dir_okay=False),
              help="MicroPython ESP32_GENERIC .bin (not needed with --skip-micropython)")
@click.option("--baud", default=BAUD_DEFAULT, show_default=True, help="esptool baud rate")
@click.option("--dry-run", is_flag=True, help="print the plan; run nothing on the device")
@click.option("--skip-micropython", is_flag=True,
              help="keep MicroPython and the data files; replace the application and settings")
@build_option
@source_option
@_guard
def flash(port, bundle_path, micropython, baud, dry_run, skip_micropython, build_dir, source):
    """Flash MicroPython, copy the image and provision one terminal from its bundle."""
    bundle = load_bundle(bundle_path)
    if skip_micropython:
        firmware = None
    elif micropython is None:
        raise FlashError("--micropython FILE.bin is required (or --skip-micropython to keep "
                         "the MicroPython already on the board)")
    else:
        firmware = _check_micropython(micropython)
    _check_port(port, dry_run)
    entries = _build(source, build_dir, bundle)
    romfs_image = Path(build_dir) / romfs_mod.ROMFS_IMAGE
    partition = _romfs_partition(port, baud, build_dir, firmware, dry_run)
    if partition:
        romfs_mod.check_fits(partition, romfs_image.stat().st_size)
    steps = flash_plan(port, bundle, build_dir, entries, micropython=firmware, baud=baud,
                       romfs=(partition, romfs_image) if partition else None)
    image_mod.scan_for_secrets(Path(build_dir) / "provision", bundle.secrets())
    click.echo("terminal %d, %d image files, broker %s:%d"
               % (bundle.terminal_id, len(entries), bundle.broker_host, bundle.broker_port))
    click.echo(romfs_mod.install_report(partition, romfs_image.stat().st_size,
                                        Path(firmware).name if firmware else "the board's firmware"))
    if dry_run:
        click.echo("dry run: nothing is sent to %s\n" % port)
        click.echo(format_plan(steps))
        return
    if firmware is not None:
        click.echo("warning: erasing the flash deletes any records the terminal has not uploaded")
    run_plan(steps, echo=click.echo)
    click.echo("terminal %d flashed and verified; tap the admin system card to authorise it"
               % bundle.terminal_id)


@main.command()
@click.option("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
@click.option("--bundle", "bundle_path", type=click.Path(dir_okay=False),
              help="also check this terminal's settings file and its exact NVS keys")
@click.option("--dry-run", is_flag=True, help="print the command; run nothing on the device")
@click.option("--romfs", is_flag=True, help="the board got terminal/ and protocol/ in its ROMFS partition (/rom)")
@build_option
@_guard
def verify(port, bundle_path, dry_run, romfs, build_dir):
    """Compare the device's files with the last build's manifest and check its NVS keys."""
    entries = image_mod.read_manifest(build_dir)
    if romfs:
        entries = romfs_mod.rom_entries(entries)
    keys = list(REQUIRED_NVS_KEYS)
    if bundle_path:
        bundle = load_bundle(bundle_path)
        keys = device.nvs_keys(bundle)
        entries = entries + [file_entry(local, path)
                             for local, path in write_provision_files(build_dir, bundle)]
    _check_port(port, dry_run)
    steps = verify_steps(port, build_dir, entries, keys)
    if dry_run:
        click.echo(format_plan(steps))
        return
    run_plan(steps, echo=click.echo)
    click.echo("device matches the image: %d files, %d NVS keys" % (len(entries), len(keys)))


@main.command()
def ports():
    """List serial ports (the ESP32 board is usually a CP210x or CH340 USB-UART)."""
    from serial.tools import list_ports

    found = sorted(list_ports.comports(), key=lambda p: p.device)
    if not found:
        click.echo("no serial ports found: plug the board in with a data USB cable "
                   "(some cables only charge); it appears as /dev/ttyUSB0 or /dev/ttyACM0")
        return
    for p in found:
        click.echo("%-16s %-32s %s" % (p.device, p.description, p.hwid))
