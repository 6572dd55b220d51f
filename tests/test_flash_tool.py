"""parkcard-flash: the image, the bundle check, the plan and the CLI (no board attached)."""

import hashlib
import json
import os
import re
import shlex
import ssl
import struct
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from conftest import MICROPYTHON, REPO
from parkcard_flash import chip, cli, device, image, pins, plan, romfs
from parkcard_flash.bundle import load_bundle, parse_bundle
from parkcard_flash.errors import FlashError, StepFailed

TERMINAL_KEY = bytes(range(32))
TRANSPORT_KEY = bytes(range(0xA0, 0xC0))
BUNDLE = {
    "terminal_id": 7,
    "terminal_key": TERMINAL_KEY.hex(),
    "transport_key": TRANSPORT_KEY.hex(),
    "username": "term-7",
    "password": "broker-pw-7f3a9c",
    "broker_host": "hub.park.lan",
    "broker_port": 8883,
    "ca_pem": None,
    "wifi_ssid": "ParkNet",
    "wifi_password": "wifi-pass-123",
}
SECRET_TEXTS = (TERMINAL_KEY.hex(), TRANSPORT_KEY.hex(), "broker-pw-7f3a9c", "wifi-pass-123",
                b"broker-pw-7f3a9c".hex(), b"wifi-pass-123".hex())


def write_bundle(tmp_path, **changes):
    data = dict(BUNDLE, **changes)
    data = {k: v for k, v in data.items() if v is not DROP}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(data))
    return path


DROP = object()


def fake_tree(root, modules=None):
    """A source checkout with firmware/ and protocol/ holding the given {relative path: text}."""
    files = {
        "firmware/boot.py": "import gc\n",
        "firmware/main.py": "print('main')\n",
        "firmware/terminal/__init__.py": "",
        "firmware/terminal/wallet.py": "LIMIT_CENTS = 5000\n",
        "firmware/terminal/ui/__init__.py": "",
        "firmware/terminal/ui/screen.py": "W = 128\n",
        "firmware/terminal/test_wallet.py": "def test(): pass\n",
        "firmware/sim/__init__.py": "",
        "firmware/sim/mfrc522.py": "VIRTUAL = 1\n",
        "protocol/__init__.py": "",
        "protocol/frames.py": "VERSION = 1\n",
        "protocol/vectors/make.py": "KEY = 0\n",
        "protocol/SPEC.md": "# spec\n",
    }
    files.update(modules or {})
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def build(src, out):
    return image.build_image(src / "firmware", src / "protocol", out)


def staged(out):
    return sorted(p.relative_to(out / "image").as_posix() for p in (out / "image").rglob("*") if p.is_file())


# --- image -----------------------------------------------------------------


def test_real_tree_compiles_every_module(tmp_path):
    firmware = REPO / "firmware"
    if not ((firmware / "boot.py").exists() and (firmware / "main.py").exists()):
        firmware = tmp_path / "firmware"
        firmware.mkdir()
        (firmware / "terminal").symlink_to(REPO / "firmware" / "terminal")
        (firmware / "boot.py").write_text("import gc\n")
        (firmware / "main.py").write_text("print('main')\n")
    entries = image.build_image(firmware, REPO / "protocol", tmp_path / "build")
    paths = {e["path"] for e in entries}
    for package, src in (("terminal", REPO / "firmware" / "terminal"), ("protocol", REPO / "protocol")):
        for module in image.package_modules(src):
            assert "%s/%s" % (package, module.with_suffix(".mpy").as_posix()) in paths
    assert {"boot.py", "main.py"} <= paths
    assert not any(p.startswith("sim/") or "vectors" in p or p.endswith(".md") for p in paths)


def test_image_layout_excludes_sim_tests_and_vectors(tmp_path):
    src = fake_tree(tmp_path / "src")
    build(src, tmp_path / "out")
    assert staged(tmp_path / "out") == [
        "boot.py", "main.py",
        "protocol/__init__.mpy", "protocol/frames.mpy",
        "terminal/__init__.mpy", "terminal/ui/__init__.mpy", "terminal/ui/screen.mpy", "terminal/wallet.mpy",
    ]
    assert (tmp_path / "out/image/boot.py").read_text() == "import gc\n"


def test_image_leaves_out_what_building_protocols_wheel_leaves_behind(tmp_path):
    src = fake_tree(tmp_path / "src", {"protocol/build/lib/protocol/__init__.py": "",
                                       "protocol/build/lib/protocol/frames.py": "MAGIC = 1\n"})
    build(src, tmp_path / "out")
    assert [p for p in staged(tmp_path / "out") if p.startswith("protocol/")] == [
        "protocol/__init__.mpy", "protocol/frames.mpy"]


def test_manifest_holds_size_and_sha256_of_every_staged_file(tmp_path):
    src = fake_tree(tmp_path / "src")
    entries = build(src, tmp_path / "out")
    assert image.read_manifest(tmp_path / "out") == entries
    assert [e["path"] for e in entries] == staged(tmp_path / "out")
    for e in entries:
        data = (tmp_path / "out/image" / e["path"]).read_bytes()
        assert e["size"] == len(data)
        assert e["sha256"] == hashlib.sha256(data).hexdigest()


