"""Append-only, hash-chained audit log of operator actions: one JSON line per entry.

Every operation an operator performs (cashier, finance, technician, admin) is
appended here by the running hub or by the CLI, often both at once. A line:

    {"action":"card.issue","actor":"alice","details":{"amount_cents":1000,"uid":"04010203"},
     "hash":"<64 hex>","prev":"<64 hex>","seq":1,"time":1782864000}

Guarantees
- `seq` counts 1, 2, 3 ... without gaps, so an entry's seq is its line number.
- `prev` is the previous entry's hash; the first entry's prev is GENESIS (64 zeros).
- `hash` is SHA-256 (hex) over the canonical JSON of the entry without "hash":
  json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True) as UTF-8.
  Lines are written in exactly that form (with "hash" added); a line whose bytes
  are not canonical counts as a hash mismatch, so two readers can never disagree
  about what a line says (duplicate keys, say).
- `time` is UTC epoch seconds (int) from the appending process's clock. It is
  recorded, not checked: clocks step, and two processes' clocks differ.
- `details` hold JSON-safe values only: int, str, bool, None, and lists and
  str-keyed dicts of them; bytes are stored as hex. Floats are refused (money is
  integer cents).
- `append` holds an exclusive fcntl.flock on the file around "read the head, write
  the line, fsync", so concurrent appenders in separate processes make one chain.
  Readers (`verify`, `entries`) take the shared lock only to read the file size and
  then read up to it, so they never see an append half-written.
- `append` never continues a broken chain: an OpLog checks the whole file the
  first time it touches it and again whenever the file changed since it last
  looked (another process appended, or someone edited it). A log that is
  unparseable, tampered with, cut off or replaced raises AuditLogError and
  nothing is written.

Anchor: a hash chain only proves that the lines present agree with one
another; whoever can write the file could cut entries off the end, or append
entries re-chained from a cut, and the chain alone would verify. So the hub
database holds the head (seq, hash) of the log, and every entry is appended by
`OpLog.append_anchored` inside the database write transaction of the change it
records (parkcard.store `WriteTx.audit`), which moves the anchor in the same
commit. `verify(path, anchor)` then names the damage: entries deleted from the
end (TAIL_DELETED), a swapped or rewritten file (SWAPPED), entries written
without the database (NOT_ANCHORED). Within one process an OpLog also refuses a
log that lost or changed the last entry it saw, or was replaced.
"""

import collections
import dataclasses
import datetime
import fcntl
import hashlib
import json
import os
import time
from pathlib import Path

import click

from parkcard.domain.explained import Sentence

GENESIS = "0" * 64
DEFAULT_DB = os.path.join("var", "parkcard.db")
_TYPES = {"seq": int, "time": int, "actor": str, "action": str, "details": dict, "prev": str, "hash": str}


class AuditLogError(Exception):
    """The log cannot be read or its chain is broken; nothing was appended."""

    def __init__(self, message, line=None, reason=None):
        super().__init__(message)
        self.line = line
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    """`entries` counts the entries that verified (all of them when ok); `head` is the last good hash."""

    ok: bool
    entries: int
    head: str
    first_bad: int | None = None
    reason: str | None = None


class _Bad(Exception):
    def __init__(self, line, reason):
        super().__init__(line, reason)
        self.line = line
        self.reason = reason


def log_path_for(db_path):
    """The audit log that belongs to a hub database: <db>.audit.log."""
    return Path(str(db_path) + ".audit.log")


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(entry):
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def _json_safe(value, where):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, "%s[%d]" % (where, i)) for i, v in enumerate(value)]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError("%s: key %r is not a string" % (where, key))
        return {k: _json_safe(v, "%s.%s" % (where, k)) for k, v in value.items()}
    if isinstance(value, float):
        raise TypeError("%s: float %r refused: money is integer cents, times are integer seconds" % (where, value))
    raise TypeError("%s: %s is not JSON-safe (use int, str, bool, None, bytes, list or dict)"
                    % (where, type(value).__name__))


def _check_name(what, value):
    if not isinstance(value, str) or not value or not value.isprintable():
        raise ValueError("%s must be a non-empty printable string, not %r" % (what, value))


def _parse(raw):
    try:
        entry = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(entry, dict) or entry.keys() != _TYPES.keys():
        return None
    for key, kind in _TYPES.items():
        if not isinstance(entry[key], kind) or isinstance(entry[key], bool):
            return None
    return entry


