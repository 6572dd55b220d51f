"""What every command group shares: the error a person reads, the database, the operator, tables and times."""

import asyncio
import datetime
import getpass
import os
import sqlite3
import time
from pathlib import Path

import click

from parkcard.hub_lock import HubLockedError
from parkcard.oplog import AuditLogError
from parkcard.security import secure
from parkcard.services.privileges import Actor, ServiceError
from parkcard.store import DatabaseDamaged, StoreError, local_path, store_for
from parkcard.transport import notify


class UserError(click.ClickException):
    """A mistake of the person at the keyboard: message, exit 2, no traceback."""

    exit_code = 2


class Settings:
    """The group's options, handed to every command."""

    def __init__(self, db, park_dir):
        self.db = db
        self.park_dir = park_dir


def run(coro):
    """Run a coroutine; a service's refusal and the errors of the database become UserError (no traceback)."""
    try:
        return asyncio.run(coro)
    except ServiceError as exc:
        raise UserError(str(exc)) from None
    except (DatabaseDamaged, StoreError) as exc:
        raise UserError(str(exc)) from None
    except sqlite3.DatabaseError as exc:
        raise UserError("database error: %s (is --db a ParkCard database?)" % exc) from None
    except HubLockedError as exc:
        raise UserError(str(exc)) from None
    except AuditLogError as exc:    # raised inside the change's transaction: it rolled back
        raise UserError("nothing was changed: %s" % exc) from None


async def with_storage(path, fn, create=False):
    """Open the database at path, run `await fn(storage)`, close it; UserError when there is none (unless create)."""
    file = local_path(path)         # None: a database server, which has no file to look for
    if file is not None and not create and not Path(file).exists():
        raise UserError("no database at %s: pass --db, or create one with `parkcard merchant add`" % path)
    if file is not None and create:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
    storage = await store_for(path).open()
    try:
        return await fn(storage)
    finally:
        await storage.close()


def in_store(obj, fn, create=False):
    """Run `await fn(storage, actor)` on the command's database as the person running it; return its result."""
    actor = CliActor(obj.db)
    return run(with_storage(obj.db, lambda storage: fn(storage, actor), create=create))


def operator_name():
    """Who runs this command, as the audit log names them."""
    try:
        return "cli:%s" % getpass.getuser()
    except (KeyError, OSError):
        return "cli:uid-%d" % os.getuid()


class CliActor(Actor):
    """The person at the keyboard; what the command commits is told to the hub running on the same database."""

    def __init__(self, db):
        super().__init__(operator_name(), self._notify)
        self.db = db
        self.hub_told = False       # a running hub heard of this command's change

    async def _notify(self, news, _terminal_id):
        """One datagram to the running hub, best effort (parkcard.transport.notify)."""
        self.hub_told = notify.send(self.db, *sorted(news)) or self.hub_told
        return self.hub_told


def when(text, name):
    """Epoch seconds from an integer or an ISO date/time (UTC unless it says otherwise)."""
    if text.isdigit():
        return int(text)
    try:
        value = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise UserError("%s %r is neither epoch seconds nor an ISO date like 2026-07-01 or 2026-07-01T12:00"
                        % (name, text)) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return int(value.timestamp())


def table(headers, rows):
    """Print rows under headers in aligned columns."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    line = "  ".join("%-*s" % (w, h) for w, h in zip(widths, headers))
    click.echo(line)
    for row in rows:
        click.echo("  ".join("%-*s" % (w, "" if v is None else v) for w, v in zip(widths, row)))


def utc(ts):
    """Epoch seconds as an ISO UTC time, None as None."""
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def age(ts):
    """How long ago ts was, for a person."""
    if ts is None:
        return "never"
    seconds = int(time.time() - ts)
    return "%ds ago" % seconds if seconds < 120 else "%dmin ago" % (seconds // 60)


def park_dir(obj):
    """Where the park's secrets live: --park-dir, else the database's folder."""
    return Path(obj.park_dir) if obj.park_dir else Path(obj.db).parent


def load_park(directory):
    """The park's secrets in directory (None when not initialised); UserError when they are unreadable."""
    try:
        return secure.load_park(directory)
    except secure.SecureParkError as exc:
        raise UserError(str(exc)) from None