def test_rebuild_drops_modules_deleted_from_the_tree(tmp_path):
    src = fake_tree(tmp_path / "src", {"firmware/terminal/old.py": "X = 1\n"})
    build(src, tmp_path / "out")
    (src / "firmware/terminal/old.py").unlink()
    build(src, tmp_path / "out")
    assert "terminal/old.mpy" not in staged(tmp_path / "out")


def test_broken_module_is_named(tmp_path):
    src = fake_tree(tmp_path / "src", {"firmware/terminal/broken.py": "def f(:\n"})
    with pytest.raises(FlashError) as err:
        build(src, tmp_path / "out")
    assert "mpy-cross failed on" in str(err.value)
    assert "broken.py" in str(err.value) and "SyntaxError" in str(err.value)
    assert "wallet.py" not in str(err.value)


def test_missing_main_py_is_a_clear_error(tmp_path):
    src = fake_tree(tmp_path / "src")
    (src / "firmware/main.py").unlink()
    with pytest.raises(FlashError, match="main.py missing"):
        build(src, tmp_path / "out")


def test_build_outside_a_checkout_asks_for_the_source(tmp_path):
    result = CliRunner().invoke(cli.main, ["build", "--source", str(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "holds no firmware/: pass --source with a checkout" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("planted", [
    "KEY = '%s'\n" % TERMINAL_KEY.hex(),
    "KEY = '%s'\n" % TERMINAL_KEY.hex().upper(),
    "KEY = %r\n" % TERMINAL_KEY,
])
def test_key_scan_refuses_an_image_holding_the_terminal_key(tmp_path, planted):
    src = fake_tree(tmp_path / "src", {"firmware/terminal/leak.py": planted})
    build(src, tmp_path / "out")
    bundle = parse_bundle(BUNDLE)
    with pytest.raises(FlashError) as err:
        image.scan_for_secrets(tmp_path / "out/image", bundle.secrets())
    assert "leak.mpy contains the terminal_key" in str(err.value)


def test_key_scan_passes_a_clean_image(tmp_path):
    src = fake_tree(tmp_path / "src")
    build(src, tmp_path / "out")
    image.scan_for_secrets(tmp_path / "out/image", parse_bundle(BUNDLE).secrets())


@pytest.mark.micropython
def test_compiled_image_imports_under_real_micropython(tmp_path):
    build(fake_tree(tmp_path / "src"), tmp_path / "out")
    env = dict(os.environ, MICROPYPATH=str(tmp_path / "out/image"))
    proc = subprocess.run([str(MICROPYTHON), "-c", "import protocol.frames, terminal.ui.screen, terminal.wallet;"
                           "print(protocol.frames.VERSION, terminal.ui.screen.W, terminal.wallet.LIMIT_CENTS)"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.stdout.split() == ["1", "128", "5000"], proc.stderr


# --- bundle ----------------------------------------------------------------


def make_ca_pem():
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "park ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_valid_bundle_loads(tmp_path):
    pem = make_ca_pem()
    bundle = load_bundle(write_bundle(tmp_path, ca_pem=pem))
    assert bundle.terminal_id == 7 and bundle.terminal_key == TERMINAL_KEY and bundle.ca_pem == pem
    assert bundle.public_config("/ca.der") == {
        "terminal_id": 7, "broker_host": "hub.park.lan", "broker_port": 8883,
        "username": "term-7", "wifi_ssid": "ParkNet", "ca": "/ca.der"}


@pytest.mark.parametrize("changes, message", [
    ({"terminal_key": "abcd"}, "bundle.json: terminal_key must be 64 hex digits"),
    ({"terminal_key": "zz" * 32}, "bundle.json: terminal_key must be 64 hex digits"),
    ({"transport_key": DROP}, "bundle.json: transport_key missing: the terminal needs it to unlock the admin"),
    ({"transport_key": TERMINAL_KEY.hex()}, "terminal_key and transport_key are the same key"),
    ({"terminal_id": True}, "bundle.json: terminal_id must be a whole number from 1"),
    ({"terminal_id": 0}, "bundle.json: terminal_id must be a whole number from 1"),
    ({"broker_port": "8883"}, "bundle.json: broker_port must be a whole number from 1 to 65535"),
    ({"broker_host": ""}, "bundle.json: broker_host must be 1 to 253 bytes long"),
    ({"username": "term 7"}, "bundle.json: username must not contain spaces"),
    ({"password": DROP}, "bundle.json: password missing or not a string"),
    ({"ca_pem": "not a cert"}, "bundle.json: ca_pem is not a PEM certificate"),
    ({"wifi_ssid": "x" * 33}, "bundle.json: wifi_ssid must be 1 to 32 bytes long"),
    ({"wifi_password": "short"}, "bundle.json: wifi_password must be empty (open network) or 8 to 63"),
])
def test_bundle_errors_name_the_field(tmp_path, changes, message):
    with pytest.raises(FlashError) as err:
        load_bundle(write_bundle(tmp_path, **changes))
    assert message in str(err.value)


def test_bundle_reports_every_problem_at_once(tmp_path):
    with pytest.raises(FlashError) as err:
        load_bundle(write_bundle(tmp_path, terminal_key="00", broker_port=0))
    assert len(str(err.value).splitlines()) == 2


def test_missing_or_garbled_bundle_points_to_the_hub(tmp_path):
    with pytest.raises(FlashError, match="no such file.*parkcard terminal add"):
        load_bundle(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{terminal_id: 7")
    with pytest.raises(FlashError, match="bad.json: not JSON .*parkcard terminal add"):
        load_bundle(tmp_path / "bad.json")


def test_open_network_stores_no_wifi_password(tmp_path):
    bundle = load_bundle(write_bundle(tmp_path, wifi_password=""))
    assert device.nvs_keys(bundle) == ["terminal_key", "transport_key", "broker_password"]


# --- plan ------------------------------------------------------------------


@pytest.fixture
def built(tmp_path):
    """A built fake image and a CA-carrying bundle: (bundle, build dir, entries)."""
    out = tmp_path / "out"
    entries = build(fake_tree(tmp_path / "src"), out)
    return parse_bundle(dict(BUNDLE, ca_pem=make_ca_pem())), out, entries


def tail(step):
    return step.argv[1:]


def test_plan_commands(built, tmp_path):
    bundle, out, entries = built
    fw = tmp_path / "ESP32_GENERIC.bin"
    steps = plan.flash_plan("/dev/ttyUSB0", bundle, out, entries, micropython=fw, baud=921600)
    assert Path(steps[0].argv[0]).name == "esptool" and Path(steps[3].argv[0]).name == "mpremote"
    esp = ["--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "921600"]
    remote = ["connect", "/dev/ttyUSB0"]
    assert [tail(s) for s in steps] == [
        esp + ["flash-id"],
        esp + ["erase-flash"],
        esp + ["write-flash", "0x1000", str(fw)],
        remote + ["run", str(out / "provision/clean_device.py")],
        remote + ["fs", "cp", "-r", str(out / "image/terminal"), ":terminal"],
        remote + ["fs", "cp", "-r", str(out / "image/protocol"), ":protocol"],
        remote + ["fs", "cp", str(out / "provision/terminal.json"), ":terminal.json"],
        remote + ["fs", "cp", str(out / "provision/ca.der"), ":ca.der"],
        remote + ["exec", steps[8].argv[-1]],
        remote + ["fs", "cp", str(out / "image/boot.py"), ":boot.py"],
        remote + ["fs", "cp", str(out / "image/main.py"), ":main.py"],
        remote + ["run", str(out / "provision/verify_device.py")],
        remote + ["reset"],
    ]
    assert json.loads((out / "provision/terminal.json").read_text())["ca"] == "/ca.der"
    assert (out / "provision/ca.der").read_bytes() == ssl.PEM_cert_to_DER_cert(bundle.ca_pem)


def test_secrets_only_in_the_real_nvs_argv(built):
    bundle, out, entries = built
    steps = plan.flash_plan("/dev/ttyUSB0", bundle, out, entries, micropython=None)
    printed = plan.format_plan(steps)
    for secret in SECRET_TEXTS:
        assert secret not in printed
        carriers = [s.description for s in steps if secret in " ".join(s.argv)]
        assert carriers == [] or len(carriers) == 1 and carriers[0].startswith("Store 4 secrets in NVS")
    nvs = next(s for s in steps if s.argv[3] == "exec")
    assert TERMINAL_KEY.hex() in nvs.argv[-1] and TRANSPORT_KEY.hex() in nvs.argv[-1]
    assert "<terminal_key from bundle>" in nvs.command_line()
    assert "<transport_key from bundle>" in nvs.command_line()
    assert shlex.split(nvs.command_line())[:4] == nvs.argv[:4]


def test_skip_micropython_has_no_esptool_step(built):
    bundle, out, entries = built
    steps = plan.flash_plan("/dev/ttyUSB0", bundle, out, entries, micropython=None)
    assert not any(Path(s.argv[0]).name == "esptool" for s in steps)
    assert steps[0].description.startswith("Remove the previous application")


def test_no_provisioning_file_holds_a_secret(built):
    bundle, out, entries = built
    plan.flash_plan("/dev/ttyUSB0", bundle, out, entries)
    image.scan_for_secrets(out, bundle.secrets())  # image, manifest, settings and scripts


# Stand-in for the ESP32's esp32 module under the unix port: NVS kept in a dict.
FAKE_ESP32 = '''import binascii
STORE = {}
class NVS:
    def __init__(self, ns):
        self.ns = ns
    def set_blob(self, key, value):
        STORE[key] = bytes(value)
        print("SET", self.ns, key, binascii.hexlify(value).decode())
    def commit(self):
        print("COMMIT")
    def get_blob(self, key, buf):
        for k in PRESENT:
            if k == key:
                return 1
        raise OSError(-4354)
PRESENT = %r
'''


def run_on_micropython(tmp_path, script, present=()):
    lib = tmp_path / "mpylib"
    lib.mkdir(exist_ok=True)
    (lib / "esp32.py").write_text(FAKE_ESP32 % (list(present),))
    env = dict(os.environ, MICROPYPATH=str(lib))
    proc = subprocess.run([str(MICROPYTHON), "-X", "heapsize=100k", "-c", script],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.micropython
def test_nvs_step_stores_each_secret_under_micropython(built, tmp_path):
    bundle, out, entries = built
    nvs = plan.nvs_step("/dev/ttyUSB0", bundle)
    lines = run_on_micropython(tmp_path, nvs.argv[-1]).splitlines()
    assert lines == [
        "SET parkcard terminal_key " + TERMINAL_KEY.hex(),
        "SET parkcard transport_key " + TRANSPORT_KEY.hex(),
        "SET parkcard broker_password " + b"broker-pw-7f3a9c".hex(),
        "SET parkcard wifi_password " + b"wifi-pass-123".hex(),
        "COMMIT",
        "NVS 4",
    ]


@pytest.mark.micropython
def test_verify_script_matches_manifest_under_micropython(built, tmp_path):
    bundle, out, entries = built
    keys = device.nvs_keys(bundle)
    script = device.verify_script(entries, keys, root=str(out / "image") + "/")
    stdout = run_on_micropython(tmp_path, script, present=keys)
    assert device.check_verify_output(stdout, entries, keys) == []

    (out / "image/terminal/wallet.mpy").write_bytes(b"tampered")
    (out / "image/main.py").unlink()
    stdout = run_on_micropython(tmp_path, script, present=keys[:2])
    assert device.check_verify_output(stdout, entries, keys) == [
        "main.py: missing on the device",
        "terminal/wallet.mpy: differs from the image (sha256 %s, expected %s)" % (
            hashlib.sha256(b"tampered").hexdigest()[:16],
            next(e["sha256"][:16] for e in entries if e["path"] == "terminal/wallet.mpy")),
        "NVS parkcard/broker_password: missing",
        "NVS parkcard/wifi_password: missing",
    ]


@pytest.mark.micropython
def test_clean_script_removes_code_and_keeps_data(tmp_path):
    root = tmp_path / "dev"
    for rel in ("main.py", "boot.py", "terminal.json", "terminal/a.mpy", "terminal/ui/b.mpy",
                "protocol/c.mpy", "data/journal/0001", "data/terminal.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    assert run_on_micropython(tmp_path, device.clean_script(str(root) + "/")).split() == ["CLEAN"]
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "data", "data/journal", "data/journal/0001", "data/terminal.json"]


def completed(returncode, stdout=""):
    return SimpleNamespace(returncode=returncode, stdout=stdout)


def test_run_plan_stops_at_the_first_failure():
    ran = []
    steps = [plan.Step("one", ["esptool", "a"]), plan.Step("two", ["mpremote", "b"], hint="try again"),
             plan.Step("three", ["mpremote", "c"])]

    def runner(argv, **kwargs):
        ran.append(argv)
        return completed(0 if argv[1] == "a" else 1)

    with pytest.raises(StepFailed) as err:
        plan.run_plan(steps, echo=lambda line: None, runner=runner)
    assert ran == [["esptool", "a"], ["mpremote", "b"]]
    assert str(err.value) == ("step 2 of 3 (two) failed: mpremote exited with 1; the steps after it were "
                              "not run\nhint: try again")


# What `esptool --chip esp32 flash-id` prints (esptool 5; esptool 4 says "Chip is ..."), per board.
ESPTOOL_WROOM = """Connected to ESP32 on /dev/ttyUSB0:
Chip type:          ESP32-D0WD-V3 (revision v3.1)
Features:           Wi-Fi, BT, Dual Core + LP Core, 240MHz, Vref calibration in eFuse, Coding Scheme None
Crystal frequency:  40MHz
MAC:                24:0a:c4:00:00:01

Flash Memory Information:
=========================
Manufacturer: 20
Device: 4016
Detected flash size: 4MB
"""
ESPTOOL_D0WDR2 = ESPTOOL_WROOM.replace("ESP32-D0WD-V3", "ESP32-D0WDR2-V3").replace("4MB", "8MB")
ESPTOOL_PICO_V3_02 = ESPTOOL_WROOM.replace("ESP32-D0WD-V3", "ESP32-PICO-V3-02").replace(
    "240MHz,", "240MHz, Embedded Flash, Embedded PSRAM,")
ESPTOOL_V4_WROOM = """Chip is ESP32-D0WD-V3 (revision v3.0)
Features: WiFi, BT, Dual Core, 240MHz, VRef calibration in efuse, Coding Scheme None
Detected flash size: 4MB
"""


@pytest.mark.parametrize("stdout, firmware, shown", [
    (ESPTOOL_WROOM, "ESP32_GENERIC-20250415-v1.25.0.bin",
     ["chip: ESP32-D0WD-V3 (revision v3.1), flash 4MB, no PSRAM seen by esptool", "heap: " + chip.HEAP_NO_PSRAM]),
    (ESPTOOL_V4_WROOM, "ESP32_GENERIC.bin",
     ["chip: ESP32-D0WD-V3 (revision v3.0), flash 4MB, no PSRAM seen by esptool", "heap: " + chip.HEAP_NO_PSRAM]),
    (ESPTOOL_D0WDR2, "ESP32_GENERIC-SPIRAM.bin",
     ["chip: ESP32-D0WDR2-V3 (revision v3.1), flash 8MB, PSRAM", "heap: " + chip.HEAP_PSRAM]),
    (ESPTOOL_PICO_V3_02, "ESP32_GENERIC.bin",
     ["chip: ESP32-PICO-V3-02 (revision v3.1), flash 4MB, PSRAM", "heap: " + chip.HEAP_PSRAM,
      "note: ESP32_GENERIC.bin is not a SPIRAM build: the PSRAM stays unused and the heap is about 110 KB"]),
    (ESPTOOL_WROOM, "ESP32_GENERIC-SPIRAM.bin",
     ["chip: ESP32-D0WD-V3 (revision v3.1), flash 4MB, no PSRAM seen by esptool", "heap: " + chip.HEAP_NO_PSRAM,
      "warning: ESP32_GENERIC-SPIRAM.bin is a SPIRAM build and esptool sees no PSRAM: unless this is a WROVER "
      "module, flash ESP32_GENERIC instead"]),
], ids=["wroom", "esptool4", "d0wdr2", "pico_v3_02", "spiram_build_no_psram"])
def test_the_chip_is_read_before_flashing_and_its_heap_class_said(stdout, firmware, shown):
    lines = []
    step = plan.chip_step("/dev/ttyUSB0", 460800, firmware)
    plan.run_plan([step], echo=lines.append, runner=lambda argv, **kw: completed(0, stdout))
    assert step.argv[1:] == ["--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "460800", "flash-id"]
    assert lines[2:] == ["\n".join(shown), "done: 1 steps"]


@pytest.mark.parametrize("stdout, problem", [
    (ESPTOOL_WROOM.replace("ESP32-D0WD-V3 (revision v3.1)", "ESP32-S3 (QFN56) (revision v0.2)"),
     "ESP32-S3 (QFN56) (revision v0.2) is not a classic ESP32"),
    ("A fatal error occurred: Failed to connect to ESP32: No serial data received.\n",
     "esptool did not say which chip this is"),
], ids=["esp32_s3", "no_answer"])
def test_a_board_that_is_not_a_classic_esp32_stops_the_plan_before_anything_is_written(stdout, problem):
    steps = [plan.chip_step("/dev/ttyUSB0", 460800, "ESP32_GENERIC.bin"), plan.Step("erase", ["esptool", "erase"])]
    ran = []

    def runner(argv, **kwargs):
        ran.append(argv[-1])
        return completed(0, stdout)

    with pytest.raises(StepFailed, match="step 1 of 2 .*failed:\n  " + re.escape(problem)):
        plan.run_plan(steps, echo=lambda line: None, runner=runner)
    assert ran == ["flash-id"]  # nothing erased


def test_run_plan_fails_a_step_whose_check_finds_problems():
    step = plan.Step("verify", ["mpremote", "run"], check=lambda out: [] if out == "ok" else ["bad: " + out])
    plan.run_plan([step], echo=lambda line: None, runner=lambda argv, **kw: completed(0, "ok"))
    with pytest.raises(StepFailed, match="step 1 of 1 \\(verify\\) failed:\n  bad: nope"):
        plan.run_plan([step], echo=lambda line: None, runner=lambda argv, **kw: completed(0, "nope"))


def test_run_plan_executes_the_real_argv_with_subprocess(tmp_path):
    marker = tmp_path / "ran"
    step = plan.Step("touch", ["python3", "-c", "open(%r, 'w').write('x')" % str(marker)],
                     shown=["python3", "-c", "<hidden>"])
    lines = []
    plan.run_plan([step], echo=lines.append)
    assert marker.read_text() == "x"
    assert lines == ["[1/1] touch", "   $ python3 -c '<hidden>'", "done: 1 steps"]


# --- CLI -------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path):
    """(runner, bundle path, firmware .bin, source tree, build dir)."""
    fw = tmp_path / "ESP32_GENERIC.bin"
    fw.write_bytes(b"\xe9" + bytes(255))
    return (CliRunner(), write_bundle(tmp_path), fw, fake_tree(tmp_path / "src"), tmp_path / "build")


def invoke(runner, *args):
    return runner.invoke(cli.main, [str(a) for a in args])


def test_cli_dry_run_prints_the_plan(cli_env):
    runner, bundle, fw, src, out = cli_env
    result = invoke(runner, "flash", "--port", "/dev/ttyUSB7", "--bundle", bundle, "--micropython", fw,
                    "--dry-run", "--source", src, "--out", out)
    assert result.exit_code == 0, result.output
    assert "1. Read the chip" in result.output and "2. Erase the whole flash" in result.output
    assert "esptool --chip esp32 --port /dev/ttyUSB7 --baud 460800 write-flash 0x1000 %s" % fw in result.output
    assert "mpremote connect /dev/ttyUSB7 fs cp -r %s :terminal" % (out / "image/terminal") in result.output
    assert 'binascii.unhexlify("<terminal_key from bundle>")' in result.output
    assert "12. Reset the terminal" in result.output  # no CA in this bundle: no ca.der step
    for secret in SECRET_TEXTS:
        assert secret not in result.output


def test_cli_build(cli_env):
    runner, bundle, fw, src, out = cli_env
    result = invoke(runner, "build", "--source", src, "--out", out, "--bundle", bundle)
    assert result.exit_code == 0, result.output
    assert "image: 8 files" in result.output and (out / "manifest.json").exists()


def test_cli_verify_dry_run_uses_the_manifest(cli_env):
    runner, bundle, fw, src, out = cli_env
    assert invoke(runner, "build", "--source", src, "--out", out).exit_code == 0
    result = invoke(runner, "verify", "--port", "/dev/ttyUSB7", "--out", out, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "hash 8 files on the device against the manifest, check 3 NVS keys" in result.output
    assert "mpremote connect /dev/ttyUSB7 run %s" % (out / "provision/verify_device.py") in result.output


@pytest.mark.parametrize("case, message", [
    ("no_port", "no serial port /dev/ttyNOPE: is the board plugged in? list ports with `parkcard-flash ports`"),
    ("no_firmware", "no such file; download ESP32_GENERIC"),
    ("not_firmware", "not an ESP32 firmware image"),
    ("no_micropython_option", "--micropython FILE.bin is required"),
    ("bad_bundle", "bundle.json: terminal_key must be 64 hex digits"),
    ("no_bundle", "no such file; the terminal is unknown until you export it on the hub with `parkcard terminal add"),
    ("broken_module", "mpy-cross failed on"),
    ("leaked_key", "refusing to flash: key material in the image"),
])
def test_cli_errors_exit_2_without_traceback(cli_env, tmp_path, case, message):
    runner, bundle, fw, src, out = cli_env
    args = {"--port": "/dev/ttyUSB7", "--bundle": bundle, "--micropython": fw, "--source": src, "--out": out}
    flags = ["--dry-run"]
    if case == "no_port":
        args["--port"], flags = "/dev/ttyNOPE", []
    elif case == "no_firmware":
        args["--micropython"] = tmp_path / "missing.bin"
    elif case == "not_firmware":
        (tmp_path / "x.bin").write_bytes(b"PK\x03\x04")
        args["--micropython"] = tmp_path / "x.bin"
    elif case == "no_micropython_option":
        del args["--micropython"]
    elif case == "bad_bundle":
        args["--bundle"] = write_bundle(tmp_path, terminal_key="1234")
    elif case == "no_bundle":
        args["--bundle"] = tmp_path / "gone.json"
    elif case == "broken_module":
        (src / "firmware/terminal/broken.py").write_text("def f(:\n")
        message += " %s" % (src / "firmware/terminal/broken.py")
    elif case == "leaked_key":
        (src / "protocol/leak.py").write_text("K = '%s'\n" % TRANSPORT_KEY.hex())
    argv = ["flash"] + [str(x) for kv in args.items() for x in kv] + flags
    result = runner.invoke(cli.main, argv)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, FlashError)


def test_cli_ports_lists_or_explains(monkeypatch):
    from serial.tools import list_ports

    monkeypatch.setattr(list_ports, "comports", lambda: [])
    result = CliRunner().invoke(cli.main, ["ports"])
    assert result.exit_code == 0 and "no serial ports found" in result.output
    port = SimpleNamespace(device="/dev/ttyUSB0", description="CP2102 USB to UART", hwid="USB VID:PID=10C4:EA60")
    monkeypatch.setattr(list_ports, "comports", lambda: [port])
    result = CliRunner().invoke(cli.main, ["ports"])
    assert result.output.split()[0] == "/dev/ttyUSB0" and "10C4:EA60" in result.output


# --- pins ------------------------------------------------------------------


def test_default_pins_are_safe_for_an_esp32_wroom():
    wired = pins.assigned_pins()
    gpios = [gpio for _, _, gpio, _ in wired]
    assert len(gpios) == len(set(gpios)) == 18
    assert not set(gpios) & set(pins.RESERVED_PINS)
    # only the chip select, which idles high as the strap wants; never the relay (GPIO 2 picks the boot mode)
    assert [gpio for gpio in gpios if gpio in pins.STRAPPING_PINS] == [pins.DEFAULT_PINS["rc522"]["cs"]]
    assert pins.DEFAULT_PINS["relay"]["pin"] not in pins.STRAPPING_PINS + pins.INPUT_ONLY_PINS
    assert not [(part, role) for part, role, gpio, way in wired if way == "out" and gpio in pins.INPUT_ONLY_PINS]
    # Columns use the internal pull-up, which input-only pins do not have: there, one on the board.
    assert set(pins.DEFAULT_PINS["keypad"]["cols"]) & set(pins.INPUT_ONLY_PINS) == set(pins.EXTERNAL_PULLUPS)


def test_firmware_board_uses_the_same_pins():
    board = pytest.importorskip("terminal.board")
    assert board.DEFAULT_PINS == pins.DEFAULT_PINS


# --- ROMFS -----------------------------------------------------------------

# MicroPython's partitions-4MiB-romfs.csv (the ESP32_GENERIC ROMFS variant) and partitions-4MiB.csv.
ROMFS_TABLE = [(b"nvs", 1, 0x02, 0x9000, 0x6000), (b"phy_init", 1, 0x01, 0xF000, 0x1000),
               (b"factory", 0, 0x00, 0x10000, 0x1D0000), (b"romfs", 1, 0x8F, 0x1E0000, 0x20000)]
PLAIN_TABLE = [(b"nvs", 1, 0x02, 0x9000, 0x6000), (b"phy_init", 1, 0x01, 0xF000, 0x1000),
               (b"factory", 0, 0x00, 0x10000, 0x300000), (b"vfs", 1, 0x81, 0x310000, 0xF0000)]


def partition_table(rows):
    """An ESP-IDF partition table's bytes: 32-byte entries, the MD5 row, erased flash after."""
    data = b"".join(struct.pack("<2sBBII16sI", b"\xaa\x50", kind, subtype, offset, size, label, 0)
                    for label, kind, subtype, offset, size in rows)
    data += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(data).digest()
    return data + b"\xff" * (romfs.PARTITION_TABLE_BYTES - len(data))


def firmware_bin(path, rows):
    """A MicroPython download as flashed at 0x1000: bootloader, the partition table at 0x8000, the app."""
    path.write_bytes(b"\xe9" + bytes(0x7000 - 1) + (partition_table(rows) if rows else b"\xff" * 0xC00)
                     + b"\xe9" + bytes(255))
    return path


def test_the_romfs_image_holds_terminal_and_protocol_as_compiled(tmp_path):
    from mpremote.romfs import VfsRomWriter  # noqa: F401 - the builder the tool uses is importable
    out = tmp_path / "out"
    build(fake_tree(tmp_path / "src"), out)
    path = romfs.build_romfs(out / "image", out)
    assert path == out / "romfs.img" and path.read_bytes()[:3] == b"\xd2\xcd\x31"  # ROMFS magic "RM1"
    assert sorted(p.relative_to(out / "romfs").as_posix() for p in (out / "romfs").rglob("*.mpy")) == [
        "protocol/__init__.mpy", "protocol/frames.mpy", "terminal/__init__.mpy", "terminal/ui/__init__.mpy",
        "terminal/ui/screen.mpy", "terminal/wallet.mpy"]
    for rel in ("terminal/wallet.mpy", "protocol/frames.mpy"):
        assert (out / "image" / rel).read_bytes() in path.read_bytes()   # the very bytes mpy-cross wrote


@pytest.mark.micropython
def test_the_romfs_image_mounts_and_imports_under_real_micropython(tmp_path):
    out = tmp_path / "out"
    build(fake_tree(tmp_path / "src"), out)
    path = romfs.build_romfs(out / "image", out)
    script = ("import sys, vfs\nvfs.mount(vfs.VfsRom(open(%r, 'rb').read()), '/rom')\nsys.path[:] = ['/rom']\n"
              "import protocol.frames, terminal.ui.screen, terminal.wallet\n"
              "print(protocol.frames.VERSION, terminal.ui.screen.W, terminal.wallet.LIMIT_CENTS,"
              " terminal.wallet.__file__)" % str(path))
    proc = subprocess.run([str(MICROPYTHON), "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert proc.stdout.split() == ["1", "128", "5000", "/rom/terminal/wallet.mpy"], proc.stderr


def test_a_rebuilt_romfs_image_drops_modules_deleted_from_the_tree(tmp_path):
    src, out = fake_tree(tmp_path / "src", {"firmware/terminal/old.py": "X = 1\n"}), tmp_path / "out"
    build(src, out)
    romfs.build_romfs(out / "image", out)
    (src / "firmware/terminal/old.py").unlink()
    build(src, out)
    romfs.build_romfs(out / "image", out)
    assert not (out / "romfs/terminal/old.mpy").exists() and b"old.mpy" not in (out / "romfs.img").read_bytes()


def test_the_romfs_partition_is_read_from_the_firmware_file(tmp_path):
    with_romfs = romfs.firmware_partition_table(firmware_bin(tmp_path / "r.bin", ROMFS_TABLE), 0x1000)
    assert [p["label"] for p in with_romfs] == ["nvs", "phy_init", "factory", "romfs"]
    assert romfs.romfs_partition(with_romfs) == {"label": "romfs", "type": 1, "subtype": 0x8F,
                                                 "offset": 0x1E0000, "size": 0x20000}
    plain = romfs.firmware_partition_table(firmware_bin(tmp_path / "p.bin", PLAIN_TABLE), 0x1000)
    assert romfs.romfs_partition(plain) is None
    assert romfs.firmware_partition_table(firmware_bin(tmp_path / "app.bin", None), 0x1000) is None
    with pytest.raises(FlashError, match="no ESP-IDF partition table at 0x8000"):
        romfs.parse_partition_table(b"\xff" * 0xC00)      # what an erased chip gives back


def test_an_image_larger_than_the_partition_is_refused():
    partition = {"label": "romfs", "offset": 0x1E0000, "size": 0x20000}
    romfs.check_fits(partition, 0x20000)
    with pytest.raises(FlashError, match="the ROMFS image is 131073 bytes and the board's 'romfs' partition "
                                         "holds 131072: the application does not fit"):
        romfs.check_fits(partition, 0x20001)


def test_plan_for_a_board_with_a_romfs_partition(built, tmp_path):
    bundle, out, entries = built
    image_path = romfs.build_romfs(out / "image", out)
    partition = romfs.romfs_partition(romfs.parse_partition_table(partition_table(ROMFS_TABLE)))
    fw = tmp_path / "ESP32_GENERIC-ROMFS.bin"
    steps = plan.flash_plan("/dev/ttyUSB0", bundle, out, entries, micropython=fw, romfs=(partition, image_path))
    esp = ["--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "460800"]
    remote = ["connect", "/dev/ttyUSB0"]
    assert [tail(s) for s in steps] == [
        esp + ["flash-id"],
        esp + ["erase-flash"],
        esp + ["write-flash", "0x1000", str(fw)],
        esp + ["write-flash", "0x1e0000", str(image_path)],      # before MicroPython first starts and mounts it
        remote + ["run", str(out / "provision/clean_device.py")],
        remote + ["fs", "cp", str(out / "provision/terminal.json"), ":terminal.json"],
        remote + ["fs", "cp", str(out / "provision/ca.der"), ":ca.der"],
        remote + ["exec", steps[7].argv[-1]],
        remote + ["fs", "cp", str(out / "image/boot.py"), ":boot.py"],
        remote + ["fs", "cp", str(out / "image/main.py"), ":main.py"],
        remote + ["run", str(out / "provision/verify_device.py")],
        remote + ["reset"],
    ]
    assert "partition 'romfs' at 0x1e0000" in steps[3].description
    verify = (out / "provision/verify_device.py").read_text()
    assert "'rom/terminal/wallet.mpy'" in verify and "'boot.py'" in verify and "'terminal/wallet.mpy'" not in verify


@pytest.mark.micropython
def test_verify_script_finds_a_romfs_install_under_rom(built, tmp_path):
    bundle, out, entries = built
    image_path = romfs.build_romfs(out / "image", out)
    device_root = tmp_path / "dev"
    device_root.mkdir()
    for name in ("boot.py", "main.py"):
        (device_root / name).write_bytes((out / "image" / name).read_bytes())
    checked = romfs.rom_entries(entries)
    # The device's filesystem at / and the partition at /rom, as MicroPython mounts them on the board.
    script = ("import os, vfs\nrom = vfs.VfsRom(open(%r, 'rb').read())\nos.umount('/')\n"
              "vfs.mount(os.VfsPosix(%r), '/')\nvfs.mount(rom, '/rom')\n" % (str(image_path), str(device_root))
              + device.verify_script(checked, []))
    assert device.check_verify_output(run_on_micropython(tmp_path, script), checked, []) == []


def dry_run_with_table(cli_env, tmp_path, name, rows):
    """`flash --dry-run` with a firmware file named name whose partition table has rows."""
    runner, bundle, _fw, src, out = cli_env
    fw = firmware_bin(tmp_path / name, rows)
    return invoke(runner, "flash", "--port", "/dev/ttyUSB7", "--bundle", bundle, "--micropython", fw,
                  "--dry-run", "--source", src, "--out", out)


def test_cli_dry_run_installs_to_the_romfs_partition_the_firmware_has(cli_env, tmp_path):
    out = cli_env[4]
    result = dry_run_with_table(cli_env, tmp_path, "ESP32_GENERIC-ROMFS.bin", ROMFS_TABLE)
    assert result.exit_code == 0, result.output
    assert "install: ROMFS partition 'romfs' at 0x1e0000" in result.output
    assert "write-flash 0x1e0000 %s" % (out / "romfs.img") in result.output
    assert " :terminal\n" not in result.output and " :protocol\n" not in result.output


def test_cli_dry_run_installs_files_when_the_firmware_has_no_romfs_partition(cli_env, tmp_path):
    out = cli_env[4]
    result = dry_run_with_table(cli_env, tmp_path, "ESP32_GENERIC.bin", PLAIN_TABLE)
    assert result.exit_code == 0, result.output
    assert "install: files on the filesystem (ESP32_GENERIC.bin has no ROMFS partition)" in result.output
    assert "fs cp -r %s :terminal" % (out / "image/terminal") in result.output
    assert "romfs.img" not in result.output


def test_cli_refuses_an_application_too_large_for_the_romfs_partition(cli_env, tmp_path):
    tiny = [row if row[0] != b"romfs" else (b"romfs", 1, 0x8F, 0x1E0000, 0x100) for row in ROMFS_TABLE]
    result = dry_run_with_table(cli_env, tmp_path, "ESP32_GENERIC-ROMFS.bin", tiny)
    assert result.exit_code == 2 and "partition holds 256: the application does not fit" in result.output
    assert "Traceback" not in result.output


def test_cli_keeping_micropython_reads_the_chips_partition_table_first(cli_env, monkeypatch):
    runner, bundle, fw, src, out = cli_env
    ran = []

    def esptool_and_mpremote(argv, **kwargs):
        ran.append(argv[1:])
        if "read-flash" in argv:
            Path(argv[-1]).write_bytes(partition_table(ROMFS_TABLE))
        return completed(0, "END\n")
    # The CLI's plan runs the commands with this runner in place of subprocess.run: no board is reached.
    monkeypatch.setattr(cli, "run_plan", lambda steps, echo: plan.run_plan(steps, echo, esptool_and_mpremote))
    result = invoke(runner, "flash", "--port", "rfc2217://bench:4000", "--bundle", bundle, "--skip-micropython",
                    "--source", src, "--out", out)
    assert ran[0][-4:] == ["read-flash", "0x8000", "0xc00", str(out / "partition-table.bin")]
    assert ran[1][-2:] == ["0x1e0000", str(out / "romfs.img")] and "install: ROMFS partition" in result.output


def test_cli_dry_run_keeping_micropython_says_the_install_is_decided_by_the_chips_table(cli_env):
    runner, bundle, fw, src, out = cli_env
    result = invoke(runner, "flash", "--port", "/dev/ttyUSB7", "--bundle", bundle, "--skip-micropython",
                    "--dry-run", "--source", src, "--out", out)
    assert result.exit_code == 0, result.output
    assert "install: decided on a real run from the partition table it first reads from the chip" in result.output
    assert not (out / "partition-table.bin").exists()       # nothing was read from the board


def test_the_whole_application_fits_the_romfs_partition_of_micropythons_romfs_variant(tmp_path):
    # ESP32_GENERIC's ROMFS variant (partitions-4MiB-romfs.csv) has a 128 KB romfs partition: the supported
    # board without PSRAM runs the terminal from it, so an application grown past it could not be flashed there.
    out = tmp_path / "build"
    image.build_image(REPO / "firmware", REPO / "protocol", out)
    path = romfs.build_romfs(out / "image", out)
    romfs.check_fits({"label": "romfs", "offset": 0x1E0000, "size": 0x20000}, path.stat().st_size)
    with pytest.raises(FlashError, match="does not fit"):
        romfs.check_fits({"label": "romfs", "offset": 0x1E0000, "size": 0x10000}, path.stat().st_size)