def _walk(f, start, end, seq, head):
    """Check that the lines of f[start:end] continue the chain from (seq, head); yield each entry.

    Raises _Bad at the first line that does not. The order of checks names the
    strongest evidence: the line's own hash, then its link to the previous line,
    then its number.
    """
    f.seek(start)
    pos = start
    while pos < end:
        raw = f.readline(end - pos)
        pos += len(raw)
        line = seq + 1
        if not raw.endswith(b"\n"):
            raise _Bad(line, "truncated last line")
        entry = _parse(raw)
        if entry is None:
            raise _Bad(line, "unparseable line")
        if entry["hash"] != entry_hash(entry) or raw != canonical(entry) + b"\n":
            raise _Bad(line, "hash mismatch")
        if entry["prev"] != head:
            raise _Bad(line, "broken chain")
        if entry["seq"] != line:
            raise _Bad(line, "sequence gap")
        seq, head = line, entry["hash"]
        yield entry


def _locked_size(f):
    """The file's size read under the shared lock: every byte below it belongs to a finished append."""
    fcntl.flock(f, fcntl.LOCK_SH)
    try:
        return os.fstat(f.fileno()).st_size
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)


def _broken(path, bad):
    return AuditLogError("audit log %s is broken at line %d (%s); refusing to continue the chain: "
                         "run `parkcard audit verify --log %s`" % (path, bad.line, bad.reason, path),
                         bad.line, bad.reason)


def _private(path, flags):
    return os.open(path, flags, 0o640)


class OpLog:
    """One audit log file; any number of OpLogs in any number of processes may append to it."""

    _shared = {}

    @classmethod
    def shared(cls, path):
        """The one OpLog of this process for a file: it remembers how far it checked the chain, so a
        command that opens the database several times reads the log once, not once per entry."""
        key = os.path.abspath(path)
        if key not in cls._shared:
            cls._shared[key] = cls(path)
        return cls._shared[key]

    def __init__(self, path):
        self.path = Path(path)
        # ((st_dev, st_ino, size, ctime_ns), seq, hash) of the file as last checked under the lock.
        self._known = None

    def append(self, actor, action, **details):
        """Append one entry, fsync'd before returning; the entry as written."""
        return self._append(None, actor, action, details)

    def _append(self, anchor, actor, action, details):
        _check_name("actor", actor)
        _check_name("action", action)
        safe = _json_safe(details, "details")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b", opener=_private) as f:
            fcntl.flock(f, fcntl.LOCK_EX)          # released when f closes, after the fsync
            seq, head = self._catch_up(f)
            if anchor is not None and (seq, head) != tuple(anchor):
                found = _verify_open(f, os.fstat(f.fileno()).st_size, tuple(anchor))
                raise AuditLogError("audit log %s does not match the database: %s; nothing was done: run "
                                    "`parkcard audit verify`" % (self.path, explain(found, anchor)),
                                    found.first_bad, found.reason)
            entry = {"seq": seq + 1, "time": int(time.time()), "actor": actor, "action": action,
                     "details": safe, "prev": head}
            entry["hash"] = entry_hash(entry)
            fd = f.fileno()
            size = os.fstat(fd).st_size
            data = canonical(entry) + b"\n"
            try:
                while data:
                    data = data[os.write(fd, data):]
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, size)              # no half line left behind (disk full, say)
                raise
            if seq == 0:
                _fsync_dir(self.path.parent)
            st = os.fstat(fd)
            self._known = ((st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns), entry["seq"], entry["hash"])
        return entry

    def append_anchored(self, anchor, actor, action, **details):
        """Append one entry only if the log ends at `anchor` (seq, hash) from the database; the entry.

        The caller holds the database's write lock, so the anchor cannot move
        meanwhile. anchor None (a database that holds none yet) trusts the log
        as it is, once. A log that does not end at the anchor raises
        AuditLogError naming the damage (TAIL_DELETED, SWAPPED, NOT_ANCHORED).
        """
        return self._append(anchor, actor, action, details)

    def head(self):
        """(seq, hash) of the last entry, (0, GENESIS) for an empty log: the anchor to store elsewhere."""
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            if self._known is not None:
                raise AuditLogError("audit log %s was deleted while in use" % self.path) from None
            return 0, GENESIS
        with f:
            fcntl.flock(f, fcntl.LOCK_SH)
            return self._catch_up(f)

    def entries(self):
        """Every entry, oldest first, each checked against the chain; AuditLogError at the first bad line."""
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return
        with f:
            end = _locked_size(f)
            try:
                yield from _walk(f, 0, end, 0, GENESIS)
            except _Bad as bad:
                raise _broken(self.path, bad) from None

    def _catch_up(self, f):
        """(seq, hash) of the last entry. The caller holds a lock.

        Rechecks the whole file unless it is exactly as this OpLog left it (same
        inode, size and ctime, which no one can set back), and then also checks
        that the entry it last saw is still there, unchanged: the in-process anchor.
        The kernel stamps ctime from a coarse clock (a few ms), so a same-size edit
        within one tick of this OpLog's last look passes here; verify() still finds it.
        """
        st = os.fstat(f.fileno())
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns)
        if self._known is not None:
            known_stamp, known_seq, known_hash = self._known
            if stamp == known_stamp:
                return known_seq, known_hash
            if stamp[:2] != known_stamp[:2]:
                raise AuditLogError("audit log %s was replaced while in use (it had %d entries); refusing to "
                                    "start another chain" % (self.path, known_seq))
        seq, head = 0, GENESIS
        try:
            for entry in _walk(f, 0, st.st_size, 0, GENESIS):
                seq, head = entry["seq"], entry["hash"]
                if self._known is not None and seq == known_seq and head != known_hash:
                    raise AuditLogError("audit log %s: entry %d changed while in use" % (self.path, seq), seq,
                                        "anchor mismatch")
        except _Bad as bad:
            raise _broken(self.path, bad) from None
        if self._known is not None and seq < known_seq:
            raise AuditLogError("audit log %s was cut off while in use: %d entries, %d before"
                                % (self.path, seq, known_seq), seq + 1, "anchor mismatch")
        self._known = (stamp, seq, head)
        return seq, head


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Why a log disagrees with the anchor its database holds (stable names, shown by `audit verify`).
TAIL_DELETED = "tail deleted"       # fewer entries than the anchored one: cut at a line boundary
SWAPPED = "file swapped"            # the anchored entry is not there: another or a rewritten file
NOT_ANCHORED = "not anchored"       # entries after the anchored one, written without the database


