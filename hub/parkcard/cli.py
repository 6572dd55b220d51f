"""`parkcard` command line: park secrets, fleet, ledger check, settlement, registry, running the hub.

User mistakes get one clear line saying what went wrong and what to do, and
exit status 2; `ledger check` exits 1 when it finds a discrepancy, and `up`
exits 1 when the hub stopped because it could not serve (a supervisor restarts it).

The CLI works on the database, not on a running hub. After each commit it
tells the running hub what changed (parkcard.notify: one datagram, best
effort), and the hub acts at once: it pushes new blacklist versions to every
online terminal, loads new terminals, sends queued lock and de-authorise
commands and starts queued admin card issues. Its registry poll
(parkcard.service.REGISTRY_POLL_S) picks up a change whose notice was lost.
Admin card revocations and terminal locks are read from the database at
every T_AUTH.
"""

import asyncio
import datetime
import getpass
import json
import os
import secrets
import sqlite3
import time
from pathlib import Path

import click

from protocol import frames, topics
from protocol import record as R

from parkcard import audit, broker_auth, fleet, notify, secure, settlement
from parkcard.bounds import (CARD_NO, COMMISSION_BPS, FIXED_PRICE_CENTS, MERCHANT_ID, PARK_ID, PORT, TERMINAL_ID,
                             BoundParam, NameParam)
from parkcard.hub_lock import HubLockedError
from parkcard.money import CurrencyError, currency_code, format_cents
from parkcard.oplog import AuditLogError
from parkcard.pki import PKIError, check_hostnames
from parkcard.storage import DatabaseDamaged, NotIssued, audited, version_detail
from parkcard.store import hub_lock_for, is_postgres_url, open_store
from parkcard.store.postgres import DATABASE_ERRORS, PostgresUnavailable

ROLES = {name: role for role, name in frames.ROLE_NAMES.items()}
CARD_REQUEST_POLL_S = 0.5       # how often `admin-card issue` looks for the running hub's answer


class UserError(click.ClickException):
    """A mistake of the person at the keyboard: message, exit 2, no traceback."""

    exit_code = 2


class HubStopped(click.ClickException):
    """`up`: the hub could not serve and stopped, everything released; exit 1 so a supervisor restarts it."""

    exit_code = 1   # parkcard.service.EXIT_HUB_FAILED


def _run(coro):
    """Run a coroutine; the errors of opening or using the database become UserError (no traceback)."""
    try:
        return asyncio.run(coro)
    except DatabaseDamaged as exc:
        raise UserError(str(exc)) from None
    except (sqlite3.DatabaseError, *DATABASE_ERRORS) as exc:
        raise UserError("database error: %s (is --db a ParkCard database?)" % exc) from None
    except PostgresUnavailable as exc:
        raise UserError(str(exc)) from None
    except HubLockedError as exc:
        raise UserError(str(exc)) from None
    except AuditLogError as exc:    # raised inside the change's transaction: it rolled back
        raise UserError("nothing was changed: %s" % exc) from None


async def _with_storage(path, fn, create=False):
    if not is_postgres_url(path):   # a server's database exists or is refused by open_store
        if not create and not Path(path).exists():
            raise UserError("no database at %s: pass --db, or create one with `parkcard merchant add`" % path)
        if create:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    storage = await open_store(path)
    try:
        return await fn(storage)
    finally:
        await storage.close()


def _when(text, name):
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


def _table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    line = "  ".join("%-*s" % (w, h) for w, h in zip(widths, headers))
    click.echo(line)
    for row in rows:
        click.echo("  ".join("%-*s" % (w, "" if v is None else v) for w, v in zip(widths, row)))


def _utc(ts):
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _actor():
    """Who runs this command, as the audit log names them."""
    try:
        return "cli:%s" % getpass.getuser()
    except (KeyError, OSError):
        return "cli:uid-%d" % os.getuid()


def _park_dir(ctx_obj):
    return Path(ctx_obj.park_dir) if ctx_obj.park_dir else _db_dir(ctx_obj.db)


def _db_dir(db):
    """The folder of the database's files; for a PostgreSQL database, var/ (its audit log's default home)."""
    return Path("var") if is_postgres_url(db) else Path(db).parent


def _load_park(directory):
    try:
        return secure.load_park(directory)
    except secure.SecureParkError as exc:
        raise UserError(str(exc)) from None


