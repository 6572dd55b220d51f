"""What every command group shares: the error a person reads, the database, the operator, tables and times."""

import asyncio
import datetime
import getpass
import os
import time
from pathlib import Path

import click

from parkcard.hub_lock import HubLockedError
from parkcard.money import AmountError, format_cents, parse_amount
from parkcard.oplog import AuditLogError
from parkcard.security import secure
from parkcard.services import operators
from parkcard.services.privileges import Actor, ServiceError
from parkcard.store import DatabaseDamaged, StoreError, StoreUnavailable, database_errors, db_dir, local_path, store_for
from parkcard.transport import notify


class UserError(click.ClickException):
    """A mistake of the person at the keyboard: message, exit 2, no traceback."""

    exit_code = 2


class Settings:
    """The group's options, handed to every command."""

    def __init__(self, db, park_dir, operator=None):
        self.db = db
        self.park_dir = park_dir
        self.operator = operator        # the login name commands run as (--operator), None: the local admin


def run(coro):
    """Run a coroutine; a service's refusal and the errors of the database become UserError (no traceback)."""
    try:
        return asyncio.run(coro)
    except ServiceError as exc:
        raise UserError(str(exc)) from None
    except (DatabaseDamaged, StoreError, StoreUnavailable) as exc:
        raise UserError(str(exc)) from None
    except database_errors() as exc:
        raise UserError("database error: %s (is --db a ParkCard database?)" % exc) from None
    except HubLockedError as exc:
        raise UserError(str(exc)) from None
    except AuditLogError as exc:    # raised inside the change's transaction: it rolled back
        raise UserError("nothing was changed: %s" % exc) from None


async def with_storage(path, fn, create=False):
    """Open the database at path, run `await fn(storage)`, close it; UserError when there is none (unless create)."""
    file = local_path(path)         # None: a database server, which has no file to look for
    if not create:
        must_exist(path)
    elif file is not None:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
    storage = await store_for(path).open()
    try:
        return await fn(storage)
    finally:
        await storage.close()


def must_exist(path):
    """UserError when path names a database file that is not there (a database server is not looked for)."""
    file = local_path(path)
    if file is not None and not Path(file).exists():
        raise UserError("no database at %s: pass --db, or create one with `parkcard merchant add`" % path)


def in_store(obj, fn, create=False, notice=None):
    """Run `await fn(storage, actor)` on the command's database as the person running it; return its result."""
    notice = notice or HubNotice(obj.db)

    async def as_actor(storage):
        return await fn(storage, await acting(obj, storage, notice))
    return run(with_storage(obj.db, as_actor, create=create))


def options(*decorators):
    """One decorator of several click options, applied as if written above the command in the order given."""
    def apply(fn):
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn
    return apply


def in_park_currency(obj, fn, create=False, notice=None):
    """in_store for `await fn(storage, actor, currency)`, the park's currency read first; return (result, currency)."""
    async def with_currency(storage, actor):
        currency = await storage.park_currency()
        return await fn(storage, actor, currency), currency
    return in_store(obj, with_currency, create=create, notice=notice)


async def acting(obj, storage, notice):
    """The command's Actor: the operator of --operator once the password is checked, else the local admin."""
    if obj.operator is None:
        return Actor(operator_name(), notice)
    return await operators.authenticate(storage, obj.operator, operator_password(obj.operator), tell=notice)


def operator_password(username):
    """The --operator's password: $PARKCARD_PASSWORD, else asked for at the terminal (not echoed)."""
    password = os.environ.get("PARKCARD_PASSWORD")
    if password is None:
        password = click.prompt("password of %s" % username, hide_input=True, err=True)
    return password


def operator_name():
    """Who runs this command, as the audit log names them."""
    try:
        return "cli:%s" % getpass.getuser()
    except (KeyError, OSError):
        return "cli:uid-%d" % os.getuid()


class HubNotice:
    """An Actor's `tell`: what a command commits is told to the hub running on the same database."""

    def __init__(self, db):
        self.db = db
        self.hub_told = False       # a running hub heard of this command's change

    async def __call__(self, news, _terminal_id):
        """One datagram to the running hub, best effort (parkcard.transport.notify)."""
        self.hub_told = notify.send(self.db, *sorted(news)) or self.hub_told
        return self.hub_told


def amount_cents(text, currency, what, most_cents=None):
    """Cents of an amount a person typed in the park's currency; UserError naming `what` otherwise (or past
    most_cents, what a card can hold)."""
    try:
        cents = parse_amount(text, currency)
    except AmountError as exc:
        raise UserError("%s: %s" % (what, exc)) from None
    if most_cents is not None and cents > most_cents:
        raise UserError("%s %s: at most %s, what a card can hold" % (what, text, format_cents(most_cents, currency)))
    return cents


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
    """Where the park's secrets live: --park-dir, else the database's folder (var/ for a database server)."""
    return Path(obj.park_dir) if obj.park_dir else db_dir(obj.db)


def load_park(directory):
    """The park's secrets in directory (None when not initialised); UserError when they are unreadable."""
    try:
        return secure.load_park(directory)
    except secure.SecureParkError as exc:
        raise UserError(str(exc)) from None
