"""Operator audit log: exact entry format, every kind of tampering, concurrent appenders, the `audit` CLI."""

import asyncio
import hashlib
import json
import subprocess
import sys
import time
import types

import click
import pytest
from click.testing import CliRunner

from parkcard import oplog as oplog_module
from parkcard.oplog import GENESIS, AuditLogError, OpLog, audit_command, log_path_for, verify
from parkcard.store import audited, open_store


def _hash(entry):
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _line(entry):
    return json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"


def _forge(seq, prev, **details):
    """A well-formed entry with its own hash recomputed, as a forger with write access would make."""
    entry = {"seq": seq, "time": 1782864000, "actor": "mallory", "action": "card.refund",
             "details": details, "prev": prev}
    entry["hash"] = _hash(entry)
    return entry


@pytest.fixture
def log(tmp_path):
    """A log of five entries; the file's lines are in log.lines, the entries in log.written."""
    oplog = OpLog(tmp_path / "var" / "parkcard.db.audit.log")
    oplog.written = [oplog.append("alice", "card.topup", uid=b"\x04\x01\x02\x03", amount_cents=1000 * i)
                     for i in range(1, 6)]
    return oplog


def _lines(oplog):
    return oplog.path.read_text().splitlines(keepends=True)


def _rewrite(oplog, lines):
    oplog.path.write_text("".join(lines))


def test_round_trip_exact_format(tmp_path, monkeypatch):
    path = tmp_path / "new" / "dir" / "audit.log"
    oplog = OpLog(path)
    assert not path.exists()                       # created on first append, directory too
    assert oplog.head() == (0, GENESIS)
    # The appender's clock, pinned: a fraction of a second is dropped, not rounded up.
    monkeypatch.setattr(oplog_module, "time", types.SimpleNamespace(time=lambda: 1782864000.9))
    first = oplog.append("alice", "card.issue", uid=b"\x04\xaa", amount_cents=500, note=None, tags=["vip", 2])
    second = oplog.append("bob", "merchant.add", merchant_id=7, name="Ice cream")

    assert first["seq"] == 1 and first["prev"] == GENESIS
    assert first["details"] == {"uid": "04aa", "amount_cents": 500, "note": None, "tags": ["vip", 2]}
    assert type(first["time"]) is int and first["time"] == 1782864000 and second["time"] == 1782864000
    assert first["hash"] == _hash(first)
    assert second["seq"] == 2 and second["prev"] == first["hash"] and second["hash"] == _hash(second)
    assert path.read_text() == _line(first) + _line(second)
    assert list(oplog.entries()) == [first, second]
    assert list(OpLog(path).entries()) == [first, second]
    assert oplog.head() == (2, second["hash"])

    result = verify(path)
    assert (result.ok, result.entries, result.head, result.first_bad, result.reason) == \
        (True, 2, second["hash"], None, None)


def test_empty_file_verifies_and_missing_file_is_an_error(tmp_path):
    (tmp_path / "empty.log").write_bytes(b"")
    assert verify(tmp_path / "empty.log").ok
    assert list(OpLog(tmp_path / "none.log").entries()) == []
    with pytest.raises(FileNotFoundError):
        verify(tmp_path / "none.log")


@pytest.mark.parametrize("details, message", [
    ({"amount": 1.5}, "float"),
    ({"when": object()}, "not JSON-safe"),
    ({"nested": {1: "x"}}, "not a string"),
    ({"deep": [{"x": 0.1}]}, r"details\.deep\[0\]\.x"),
])
def test_unsafe_details_are_refused_and_nothing_is_written(tmp_path, details, message):
    oplog = OpLog(tmp_path / "audit.log")
    with pytest.raises(TypeError, match=message):
        oplog.append("alice", "card.topup", **details)
    assert not oplog.path.exists()


