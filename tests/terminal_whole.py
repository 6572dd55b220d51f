"""The whole terminal under MicroPython, as parkcard-flash installs it, against a real hub and a TLS broker.

Shared by tests/test_terminal_whole.py and bench/bench_heap.py. A `Park` is a secure Mosquitto (TLS,
passwords, ACL), a hub on SQLite with the park's keys and a ride terminal registered; `WholeTerminal`
is tests/mpy/whole_check.py running main.main() in its own MicroPython process, on a filesystem
laid out as the flash tool leaves it, with the virtual RC522 served from this process. Two installs: files
(terminal/ and protocol/ on the filesystem: a firmware without a ROMFS partition) and romfs (the flash tool's
ROMFS image mapped outside the heap by tests/romfs_mapped.py, as an ESP32 maps its ROMFS partition).
"""

import asyncio
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from protocol import card, frames, ticket as t
from sim.cards import issued_card
from sim.chip_server import ChipServer

from conftest import FIRMWARE, MICROPYTHON, REPO, compiled_firmware, micropython_env
from parkcard.security import secure
from parkcard.services import tickets
from parkcard_devkit.testing import MERCHANT_ICE, start_hub
from parkcard_flash.image import build_image
from parkcard_flash.romfs import ROMFS_PACKAGES, build_romfs, pack

TERMINAL_ID = 21
RIDE_PRICE_CENTS = 250
CARD_NO = 424242
CARD_UID = bytes.fromhex("04a1b2c3d4e5f6")
WAIT_S = 60
POLL_S = 0.05
# The budget the whole terminal runs at in CI when parkcard-flash installs terminal/ and protocol/ as files on
# the filesystem (a firmware without a ROMFS partition), on the 64-bit unix port. Measured (bench/bench_heap.py)
# it passes at 175 KB and fails at 173 KB (178 KB passed three runs of three before the shared modules' cuts; no
# MemoryError at all, recovered ones included): the imports alone take about 110 KB, 25 KB of it qstr pools, before
# main.main() builds anything. Near the limit the heap is in small pieces (the largest free block a few hundred
# bytes): 5 KB above 175.
WHOLE_HEAP = "180k"
# The same terminal installed as parkcard-flash does on a board whose firmware has a ROMFS partition: terminal/
# and protocol/ in the image, mapped outside the heap (tests/romfs_mapped.py), their bytecode and constants
# executed in place; the host board's modules from a second mapped image, as terminal/board.py would be in the
# first. Issue 11's target, 130k (about 90 KB with the ESP32's 32-bit objects): measured with
# `pytest tests/test_terminal_whole.py -k romfs -s` at other heaps it passes at 124 KB and fails at 122 KB (the
# blacklist snapshot no longer lands); the imports take about 71 KB there instead of 113 KB. 6 KB above 124.
ROMFS_HEAP = "130k"
# A gate's budget, from ROMFS: the whole gate (its role module: ticket rules, passages, the lock) needs more than a
# ride: about 8 KB more imports (protocol/ticket.py 4.5 KB, roles/gate.py 2.9 KB). A timed exit, an owed charge, a
# torn exit and a card to lock load terminal/gate_owed.py for their tap only. Installed as files it passes at 196 KB
# and fails at 194 KB (before these cuts), so only the ROMFS install is tested. From ROMFS, measured with
# `pytest tests/test_terminal_whole.py -k gate` at fixed heaps, it passes at 130 KB in four runs of four and at 128 KB
# in six of six, at 126 KB in four of six (a task out of memory in the others); before, it failed all four at 130 and
# at 128 KB. What moved it: a gate holds no purse rules (the wallet loads terminal/purse.py at its first debit), no
# card-issuing code (protocol/card_issue.py), no SettingsError (terminal/assemble.py), the driver's error texts and
# the prompts are words of one constant string each, and a passage or refusal is journalled from record.seal, without
# a Record whose 272-byte attribute dict a fragmented heap could not give at the refusal. After the passage 116,032 B
# are in use (about 120 KB before) and 1,200 names are interned, 60 below the 1,260 the six qstr pools hold (the
# seventh is about 14 KB at once): a change that adds names to the gate (roles/gate.py, gate_rules.py, gate_owed.py,
# protocol/ticket.py) shows here first. The ride's budget, 2 KB above the lowest heap that passed every run.
GATE_ROMFS_HEAP = "130k"
# Cards the park blacklists before the terminal first connects: more than a terminal takes in one
# T_BLACKLIST (terminal.sync asks for 128, SPEC.md §5.5) and more versions than a delta spans: a snapshot
# of five chunks.
BLACKLISTED = tuple(range(900001, 900001 + 600))