def verify(path, anchor=None):
    """Check the whole chain; with anchor=(seq, hash) also that the log ends exactly at that entry.

    Raises FileNotFoundError for a missing log and OSError for an unreadable one.
    """
    if anchor is not None:
        anchor_seq, _anchor_hash = anchor
        if not isinstance(anchor_seq, int) or anchor_seq < 0:
            raise ValueError("anchor seq must be an int >= 0, not %r" % (anchor_seq,))
    with open(path, "rb") as f:
        return _verify_open(f, _locked_size(f), anchor)


def _verify_open(f, end, anchor):
    """verify() over an open log whose first `end` bytes are complete appends."""
    seq, head = 0, GENESIS
    try:
        for entry in _walk(f, 0, end, 0, GENESIS):
            if anchor is not None and entry["seq"] == anchor[0] and entry["hash"] != anchor[1]:
                return VerifyResult(False, seq, head, entry["seq"], SWAPPED)
            seq, head = entry["seq"], entry["hash"]
    except _Bad as bad:
        return VerifyResult(False, seq, head, bad.line, bad.reason)
    if anchor is not None and seq < anchor[0]:
        return VerifyResult(False, seq, head, seq + 1, TAIL_DELETED)
    if anchor is not None and seq > anchor[0]:
        return VerifyResult(False, seq, head, anchor[0] + 1, NOT_ANCHORED)
    return VerifyResult(True, seq, head)


def explain(result, anchor=None):
    """One line for a person: what verify() found and, against an anchor, which kind of damage."""
    return str(explanation(result, anchor))


def explanation(result, anchor=None):
    """explain()'s line as a Sentence, so a page can say it in the operator's language."""
    if result.ok:
        if anchor is None:
            return Sentence("audit log OK: %(entries)d entries, head %(head)s", entries=result.entries,
                            head=result.head[:16])
        return Sentence("audit log OK: %(entries)d entries, head %(head)s, matches the database's anchor",
                        entries=result.entries, head=result.head[:16])
    anchored = anchor[0] if anchor else 0
    what = {TAIL_DELETED: Sentence("the log ends at entry %(entries)d but the database anchors entry %(anchored)d: "
                                   "entries were deleted from its end", entries=result.entries, anchored=anchored),
            SWAPPED: Sentence("entry %(entry)d is not the entry the database anchors: the file was swapped or "
                              "rewritten", entry=result.first_bad),
            NOT_ANCHORED: Sentence("entries from %(entry)d on were written without the database (it anchors entry "
                                   "%(anchored)d)", entry=result.first_bad, anchored=anchored)}.get(result.reason)
    if what is None:
        return Sentence("audit log TAMPERED at line %(line)d: %(reason)s", line=result.first_bad, reason=result.reason)
    return Sentence("audit log TAMPERED at line %(line)d: %(reason)s (%(what)s)", line=result.first_bad,
                    reason=result.reason, what=what)