@pytest.mark.parametrize("actor, action", [("", "x"), ("alice", ""), ("al\nice", "x"), (7, "x")])
def test_actor_and_action_must_be_printable_strings(tmp_path, actor, action):
    with pytest.raises(ValueError):
        OpLog(tmp_path / "audit.log").append(actor, action)


def _change_detail(oplog, lines):
    lines[1] = lines[1].replace('"amount_cents":2000', '"amount_cents":9000')
    return 2, "hash mismatch"


def _change_and_rehash(oplog, lines):
    entry = json.loads(lines[1])
    entry["details"]["amount_cents"] = 9000
    entry["hash"] = _hash(entry)
    lines[1] = _line(entry)
    return 3, "broken chain"                       # its own hash is fine; line 3 no longer links to it


def _delete_middle(oplog, lines):
    del lines[2]
    return 3, "broken chain"


def _reorder_pair(oplog, lines):
    lines[1], lines[2] = lines[2], lines[1]
    return 2, "broken chain"


def _insert_forged(oplog, lines):
    lines.insert(2, _line(_forge(3, oplog.written[1]["hash"], amount_cents=-5000)))
    return 4, "broken chain"                       # the forged line itself verifies; the next one breaks


def _rechain_with_gap(oplog, lines):
    prev = oplog.written[1]["hash"]
    del lines[2:]
    for seq in (4, 5):                             # a forger who rebuilt the chain but skipped number 3
        entry = _forge(seq, prev)
        lines.append(_line(entry))
        prev = entry["hash"]
    return 3, "sequence gap"


def _truncate_last(oplog, lines):
    lines[-1] = lines[-1][:40]
    return 5, "truncated last line"


def _garbage_line(oplog, lines):
    lines[3] = "{not json\n"
    return 4, "unparseable line"


def _missing_field(oplog, lines):
    entry = json.loads(lines[0])
    del entry["time"]
    lines[0] = _line(entry)
    return 1, "unparseable line"


def _non_canonical(oplog, lines):
    lines[1] = json.dumps(json.loads(lines[1]), sort_keys=True) + "\n"   # same content, other bytes
    return 2, "hash mismatch"


def _duplicate_key(oplog, lines):
    # A reader keeping the first "details" sees -1; json.loads keeps the last, whose hash is right.
    lines[1] = lines[1].replace('{"action"', '{"details":{"amount_cents":-1},"action"', 1)
    return 2, "hash mismatch"


TAMPERING = [_change_detail, _change_and_rehash, _delete_middle, _reorder_pair, _insert_forged,
             _rechain_with_gap, _truncate_last, _garbage_line, _missing_field, _non_canonical, _duplicate_key]


@pytest.mark.parametrize("tamper", TAMPERING, ids=lambda fn: fn.__name__.strip("_"))
def test_tampering_is_detected_at_its_line(log, tamper):
    lines = _lines(log)
    line, reason = tamper(log, lines)
    _rewrite(log, lines)

    result = verify(log.path)
    assert (result.ok, result.first_bad, result.reason, result.entries) == (False, line, reason, line - 1)


@pytest.mark.parametrize("tamper", TAMPERING, ids=lambda fn: fn.__name__.strip("_"))
def test_append_refuses_to_continue_a_tampered_log(log, tamper):
    lines = _lines(log)
    line, reason = tamper(log, lines)
    _rewrite(log, lines)
    before = log.path.read_bytes()

    for oplog in (OpLog(log.path), log):          # a fresh process, and one that has appended before
        with pytest.raises(AuditLogError, match="line %d \\(%s\\)" % (line, reason)):
            oplog.append("alice", "card.topup", amount_cents=1)
    with pytest.raises(AuditLogError):
        list(OpLog(log.path).entries())
    assert log.path.read_bytes() == before