INSTALL_FILES = "files"   # terminal/ and protocol/ on the filesystem: a board without a ROMFS partition
INSTALL_ROMFS = "romfs"   # terminal/ and protocol/ in the ROMFS image, mapped outside the heap
ROMFS_MAPPED = REPO / "tests" / "romfs_mapped.py"
# The host board's modules (tests/mpy/whole_check.py and what it imports), in place of terminal/board.py.
KIT_MODULES = ("scripts/whole_check.mpy", "scripts/romfs_mount.mpy", "sim/__init__.mpy", "sim/spi_link.mpy")


def _image(root):
    """The application as parkcard-flash stages it (boot.py, main.py, terminal/*.mpy, protocol/*.mpy)."""
    build = root / "build"
    build_image(FIRMWARE, REPO / "protocol", build, mpy_cross=str(MICROPYTHON.parent / "mpy-cross"))
    return build / "image"


def _lay_out(root, device, install):
    """The device's filesystem as parkcard-flash leaves it for this install; the ROMFS image's path or None."""
    image = _image(root)
    if install == INSTALL_FILES:
        shutil.copytree(image, device)
        return None
    device.mkdir(parents=True)
    for path in image.iterdir():
        if path.name not in ROMFS_PACKAGES:      # boot.py and main.py: MicroPython runs them from the filesystem
            shutil.copy(path, device / path.name)
    return build_romfs(image, root / "build")


def _kit_image(root):
    """A ROMFS image of the host board's compiled modules (the test kit's stand-in for terminal/board.py)."""
    compiled, staging = compiled_firmware(), root / "kit"
    for rel in KIT_MODULES:
        dest = staging / rel.replace("scripts/", "")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(compiled / rel, dest)
    return pack(staging, root / "kit.img")


class Park:
    """Broker, hub and one registered ride terminal (or entry gate); the hub runs on its own event loop thread."""

    def __init__(self, root, role=frames.ROLE_RIDE):
        self.root = Path(root)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.broker, kwargs, self.secrets = secure.start_secure_park(self.root / "park")
        self.hub = self.call(start_hub(self.root / "hub.db", self.broker.host, self.broker.port,
                                       on_terminals_added=secure.broker_refresher(self.broker, self.secrets),
                                       **kwargs))
        self.role = role
        self.key = self.call(self.hub.register_terminal(TERMINAL_ID, MERCHANT_ICE, role, "ride",
                                                        fixed_price_cents=RIDE_PRICE_CENTS, category=1))
        self.product = None
        if role == frames.ROLE_GATE:
            actor = self.hub.actor()
            self.product = self.call(tickets.add_product(self.hub.storage, actor, "Day pass", "day", area=1,
                                                         valid_days=1))
            self.call(self.hub.configure_gate(TERMINAL_ID, "entry", area=1, products=[self.product]))
        self.password = self.call(self.hub.terminal_credentials())[TERMINAL_ID]
        self.call(secure.broker_refresher(self.broker, self.secrets)(self.hub, [TERMINAL_ID]))
        for card_no in BLACKLISTED:
            self.call(self.hub.blacklist_add(card_no, "lost", force=True))

    def call(self, coro, timeout_s=WAIT_S):
        """Run a coroutine on the hub's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def terminal_row(self):
        """The hub's row of the terminal (its last status report included)."""
        return self.call(self.hub.storage.terminals(TERMINAL_ID))[0]

    def wait(self, condition, what, timeout_s=WAIT_S):
        """Wait on the hub's loop until condition() holds."""
        async def until():
            await self.hub.wait_until(condition, timeout_s)
        try:
            self.call(until(), timeout_s + 5)
        except (TimeoutError, asyncio.TimeoutError):
            raise AssertionError("hub: no %s within %d s" % (what, timeout_s)) from None

    def wait_row(self, condition, what, timeout_s=WAIT_S):
        """Wait until condition(row) holds for the hub's row of the terminal (read as the fleet view reads it)."""
        async def until():
            while not condition((await self.hub.storage.terminals(TERMINAL_ID))[0]):
                await asyncio.sleep(POLL_S)
        try:
            self.call(asyncio.wait_for(until(), timeout_s), timeout_s + 5)
        except (TimeoutError, asyncio.TimeoutError):
            raise AssertionError("hub: no %s within %d s; row %r" % (what, timeout_s, self.terminal_row())) from None

    def change_config(self, **columns):
        """An operator changes the terminal's configuration: a new config version, pushed at once."""
        version = self.hub.registry.get(TERMINAL_ID).config_version + 1
        self.call(self.hub.storage.set_terminal(TERMINAL_ID, config_version=version, **columns))
        self.call(self.hub.registry.reload_terminal(TERMINAL_ID))
        self.call(self.hub.downlink.config(TERMINAL_ID))
        return version

    def close(self):
        try:
            self.call(self.hub.stop())
        finally:
            self.broker.stop()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