# -- CLI


class _UserError(click.ClickException):
    """A mistake of the person at the keyboard: message, exit 2, no traceback."""

    exit_code = 2


def _log_options(fn):
    fn = click.option("--db", type=click.Path(dir_okay=False), default=None,
                      help="hub database; its log is <db>.audit.log [default: parkcard --db, else %s]"
                      % DEFAULT_DB)(fn)
    return click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None,
                        help="audit log file (instead of --db)")(fn)


def _resolve(log_path, db):
    """(log path, database path or None): --log, else <--db>.audit.log, else `parkcard --db`, else the default.

    With --log alone, the database is the file the log belongs to, if it is there.
    """
    if log_path:
        path = Path(log_path)
        owner = Path(str(path)[:-len(".audit.log")]) if str(path).endswith(".audit.log") else None
        db = db or (owner if owner is not None and owner.is_file() else None)
    else:
        if db is None:
            db = click.get_current_context().find_root().params.get("db") or DEFAULT_DB
        from parkcard.store import is_postgres   # here: the store imports this module
        if is_postgres(db):
            from parkcard.store.postgres.url import split
            return split(db)[1], db     # its log is where the URL says (?audit_log=)
        path = log_path_for(db)
    return path, (Path(db) if db is not None and Path(db).is_file() else None)


def _anchor(db):
    """The anchor the database holds, or None (no database, or one that anchors nothing yet)."""
    if db is None:
        return None
    import asyncio

    from parkcard.store import database_errors, open_store   # here: the store imports this module

    async def read():
        storage = await open_store(db)
        try:
            return await storage.audit_anchor()
        finally:
            await storage.close()
    try:
        return asyncio.run(read())
    except (OSError, *database_errors()) as exc:
        raise _UserError("cannot read the audit anchor from %s: %s" % (db, exc)) from None


def _existing(path):
    if not path.exists():
        raise _UserError("no audit log at %s: nothing logged yet, or pass --log FILE or --db DATABASE" % path)
    return path


def _readable(fn, path):
    try:
        return fn()
    except OSError as exc:
        raise _UserError("cannot read audit log %s: %s" % (path, exc.strerror or exc)) from None


def _row(entry):
    when = datetime.datetime.fromtimestamp(entry["time"], datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "%d  %s  %s  %s  %s" % (entry["seq"], when, entry["actor"], entry["action"],
                                   json.dumps(entry["details"], sort_keys=True, separators=(",", ":")))


def audit_command():
    """The `audit` command group: `verify` and `show`."""

    @click.group("audit")
    def audit():
        """Operator audit log: verify its hash chain, show entries."""

    @audit.command("verify")
    @_log_options
    def verify_cmd(log_path, db):
        """Check every entry's hash, the chain, the numbering and the database's anchor; exit 1 when tampered with."""
        path, db_path = _resolve(log_path, db)
        anchor = _anchor(db_path)
        if not path.exists() and anchor is not None and anchor[0] > 0:
            click.echo("audit log TAMPERED: %s is missing but the database anchors entry %d" % (path, anchor[0]))
            raise SystemExit(1)
        _existing(path)
        result = _readable(lambda: verify(path, anchor), path)
        click.echo(explain(result, anchor))
        if not result.ok:
            raise SystemExit(1)
        if db_path is None:
            click.echo("note: no database given (--db): the chain is intact, but entries deleted from its end "
                       "cannot be detected without the database's anchor")

    @audit.command("show")
    @_log_options
    @click.option("--last", type=click.IntRange(min=1), default=None, help="only the newest N entries")
    def show_cmd(log_path, db, last):
        """Print entries (seq, UTC time, actor, action, details), oldest first."""
        path = _existing(_resolve(log_path, db)[0])
        shown = collections.deque(maxlen=last)
        log = OpLog(path)

        def read():
            for entry in log.entries():
                shown.append(entry)

        try:
            _readable(read, path)
        except AuditLogError as exc:
            for entry in shown:
                click.echo(_row(entry))
            click.echo("audit log TAMPERED at line %d: %s" % (exc.line, exc.reason), err=True)
            raise SystemExit(1)
        for entry in shown:
            click.echo(_row(entry))

    return audit