def test_cut_and_rechained_tail_needs_the_anchor(log):
    """The documented limitation: only an anchor stored elsewhere catches a re-chained cut."""
    anchor = log.head()
    assert anchor == (5, log.written[-1]["hash"])
    _rewrite(log, _lines(log)[:3])
    assert verify(log.path).ok and verify(log.path).entries == 3
    cut = verify(log.path, anchor=anchor)
    assert (cut.ok, cut.first_bad, cut.reason) == (False, 4, oplog_module.TAIL_DELETED)

    forger = OpLog(log.path)                       # a new process knows no better and re-chains
    forger.append("mallory", "card.refund", amount_cents=100)
    forger.append("mallory", "card.refund", amount_cents=100)
    assert verify(log.path).ok
    result = verify(log.path, anchor=anchor)
    assert (result.ok, result.first_bad, result.reason) == (False, 5, oplog_module.SWAPPED)
    assert verify(log.path, anchor=forger.head()).ok


def test_a_log_cut_or_replaced_under_a_running_appender_is_refused(log):
    """Each OpLog anchors the last entry it saw, so a running hub notices what verify() alone cannot."""
    other = OpLog(log.path)
    other.append("bob", "terminal.add", terminal_id=5)           # another process's append is fine
    assert log.append("alice", "card.topup", amount_cents=1)["seq"] == 7

    _rewrite(log, _lines(log)[:6])                               # cut cleanly at a line boundary
    with pytest.raises(AuditLogError, match="cut off"):
        log.append("alice", "card.topup", amount_cents=1)
    forged = OpLog(log.path).append("mallory", "card.refund", amount_cents=1)   # re-chained: verifies alone
    assert forged["seq"] == 7 and verify(log.path).ok
    with pytest.raises(AuditLogError, match="entry 7 changed"):
        log.append("alice", "card.topup", amount_cents=1)

    log.path.unlink()
    with pytest.raises(AuditLogError, match="deleted"):
        other.head()
    with pytest.raises(AuditLogError, match="replaced"):
        other.append("bob", "terminal.add", terminal_id=6)


APPENDER = """
import os, sys, time
from parkcard.oplog import OpLog
path, actor, ready, go = sys.argv[1:]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
log = OpLog(path)
for i in range(200):
    log.append(actor, "card.topup", n=i, amount_cents=100)
"""


def test_two_processes_appending_make_one_chain(tmp_path):
    path, go = tmp_path / "audit.log", tmp_path / "go"
    ready = {actor: tmp_path / ("ready-" + actor) for actor in ("cli", "hub")}
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(path), actor, str(ready[actor]), str(go)],
                              stderr=subprocess.PIPE) for actor in ("cli", "hub")]
    try:
        deadline = time.monotonic() + 60               # both started and waiting: they append at the same time
        while not all(r.exists() for r in ready.values()):
            assert all(p.poll() is None for p in procs), "an appender exited before it was ready"
            assert time.monotonic() < deadline, "appenders never became ready"
            time.sleep(0.005)                          # polling interval of a bounded wait
    except BaseException:
        for proc in procs:                             # no child left spinning on a failed wait
            proc.kill()
            proc.wait()
        raise
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()

    result = verify(path)
    assert (result.ok, result.entries) == (True, 400)
    entries = list(OpLog(path).entries())
    assert [e["seq"] for e in entries] == list(range(1, 401))
    for actor in ("cli", "hub"):
        assert [e["details"]["n"] for e in entries if e["actor"] == actor] == list(range(200))


# -- CLI


def _run(*args):
    return CliRunner().invoke(audit_command(), list(args))


def test_cli_verify_ok(log):
    result = _run("verify", "--log", str(log.path))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "audit log OK: 5 entries, head %s" % log.written[-1]["hash"][:16],
        "note: no database given (--db): the chain is intact, but entries deleted from its end cannot be "
        "detected without the database's anchor"]


def test_cli_verify_tampered_names_the_line(log):
    lines = _lines(log)
    del lines[2]
    _rewrite(log, lines)
    result = _run("verify", "--log", str(log.path))
    assert result.exit_code == 1
    assert result.output == "audit log TAMPERED at line 3: broken chain\n"