class Settings:
    """The group's options, handed to every command."""

    def __init__(self, db, park_dir):
        self.db = db
        self.park_dir = park_dir


def _age(ts):
    if ts is None:
        return "never"
    seconds = int(time.time() - ts)
    return "%ds ago" % seconds if seconds < 120 else "%dmin ago" % (seconds // 60)


@click.group()
@click.option("--db", default=os.path.join("var", "parkcard.db"), show_default=True,
              help="hub database: a SQLite file, or postgresql://user@host:port/database")
@click.option("--park-dir", type=click.Path(file_okay=False), default=None,
              help="where `parkcard init` keeps the park's secrets and PKI [default: the database's folder]")
@click.pass_context
def main(ctx, db, park_dir):
    """ParkCard hub: terminals, ledger, settlement."""
    if os.path.isdir(db):
        # Checked once here: every command would otherwise fail its own way (and init would write
        # the park's secrets into the folder above it).
        raise UserError("--db %s is a folder: give the database file, e.g. --db %s"
                        % (db, os.path.join(db, "parkcard.db")))
    ctx.obj = Settings(db, park_dir)


@main.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="folder of the park's secrets and PKI [default: --park-dir, else the database's folder]")
@click.option("--hostname", "hostnames", multiple=True,
              help="extra DNS name or IP address terminals use to reach the broker (repeatable)")
@click.pass_obj
def init(obj, directory, hostnames):
    """Create the park's PKI, card master keys, transport key and hub broker password (only what is missing)."""
    directory = Path(directory) if directory else _park_dir(obj)
    try:
        park, created = secure.init_park(directory, ("localhost", *hostnames))
    except (secure.SecureParkError, PKIError, OSError) as exc:
        raise UserError("cannot initialise the park in %s: %s" % (directory, exc)) from None
    if not created:
        click.echo("park already initialised in %s: nothing changed" % directory)
        return
    for name in created:
        click.echo("created %s" % (directory / name))
    click.echo("park secrets (card master keys, transport key, hub broker password) in %s, mode 0600: "
               "back it up with the database, keep it off terminals" % park.path)
    _oplog(obj.db, _actor(), "park.init", created=created)


@main.command()
@click.option("--watch", is_flag=True, help="redraw the table every second until Ctrl-C")
@click.pass_obj
def terminals(obj, watch):
    """Fleet table: online state, last seen (any frame), reported versions and health, backlog, lock state."""
    if not watch:
        _fleet_table(_run(_with_storage(obj.db, lambda s: s.terminals())))
        return

    async def redraw(storage):
        while True:
            rows = await storage.terminals()
            click.clear()       # in place on a terminal (nothing when the output is not one)
            _fleet_table(rows)
            await asyncio.sleep(WATCH_INTERVAL_S)

    try:
        _run(_with_storage(obj.db, redraw))
    except KeyboardInterrupt:
        pass    # Ctrl-C is how a watch ends


WATCH_INTERVAL_S = 1.0


def _fleet_table(rows):
    now = time.time()
    _table(("id", "name", "role", "merchant", "online", "last seen", "firmware", "cfg", "bl", "queue",
            "oldest unsynced", "heap", "uptime", "acked seq", "locked", "authorised"),
           [(t["id"], t["name"], frames.ROLE_NAMES.get(t["role"], t["role"]), t["merchant_id"],
             "yes" if fleet.online(t, now) else "no", _age(t["last_seen"]), t["firmware"],
             t["status_config_version"], t["status_blacklist_version"], t["queue_depth"],
             None if t["oldest_unsynced_age_s"] is None else "%ds" % t["oldest_unsynced_age_s"],
             t["free_heap"] or None,    # 0: not measured (a terminal on CPython has no gc.mem_free)
             None if t["uptime_s"] is None else _duration(t["uptime_s"]), t["acked_upto"],
             "yes" if t["locked"] else "no", _authorised(t)) for t in rows])