def wallet_card(park_keys, balance_cents=10000, ticket_product=None):
    """A visitor's card issued by the desk, valid for category 1 (rides); with ticket_product, a ticket of it
    with no date limit, as the desk writes one (SPEC.md §3.8)."""
    info = card.CardInfo(CARD_NO, tier=0, flags=0, expiry_day=card.day_of(1795600000) + 3650, perms=0xFFFF)
    virtual = issued_card(park_keys, CARD_UID, info, balance_cents, 1795600000)
    if ticket_product is not None:
        keys = card.CardKeys(park_keys, CARD_UID)
        sold = t.TicketInfo(ticket_product, t.TYPE_DAY, 1, 0, 0, 0, serial=1)
        for block, data in t.sale_blocks(keys, sold, t.ENTRIES_UNLIMITED, 1795600000).items():
            virtual.blocks[block][:] = data
    return virtual


class WholeTerminal:
    """tests/mpy/whole_check.py in a MicroPython process: the terminal as flashed, running main.main()."""

    def __init__(self, park, root, heap=WHOLE_HEAP, profile=(), install=INSTALL_FILES):
        self.root = Path(root) / "device"
        romfs = _lay_out(Path(root), self.root, install)
        (self.root / "data").mkdir()
        (self.root / "ca.der").write_bytes(park.secrets.pki.ca_der())
        (self.root / "terminal.json").write_text(json.dumps({
            "terminal_id": TERMINAL_ID, "broker_host": park.broker.host, "broker_port": park.broker.port,
            "username": "term-%d" % TERMINAL_ID, "ca": "/ca.der", "keepalive_s": 10,
            "retry_delay_ms_max": 2000}))
        keys = park.secrets.park_keys
        # As after a confirmed authorisation (SPEC.md §6.6): the booth's park keys in the key store.
        booth = keys.master_a + keys.master_mac
        secrets = {"terminal_key": park.key, "transport_key": park.secrets.transport_key,
                   "broker_password": park.password.encode(), "park_keys": booth}
        (self.root / "keys").mkdir()
        for name, value in secrets.items():
            (self.root / "keys" / name).write_bytes(value)
        self.chip = ChipServer([wallet_card(keys, ticket_product=park.product)]).__enter__()
        compiled = compiled_firmware()
        env = dict(micropython_env(), MICROPYPATH="%s:%s:.frozen" % (compiled, compiled / "scripts"))
        if romfs is None:
            command = [str(MICROPYTHON), "-X", "heapsize=%s" % heap, "-m", "whole_check"]
        else:
            command = [sys.executable, str(ROMFS_MAPPED), str(romfs), "--kit", str(_kit_image(Path(root))),
                       "-X", "heapsize=%s" % heap, "-c", "import romfs_mount; romfs_mount.run_kit('whole_check')"]
        self.proc = subprocess.Popen([*command, str(self.root), str(self.chip.port), *profile],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env, cwd=str(compiled))
        self.lines = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.lines.append("eof")
            self.changed.notify_all()

    def expect(self, pattern, since=0, timeout_s=WAIT_S):
        """The first output line from index since that matches pattern (a regex); fail at exit or timeout."""
        regex = re.compile(pattern)

        def found():
            for line in self.lines[since:]:
                if regex.match(line) or line == "eof":
                    return line
            return None
        with self.changed:
            line = self.changed.wait_for(found, timeout_s)
        if line is None or not regex.match(line):
            raise AssertionError("terminal: no line matching %r; output:\n%s" % (pattern, "\n".join(self.lines)))
        return line

    def mark(self):
        with self.changed:
            return len(self.lines)

    def command(self, text, answer):
        since = self.mark()
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self.expect(answer, since)

    def heap(self):
        """Heap in use and free after a collection, and the largest free block (bytes)."""
        since = self.mark()
        line = self.command("heap", r"heap ")
        figures = dict(kv.split("=") for kv in line.split()[1:])
        block = self.expect(r".*max free sz: \d+", since)
        # mem_info counts blocks of 32 bytes (four 8-byte words) on the 64-bit unix port: at heapsize=100k a fresh
        # heap has 100,128 bytes free and a largest free block of 3,118 blocks (`micropython -X heapsize=100k -c
        # "import gc, micropython; gc.collect(); print(gc.mem_free()); micropython.mem_info()"`).
        figures["max_free"] = int(re.search(r"max free sz: (\d+)", block).group(1)) * 32
        pools = re.search(r"n_pool=(\d+), n_qstr=(\d+), .*n_total_bytes=(\d+)", self.expect(r"qstr pool: ", since))
        figures["qstr_pools"], figures["qstrs"], figures["qstr_bytes"] = pools.groups()
        return {k: int(v) for k, v in figures.items()}

    def tap(self, outcome=r"screen (APPROVED|REFUSED)"):
        """The visitor holds the card to the reader until the screen says how it went; returns that screen."""
        since = self.mark()
        self.chip.field.add(self.chip.cards[0])
        try:
            return self.expect(outcome, since)
        finally:
            self.chip.field.remove(self.chip.cards[0])

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.chip.__exit__(None, None, None)