def test_cli_log_path_from_db(log, tmp_path):
    db = tmp_path / "var" / "parkcard.db"
    assert log_path_for(db) == log.path
    assert _run("verify", "--db", str(db)).exit_code == 0

    @click.group()
    @click.option("--db", default="var/parkcard.db")
    def parkcard(db):
        """Stands in for the `parkcard` CLI, which has this --db option."""

    parkcard.add_command(audit_command())
    result = CliRunner().invoke(parkcard, ["--db", str(db), "audit", "verify"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("audit log OK: 5 entries")


@pytest.mark.parametrize("command", ["verify", "show"])
def test_cli_missing_log_is_a_clear_error(tmp_path, command):
    result = _run(command, "--log", str(tmp_path / "nope.log"))
    assert result.exit_code == 2
    assert "no audit log at %s" % (tmp_path / "nope.log") in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)

    result = _run(command, "--db", str(tmp_path / "nope.db"))
    assert result.exit_code == 2 and "nope.db.audit.log" in result.output


def test_cli_unreadable_log_is_a_clear_error(tmp_path):
    (tmp_path / "dir.log").mkdir()
    result = _run("verify", "--log", str(tmp_path / "dir.log"))
    assert result.exit_code == 2
    assert "is a directory" in result.output and "Traceback" not in result.output
    (tmp_path / "parkcard.db.audit.log").mkdir()                 # derived from --db: not checked by click
    result = _run("verify", "--db", str(tmp_path / "parkcard.db"))
    assert result.exit_code == 2
    assert "cannot read audit log" in result.output and "Traceback" not in result.output


def test_cli_show(log):
    result = _run("show", "--log", str(log.path), "--last", "2")
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()
    assert len(rows) == 2
    assert rows[0].split("  ")[0] == "4" and rows[1].split("  ")[0] == "5"
    assert rows[1].endswith('{"amount_cents":5000,"uid":"04010203"}')
    assert rows[1].split("  ")[2:4] == ["alice", "card.topup"]

    assert len(_run("show", "--log", str(log.path)).output.splitlines()) == 5


def test_cli_show_tampered(log):
    lines = _lines(log)
    lines[3] = lines[3].replace("alice", "alicf")
    _rewrite(log, lines)
    result = _run("show", "--log", str(log.path))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "audit log TAMPERED at line 4: hash mismatch"
    assert len(result.output.splitlines()) == 4     # the three good entries, then the finding


# -- the anchor in the hub database (parkcard.store: appended in the change's transaction)


def _anchored_park(tmp_path, n=4):
    """A database whose audit log has n entries written through storage, as the CLI and hub write them."""
    db = tmp_path / "hub.db"

    async def fill():
        storage = await open_store(db)
        try:
            for i in range(n):
                await storage.audit("alice", "merchant.add", merchant_id=i)
            return await storage.audit_anchor()
        finally:
            await storage.close()
    anchor = asyncio.run(fill())
    return db, log_path_for(db), anchor


def test_storage_anchors_every_entry_in_its_transaction(tmp_path):
    db, path, anchor = _anchored_park(tmp_path)
    assert anchor == OpLog(path).head() and anchor[0] == 4
    result = _run("verify", "--db", str(db))
    assert (result.exit_code, result.output) == (0, "audit log OK: 4 entries, head %s, matches the database's "
                                                    "anchor\n" % anchor[1][:16])


def test_entry_staged_in_a_failed_transaction_is_not_written(tmp_path):
    db, path, _anchor = _anchored_park(tmp_path, 1)

    async def change_that_fails():
        storage = await open_store(db)
        try:
            def run(tx):
                tx.audit("alice", "blacklist.add", card_no=1)
                raise RuntimeError("the change failed")
            with pytest.raises(RuntimeError):
                await storage.write(run)
            return await storage.audit_anchor()
        finally:
            await storage.close()
    anchor = asyncio.run(change_that_fails())
    assert anchor[0] == 1 and verify(path, anchor).ok and len(path.read_text().splitlines()) == 1


@pytest.mark.parametrize("damage, reason, words", [
    (lambda path, lines: path.write_text("".join(lines[:2])), "tail deleted",
     "the log ends at entry 2 but the database anchors entry 4"),
    (lambda path, lines: path.write_text("".join(lines)[:-7]), "truncated last line", None),
    (lambda path, lines: path.write_text(""), "tail deleted", "ends at entry 0"),
])
def test_verify_names_a_cut_log(tmp_path, damage, reason, words):
    db, path, _anchor = _anchored_park(tmp_path)
    damage(path, path.read_text().splitlines(keepends=True))
    result = _run("verify", "--db", str(db))
    assert result.exit_code == 1 and "TAMPERED" in result.output and reason in result.output, result.output
    assert words is None or words in result.output


def test_verify_names_a_swapped_file_and_an_extended_one(tmp_path):
    db, path, _anchor = _anchored_park(tmp_path)
    other = tmp_path / "other.log"
    forger = OpLog(other)
    for i in range(4):
        forger.append("mallory", "merchant.add", merchant_id=100 + i)     # a chain of its own, same length
    original = path.read_bytes()
    path.write_bytes(other.read_bytes())
    result = _run("verify", "--db", str(db))
    assert result.exit_code == 1 and "line 4: file swapped" in result.output, result.output

    path.write_bytes(original)
    OpLog(path).append("mallory", "blacklist.remove", card_no=7)       # past the database
    result = _run("verify", "--db", str(db))
    assert result.exit_code == 1 and "line 5: not anchored" in result.output, result.output
    result = _run("verify", "--log", str(path))                          # the database is found beside it
    assert result.exit_code == 1 and "not anchored" in result.output


def test_verify_reports_a_deleted_log(tmp_path):
    db, path, _anchor = _anchored_park(tmp_path)
    path.unlink()
    result = _run("verify", "--db", str(db))
    assert result.exit_code == 1 and "missing but the database anchors entry 4" in result.output


def test_no_change_is_made_on_a_damaged_log(tmp_path):
    """A change and its audit entry commit together: with a log cut behind the hub's back, neither happens."""
    db, path, _anchor = _anchored_park(tmp_path)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))

    async def change():
        storage = await open_store(db)
        try:
            with pytest.raises(AuditLogError, match="cut off while in use|entries were deleted from its end"):
                await storage.add_merchant(9, "x", 0, audit=audited("alice", "merchant.add", merchant_id=9))
            return [m.id for m in await storage.merchants()]
        finally:
            await storage.close()
    assert 9 not in asyncio.run(change())
    assert len(path.read_text().splitlines()) == 3


def test_an_operator_change_and_its_audit_entry_commit_together(tmp_path):
    """A change the log cannot record is not made: once the card was blacklisted and only the entry lost."""
    from parkcard.cli import main as parkcard

    db = tmp_path / "hub.db"

    def cli(*args):
        return CliRunner().invoke(parkcard, ["--db", str(db), *[str(a) for a in args]])

    assert cli("merchant", "add", "--id", 2, "--name", "Ice", "--commission-bps", 0).exit_code == 0
    assert cli("blacklist", "add", 4242, "--reason", "lost", "--force").exit_code == 0
    entries = [e["action"] for e in OpLog(log_path_for(db)).entries()]
    assert entries == ["merchant.add", "blacklist.add"]
    path = log_path_for(db)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:1]))      # the last entry cut away
    result = cli("blacklist", "add", 4343, "--reason", "stolen", "--force")
    assert result.exit_code == 2 and "nothing was changed" in result.output and "Traceback" not in result.output
    listed = cli("blacklist")
    assert "4242" in listed.output and "4343" not in listed.output
    assert len(path.read_text().splitlines()) == 1