def _duration(seconds):
    if seconds < 120:
        return "%ds" % seconds
    return "%dmin" % (seconds // 60) if seconds < 7200 else "%dh" % (seconds // 3600)


def _authorised(row):
    """The hub's decision, and the terminal's own report where it differs (e.g. a lock not yet received)."""
    hub = "yes" if row["authorised"] else "no"
    reported = row["status_authorised"]
    if reported is None or bool(reported) == bool(row["authorised"]):
        return hub
    return "%s (terminal: %s)" % (hub, "yes" if reported else "no")


@main.group()
def ledger():
    """Ledger commands."""


@ledger.command("check")
@click.pass_obj
def ledger_check(obj):
    """Re-derive the ledger from the stored records (MACs, postings, card chains); exit 1 on a discrepancy."""
    if not is_postgres_url(obj.db) and not Path(obj.db).exists():
        raise UserError("no database at %s: pass --db, or create one with `parkcard merchant add`" % obj.db)
    report = _run(audit.check_file(obj.db))
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        raise SystemExit(1)


@main.command()
@click.option("--merchant", "merchant_id", type=int, help="merchant id")
@click.option("--all", "all_merchants", is_flag=True, help="every merchant")
@click.option("--from", "start", required=True, help="period start (epoch seconds or ISO date, UTC), included")
@click.option("--to", "end", required=True, help="period end, excluded; not in the future")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="write the settlements to this CSV file")
@click.option("--force", is_flag=True, help="overwrite the --csv file if it exists")
@click.pass_obj
def settle(obj, merchant_id, all_merchants, start, end, csv_path, force):
    """Close a settlement period (final; the same period again changes nothing) and export it.

    A record is paid once: a period overlapping one already closed is refused, and records
    that reach the hub after their period was closed are paid by the merchant's next close
    (shown as late).
    """
    if (merchant_id is None) == (not all_merchants):
        raise UserError("say which merchant: --merchant ID or --all")
    start_s, end_s = _when(start, "--from"), _when(end, "--to")
    if end_s <= start_s:
        raise UserError("--to must be after --from")
    if csv_path and not force and os.path.exists(csv_path):
        raise UserError("%s already exists: pass --force to overwrite it, or another --csv; nothing was closed"
                        % csv_path)

    async def run(storage):
        known = [m[0] for m in await storage.merchants()]
        ids = known if all_merchants else [merchant_id]
        if merchant_id not in known and not all_merchants:
            raise UserError("merchant %d does not exist (see `parkcard merchant add`)" % merchant_id)
        try:
            return await settlement.close_all(storage, ids, start_s, end_s, actor=_actor())
        except settlement.SettlementError as exc:
            raise UserError(str(exc)) from None

    results = _run(_with_storage(obj.db, run))
    click.echo("period %s to %s" % (settlement.iso_utc(start_s), settlement.iso_utc(end_s)))
    _table(("merchant", "name", "sales", "refunds", "commission", "payout", "records", "late", "state"),
           [(r["merchant_id"], r["merchant_name"], format_cents(r["sales_cents"], r["currency"]),
             format_cents(r["refunds_cents"], r["currency"]), format_cents(r["commission_cents"], r["currency"]),
             format_cents(r["payout_cents"], r["currency"]), r["records"], r["late_records"],
             "closed now" if new else "already closed %s" % settlement.iso_utc(r["closed_at"]))
            for r, new in results])
    if any(r["late_records"] for r, _ in results):
        click.echo("late: records of an earlier closed period that reached the hub after it closed, paid here")
    if csv_path:
        try:
            settlement.write_csv(csv_path, [r for r, _ in results], force=force)
        except FileExistsError:
            raise UserError("%s appeared meanwhile: the periods are closed; run `settle` again with another --csv "
                            "or --force to export them" % csv_path) from None
        except OSError as exc:
            raise UserError("cannot write %s: %s; the periods are closed, run `settle` again with another "
                            "--csv to export them" % (csv_path, exc.strerror or exc)) from None
        click.echo("wrote %s" % csv_path)


@main.group()
def park():
    """Park settings."""


@park.command("set")
@click.option("--park", "park_id", type=int, default=1, show_default=True)
@click.option("--currency", required=True, help="ISO 4217 code of the park's money, e.g. CNY, EUR, HKD")
@click.pass_obj
def park_set(obj, park_id, currency):
    """Set the park's currency (before it takes money: amounts are stored without one)."""
    try:
        code = currency_code(currency)
    except CurrencyError as exc:
        raise UserError(str(exc)) from None

    async def run(storage):
        try:
            return await storage.set_park_currency(park_id, code, audit=_audited("park.currency", park_id=park_id,
                                                                                 currency=code))
        except ValueError as exc:
            raise UserError(str(exc)) from None

    if not _run(_with_storage(obj.db, run, create=True)):
        click.echo("park %d already uses %s: nothing changed" % (park_id, code))
        return
    click.echo("park %d: amounts are in %s" % (park_id, code))