def run_whole(park, root, heap=WHOLE_HEAP, profile=(), install=INSTALL_FILES):
    """main.main() at this heap: two taps approved and acked around a blacklist snapshot and a config change.

    Returns the terminal's output lines and its heap after tap and sync, and after the config; raises
    AssertionError when the terminal did not get there (a MemoryError among them)."""
    term = WholeTerminal(park, root, heap, profile, install)
    try:
        term.expect(r"screen ParkCard ride\|Price 2\.50")  # the hub's config, after its blacklist snapshot
        version = park.call(park.hub.storage.blacklist_version())
        park.wait_row(lambda row: row.status_blacklist_version == version, "the snapshot in the status")
        first = term.tap()
        assert first == "screen APPROVED 2.50|Balance 97.50", first
        park.wait(lambda: park.hub.registry.get(TERMINAL_ID).acked_upto >= 1, "the tap's record acked")
        after_tap = term.heap()
        config_version = park.change_config(fixed_price_cents=300)
        term.expect(r"screen ParkCard ride\|Price 3\.00")
        park.wait_row(lambda row: row.status_config_version == config_version, "the new config")
        second = term.tap()
        assert second == "screen APPROVED 3.00|Balance 94.50", second
        park.wait(lambda: park.hub.registry.get(TERMINAL_ID).acked_upto >= 2, "the second record acked")
        after_config = term.heap()
        failures = [line for line in term.lines if "MemoryError" in line or "Traceback" in line]
        assert not failures, "\n".join(term.lines)
        return term.lines, after_tap, after_config
    finally:
        term.close()


def run_whole_gate(park, root, heap=WHOLE_HEAP, profile=(), install=INSTALL_FILES):
    """main.main() of an entry gate at this heap: a ticket passes (relay released), the passage is acked, the
    same card is refused as already inside.

    Returns the terminal's output lines and its heap after the passage is acked; AssertionError when the
    terminal did not get there (a MemoryError among them)."""
    term = WholeTerminal(park, root, heap, profile, install)
    try:
        term.expect(r"screen Entry\|Tap card")       # the hub's config with its gate tail
        since = term.mark()
        first = term.tap(r"screen (Welcome|REFUSED)")
        assert first == "screen Welcome|", first
        term.expect(r"relay 1$", since)
        term.expect(r"relay 0$", since)            # the pulse ends: the turnstile locks again
        park.wait(lambda: park.hub.registry.get(TERMINAL_ID).acked_upto >= 1, "the passage acked")
        after_passage = term.heap()
        again = term.tap(r"screen (Welcome|REFUSED)")
        assert again == "screen REFUSED|Already inside", again
        park.wait(lambda: park.hub.registry.get(TERMINAL_ID).acked_upto >= 2, "the refusal acked")
        failures = [line for line in term.lines if "MemoryError" in line or "Traceback" in line]
        assert not failures, "\n".join(term.lines)
        return term.lines, after_passage
    finally:
        term.close()