@main.group()
def merchant():
    """Merchant registry."""


@merchant.command("add")
@click.option("--id", "merchant_id", type=BoundParam(MERCHANT_ID), required=True)
@click.option("--name", type=NameParam(), required=True)
@click.option("--commission-bps", type=BoundParam(COMMISSION_BPS), required=True, help="commission, basis points")
@click.option("--park", "park_id", type=BoundParam(PARK_ID), default=1, show_default=True)
@click.pass_obj
def merchant_add(obj, merchant_id, name, commission_bps, park_id):
    """Create a merchant (an existing one is changed with `merchant set`, never here)."""
    async def run(storage):
        try:
            return await storage.add_merchant(merchant_id, name, commission_bps, park_id, audit=_audited(
                "merchant.add", merchant_id=merchant_id, name=name, commission_bps=commission_bps, park_id=park_id))
        except ValueError as exc:
            raise UserError("%s: nothing changed; to change it: parkcard merchant set --id %d [--name NAME] "
                            "[--commission-bps N]" % (exc, merchant_id)) from None

    if not _run(_with_storage(obj.db, run, create=True)):
        click.echo("merchant %d %s already exists with commission %d bps: nothing changed"
                   % (merchant_id, name, commission_bps))
        return
    click.echo("merchant %d %s: commission %d bps" % (merchant_id, name, commission_bps))


@merchant.command("set")
@click.option("--id", "merchant_id", type=BoundParam(MERCHANT_ID), required=True)
@click.option("--name", type=NameParam(), default=None, help="new name")
@click.option("--commission-bps", type=BoundParam(COMMISSION_BPS), default=None, help="new commission, basis points")
@click.pass_obj
def merchant_set(obj, merchant_id, name, commission_bps):
    """Change a merchant's name or commission; a running hub applies the new rate within seconds."""
    if name is None and commission_bps is None:
        raise UserError("say what to change: --name NAME and/or --commission-bps N")

    async def run(storage):
        try:
            return await storage.update_merchant(merchant_id, name, commission_bps, audit=_audited(
                "merchant.set", extra=_merchant_change, when=lambda ba: ba[0] != ba[1], merchant_id=merchant_id))
        except ValueError as exc:
            raise UserError("%s (see `parkcard merchant list`; create it with `parkcard merchant add`)"
                            % exc) from None

    before, after = _run(_with_storage(obj.db, run))
    if before == after:
        click.echo("merchant %d is already %s at %d bps: nothing changed" % (merchant_id, *after))
        return
    click.echo("merchant %d: %s, commission %d bps (was %s, %d bps); records ingested from now on use it"
               % (merchant_id, after[0], after[1], before[0], before[1]))


def _merchant_change(before_after):
    """The audit details of a merchant change: the new and the old values."""
    before, after = before_after
    return dict(name=after[0], commission_bps=after[1], was_name=before[0], was_commission_bps=before[1])


@merchant.command("list")
@click.pass_obj
def merchant_list(obj):
    """Every merchant: id, name, commission, park and its terminals."""
    rows = _run(_with_storage(obj.db, lambda s: s.merchant_list()))
    _table(("id", "name", "commission bps", "park", "terminals"),
           [(m, name, bps, park, ", ".join(map(str, tids)) or "none") for m, park, name, bps, tids in rows])


@main.group()
def terminal():
    """Terminal registry."""


@terminal.command("add")
@click.option("--id", "terminal_id", type=BoundParam(TERMINAL_ID), required=True)
@click.option("--merchant", "merchant_id", type=BoundParam(MERCHANT_ID), required=True)
@click.option("--role", type=click.Choice(sorted(ROLES)), required=True)
@click.option("--name", type=NameParam(), required=True)
@click.option("--fixed-price-cents", type=BoundParam(FIXED_PRICE_CENTS), default=0, help="price of a ride")
@click.option("--export", "export_path", type=click.Path(dir_okay=False), help="write the provisioning bundle here")
@click.option("--broker-host", default="localhost", show_default=True,
              help="name the terminal connects to; the broker certificate must carry it (`init --hostname`)")
@click.option("--broker-port", type=BoundParam(PORT), default=secure.SECURE_PORT, show_default=True)
@click.option("--ca-pem", type=click.Path(exists=True, dir_okay=False),
              help="broker CA certificate [default: the park CA made by `parkcard init`]")
@click.option("--wifi-ssid", default="")
@click.option("--wifi-password", default="")
@click.pass_obj
def terminal_add(obj, terminal_id, merchant_id, role, name, fixed_price_cents, export_path, broker_host,
                 broker_port, ca_pem, wifi_ssid, wifi_password):
    """Register a terminal: generate its key and broker password, and optionally export its bundle."""
    try:
        check_hostnames([broker_host])
    except PKIError as exc:
        raise UserError("--broker-host: %s" % exc) from None
    park = _load_park(_park_dir(obj))
    if export_path and park is None:
        raise UserError("a bundle needs the park's transport key and CA: run `parkcard init` first "
                        "(looked in %s)" % _park_dir(obj))
    key = secrets.token_bytes(32)
    password = broker_auth.new_password()
    if export_path:
        # Written before the terminal is registered: a bundle that cannot be
        # written must not leave a terminal whose key nobody holds.
        ca = Path(ca_pem) if ca_pem else park.pki.ca_cert
        bundle = terminal_bundle(terminal_id, key, password, park.transport_key, ca, broker_host, broker_port,
                                 wifi_ssid, wifi_password)
        try:
            fd = os.open(export_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never over another bundle
            with os.fdopen(fd, "w") as fh:
                json.dump(bundle, fh, indent=2)
        except OSError as exc:
            raise UserError("cannot write the bundle to %s: %s; nothing was registered" % (
                export_path, exc.strerror or exc)) from None

    async def run(storage):
        try:
            await storage.add_terminal(terminal_id, merchant_id, ROLES[role], key, name, fixed_price_cents,
                                       broker_password=password, audit=_audited(
                                           "terminal.add", when=lambda _: True, terminal_id=terminal_id,
                                           merchant_id=merchant_id, role=role, name=name))
        except ValueError as exc:
            raise UserError("%s: check `parkcard terminals` and `parkcard merchant add`" % exc) from None

    try:
        _run(_with_storage(obj.db, run))
    except UserError:
        if export_path:
            os.unlink(export_path)  # the key in it belongs to no terminal
        raise
    notify.send(obj.db, notify.TERMINALS)
    click.echo("terminal %d (%s, %s) registered for merchant %d" % (terminal_id, name, role, merchant_id))
    if export_path:
        _oplog(obj.db, _actor(), "terminal.export", terminal_id=terminal_id, path=str(export_path))
        click.echo("provisioning bundle written to %s (it holds the terminal key, broker password and transport "
                   "key: keep it private, delete it after flashing)" % export_path)
        if not wifi_ssid:
            click.echo("note: no --wifi-ssid given: parkcard-flash refuses a bundle without one")


def terminal_bundle(terminal_id, key, password, transport_key, ca_path, broker_host, broker_port, wifi_ssid="",
                    wifi_password=""):
    """The provisioning bundle of one terminal (tools/flash/parkcard_flash/bundle.py reads it)."""
    return {"terminal_id": terminal_id, "terminal_key": key.hex(), "transport_key": transport_key.hex(),
            "username": topics.client_name(terminal_id), "password": password,
            "broker_host": broker_host, "broker_port": broker_port, "ca_pem": Path(ca_path).read_text(),
            "wifi_ssid": wifi_ssid, "wifi_password": wifi_password}


def _terminal_command(obj, terminal_id, action, message, unchanged, **columns):
    command = {"lock": frames.CMD_LOCK, "deauthorise": frames.CMD_DEAUTHORISE}.get(action)

    async def run(storage):
        try:
            return await storage.terminal_command(terminal_id, command, _actor(), audit=_audited(
                "terminal." + action, terminal_id=terminal_id), **columns)
        except ValueError as exc:
            raise UserError("%s (see `parkcard terminals`)" % exc) from None

    if not _run(_with_storage(obj.db, run)):
        click.echo(unchanged % terminal_id)     # nothing happened, so nothing is audited
        return
    notify.send(obj.db, notify.COMMANDS)
    click.echo(message % terminal_id)


@terminal.command("lock")
@click.argument("terminal_id", type=BoundParam(TERMINAL_ID))
@click.pass_obj
def terminal_lock(obj, terminal_id):
    """Lock a terminal: it forgets its card keys and no admin card authorises it until `terminal unlock`."""
    _terminal_command(obj, terminal_id, "lock",
                      "terminal %d locked; the running hub sends it the lock command within seconds "
                      "(a terminal offline gets it when it reconnects)",
                      "terminal %d was already locked: nothing changed", locked=1, authorised=0)


@terminal.command("unlock")
@click.argument("terminal_id", type=BoundParam(TERMINAL_ID))
@click.pass_obj
def terminal_unlock(obj, terminal_id):
    """Let a locked terminal be authorised again (a technician taps an admin card)."""
    _terminal_command(obj, terminal_id, "unlock",
                      "terminal %d unlocked: it serves again once a technician taps an admin card",
                      "terminal %d was not locked: nothing changed", locked=0)


@terminal.command("deauthorise")
@click.argument("terminal_id", type=BoundParam(TERMINAL_ID))
@click.pass_obj
def terminal_deauthorise(obj, terminal_id):
    """De-authorise a terminal: it forgets its card keys until the next admin card tap."""
    _terminal_command(obj, terminal_id, "deauthorise",
                      "terminal %d de-authorised; the running hub sends the command within seconds",
                      "terminal %d was not authorised: nothing changed (`terminal lock` makes it refuse any "
                      "admin card)", authorised=0)


@main.group("admin-card")
def admin_card_group():
    """Admin system cards (issued by the hub at a desk terminal)."""


@admin_card_group.command("list")
@click.pass_obj
def admin_card_list(obj):
    """Every admin card: number, UID, blobs, issuing desk, state (valid only once the desk wrote it)."""
    rows = _run(_with_storage(obj.db, lambda s: s.admin_cards()))
    _table(("card", "uid", "blobs", "desk terminal", "issued", "state", "reason"),
           [(r["card_no"], bytes(r["uid"]).hex(), "booth+desk" if r["desk"] else "booth", r["issued_by"],
             _utc(r["issued_at"]), _admin_card_state(r), r["reason"]) for r in rows])


def _admin_card_state(row):
    """What an operator needs to know: valid, revoked, or why it never became valid."""
    if row["revoked_at"]:
        return "revoked %s" % _utc(row["revoked_at"])
    return {"written": "valid", "pending": "pending (not written yet)", "failed": "failed (not written)",
            "abandoned": "abandoned (cancelled)"}.get(row["state"], row["state"])


@admin_card_group.command("issue")
@click.option("--desk", "desk_terminal_id", type=BoundParam(TERMINAL_ID), required=True,
              help="the desk terminal that writes the card")
@click.option("--uid", "uid_hex", required=True, help="the blank card's UID, 8 or 14 hex digits")
@click.option("--booth-only", is_flag=True, help="booth keys only: the card cannot authorise a desk")
@click.option("--wait", "wait_s", default=90, show_default=True, type=click.IntRange(1, 3600),
              help="seconds to wait for the card to be written")
@click.pass_obj
def admin_card_issue(obj, desk_terminal_id, uid_hex, booth_only, wait_s):
    """Issue an admin system card: the running hub has the desk terminal write it onto the blank card."""
    try:
        uid = bytes.fromhex(uid_hex)
    except ValueError:
        uid = b""
    if len(uid) not in (4, 7):
        raise UserError("--uid must be the blank card's 4- or 7-byte UID in hex (8 or 14 digits)")

    async def run(storage):
        rows = await storage.terminals(desk_terminal_id)
        if not rows or rows[0]["role"] != frames.ROLE_DESK:
            raise UserError("terminal %d is not a registered desk terminal (see `parkcard terminals`)"
                            % desk_terminal_id)
        request_id = await storage.request_admin_card(desk_terminal_id, uid, not booth_only, _actor())
        notify.send(obj.db, notify.CARD_REQUESTS)
        click.echo("present the blank card %s to desk terminal %d; waiting up to %d s for the running hub "
                   "(`parkcard up`)" % (uid.hex(), desk_terminal_id, wait_s))
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            finished_at, card_no, error = await storage.card_request(request_id)
            if finished_at is not None:
                return card_no, error
            await asyncio.sleep(CARD_REQUEST_POLL_S)
        # Nobody waits any more: the hub must not write the card later behind the operator's back.
        if await storage.cancel_card_request(request_id):
            raise UserError("no answer within %d s: the request is cancelled (a card the desk writes anyway is "
                            "abandoned and authorises nothing, see `parkcard admin-card list`); is `parkcard up` "
                            "running and desk terminal %d online? Then run this again"
                            % (wait_s, desk_terminal_id))
        _finished_at, card_no, error = await storage.card_request(request_id)   # it ended meanwhile
        return card_no, error

    card_no, error = _run(_with_storage(obj.db, run))
    if error:
        raise UserError(error)
    click.echo("admin card %d written at desk terminal %d" % (card_no, desk_terminal_id))


@admin_card_group.command("revoke")
@click.argument("card_no", type=BoundParam(CARD_NO))
@click.option("--reason", required=True, help="why (lost, stolen, technician left)")
@click.pass_obj
def admin_card_revoke(obj, card_no, reason):
    """Revoke an admin card: no terminal is authorised with it any more."""
    async def run(storage):
        try:
            return await storage.revoke_admin_card(card_no, reason, audit=_audited(
                "admin_card.revoke", card_no=card_no, reason=reason))
        except ValueError as exc:
            raise UserError("%s (see `parkcard admin-card list`)" % exc) from None

    if _run(_with_storage(obj.db, run)):
        click.echo("admin card %d revoked: it authorises no terminal from now on" % card_no)
    else:
        click.echo("admin card %d was already revoked: nothing changed" % card_no)


ATTEMPTS_SHOWN = 3


@main.group(invoke_without_command=True)
@click.pass_context
def blacklist(ctx):
    """Blacklisted cards with the taps seen since (lock and attempt records); add and remove."""
    if ctx.invoked_subcommand is not None:
        return
    obj = ctx.obj

    async def run(storage):
        counts = await storage.attempt_counts()
        out = []
        for card_no, reason, version in await storage.blacklist_entries():
            last = await storage.attempts(card_no, ATTEMPTS_SHOWN)
            out.append((card_no, version, counts.get(card_no, 0), ", ".join(
                "%s t%d%s" % (_utc(t), tid, " (locked)" if kind == R.KIND_LOCK else "") for t, tid, kind in last),
                reason))
        return out

    _table(("card", "since version", "attempts", "last attempts (time, terminal)", "reason"),
           _run(_with_storage(obj.db, run)))


@blacklist.command("add")
@click.argument("card_no", type=BoundParam(CARD_NO))
@click.option("--reason", required=True, help="why (lost, stolen, fraud)")
@click.option("--force", is_flag=True, help="blacklist a card this park never issued (e.g. one found from another "
                                            "system)")
@click.pass_obj
def blacklist_add(obj, card_no, reason, force):
    """Blacklist a card; the running hub pushes it to every online terminal, which locks the card on tap."""
    async def run(storage):
        try:
            return await storage.blacklist_change(card_no, reason, add=True, issued_only=not force, audit=_audited(
                "blacklist.add", extra=version_detail, card_no=card_no, reason=reason))
        except NotIssued as exc:
            raise UserError("%s: nothing changed; check the number (`parkcard blacklist` lists the listed ones), "
                            "or pass --force to blacklist a card from elsewhere" % exc) from None

    version = _run(_with_storage(obj.db, run))
    if version is None:
        click.echo("card %d is already blacklisted: nothing changed" % card_no)
        return
    told = notify.send(obj.db, notify.BLACKLIST)
    click.echo("card %d blacklisted (version %d); %s" % (card_no, version, _reach(told)))


def _reach(told):
    """What happens next to a blacklist change, by whether a running hub was told."""
    if told:
        return "the running hub pushes it to every online terminal now (offline ones get it when they reconnect)"
    return "no hub is running: terminals get it when `parkcard up` runs and they connect"


# Not range-checked: a number stored out of range by an older hub must be removable. Only a listed
# number can be removed, so nothing new out of range is stored.
@blacklist.command("remove")
@click.argument("card_no", type=int)
@click.option("--reason", default="removed by operator", show_default=True)
@click.pass_obj
def blacklist_remove(obj, card_no, reason):
    """Take a card off the blacklist (a card locked on tap stays locked until the desk unlocks it)."""
    version = _run(_with_storage(obj.db, lambda s: s.blacklist_change(card_no, reason, add=False, audit=_audited(
        "blacklist.remove", extra=version_detail, card_no=card_no, reason=reason))))
    if version is None:
        click.echo("card %d is not on the blacklist: nothing changed" % card_no)
        return
    told = notify.send(obj.db, notify.BLACKLIST)
    click.echo("card %d taken off the blacklist (version %d); %s" % (card_no, version, _reach(told)))


@main.command()
@click.pass_obj
def alarms(obj):
    """Alarms raised by ingest (clones, chain breaks, conflicts)."""
    rows = _run(_with_storage(obj.db, lambda s: s.alarms()))
    _table(("id", "kind", "card", "terminal", "seq", "when", "detail"),
           [(r[0], r[1], r[2], r[3], r[4], _age(r[6]), r[5]) for r in rows])


@main.command()
@click.pass_obj
def quarantine(obj):
    """Frames and records refused by ingest, with their reasons."""
    rows = _run(_with_storage(obj.db, lambda s: s.quarantined()))
    _table(("id", "topic", "terminal", "reason", "bytes", "when", "detail"),
           [(r[0], r[1], r[2], r[3], r[6], _age(r[5]), r[4]) for r in rows])


@main.command()
@click.option("--broker-host", default="127.0.0.1", show_default=True)
@click.option("--broker-port", type=int, default=None,
              help="port [default: %d secure, a free one with --insecure, 1883 with --insecure --no-broker]"
                   % secure.SECURE_PORT)
@click.option("--no-broker", is_flag=True, help="use a broker that is already running")
@click.option("--insecure", is_flag=True, help="plaintext, anonymous broker for development (no `parkcard init`)")
@click.pass_obj
def up(obj, broker_host, broker_port, no_broker, insecure):
    """Run Mosquitto (unless --no-broker) and the hub until Ctrl-C: TLS, passwords and ACL after `parkcard init`."""
    from parkcard.broker import Broker, BrokerError
    from parkcard.broker_auth import BrokerAuthError
    from parkcard.service import Hub, HubFailed, configure_logging, failure_message, serve

    db = obj.db
    park = None if insecure else _load_park(_park_dir(obj))
    if park is None and not insecure:
        raise UserError("the park has no secrets yet: run `parkcard init` first (looked in %s), "
                        "or pass --insecure for a plaintext development broker" % _park_dir(obj))
    configure_logging()
    _db_dir(db).mkdir(parents=True, exist_ok=True)
    # Before the broker: a second `up` on this database must not start one (or take its port).
    lock = hub_lock_for(db)
    try:
        lock.acquire()
    except (HubLockedError, PostgresUnavailable) as exc:
        raise UserError(str(exc)) from None
    broker = None
    try:
        hub_args = {}
        try:
            if park is not None:
                hub_args = secure.hub_kwargs(park)
                terminals = _run(_with_storage(db, lambda s: s.broker_credentials(), create=True))
                if not no_broker:
                    broker = secure.start_secure_broker(_park_dir(obj), park, terminals,
                                                        port=broker_port or secure.SECURE_PORT, host=broker_host)
                    hub_args["on_terminals_added"] = secure.broker_refresher(broker, park)
            elif not no_broker:
                broker = Broker(_db_dir(db) / "broker", port=broker_port).start()
        except (BrokerError, BrokerAuthError) as exc:
            raise UserError(str(exc)) from None
        if broker is not None:
            broker_host, broker_port = broker.host, broker.port
            click.echo("mosquitto listening on %s:%d (%s), up to %d terminal connections (open-file limit %d)"
                       % (broker_host, broker_port, "TLS, passwords, ACL" if broker.secure else "INSECURE",
                          broker.connections_max, broker.open_files_max))
        # --no-broker: the default port is the one a park of this kind listens on.
        default_port = secure.SECURE_PORT if park is not None else 1883
        try:
            _run(serve(Hub(db, broker_host, broker_port or default_port, lock=lock, **hub_args)))
        except HubFailed as exc:
            raise HubStopped(failure_message(exc)) from None
    finally:
        if broker is not None:
            broker.stop()
        lock.release()


def _audited(action, **kw):
    """storage.audited for the person running this command."""
    return audited(_actor(), action, **kw)


def _oplog(db, actor, action, **details):
    """Append an operator action to the hub's audit log (<db>.audit.log), anchored in the database."""
    try:
        _run(_with_storage(db, lambda s: s.audit(actor, action, **details), create=True))
    except (AuditLogError, OSError) as exc:
        raise UserError("done, but the audit log could not be written: %s" % exc) from None


def _register_demo():
    from parkcard.demo import demo_command
    from parkcard.oplog import audit_command
    main.add_command(demo_command)
    main.add_command(audit_command())


_register_demo()
