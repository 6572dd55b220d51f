"""`parkcard` command line: fleet, ledger check, settlement, registry, running the hub.

User mistakes get one clear line saying what went wrong and what to do, and
exit status 2; `ledger check` exits 1 when it finds a discrepancy.
"""

import asyncio
import datetime
import json
import os
import secrets
import sqlite3
import time
from pathlib import Path

import click

from protocol import frames

from parkcard import audit, settlement
from parkcard.storage import Storage

ROLES = {name: role for role, name in frames.ROLE_NAMES.items()}


class UserError(click.ClickException):
    """A mistake of the person at the keyboard: message, exit 2, no traceback."""

    exit_code = 2


def _run(coro):
    try:
        return asyncio.run(coro)
    except sqlite3.DatabaseError as exc:
        raise UserError("database error: %s (is --db a ParkCard database?)" % exc) from None


async def _with_storage(path, fn, create=False):
    if not create and not Path(path).exists():
        raise UserError("no database at %s: pass --db, or create one with `parkcard merchant add`" % path)
    if create:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    storage = await Storage(path).open()
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


def _age(ts):
    if ts is None:
        return "never"
    seconds = int(time.time() - ts)
    return "%ds ago" % seconds if seconds < 120 else "%dmin ago" % (seconds // 60)


@click.group()
@click.option("--db", default=os.path.join("var", "parkcard.db"), show_default=True, help="hub database file")
@click.pass_context
def main(ctx, db):
    """ParkCard hub: terminals, ledger, settlement."""
    ctx.obj = db


@main.command()
@click.pass_obj
def terminals(db):
    """Fleet table: online state, backlog, versions."""
    rows = _run(_with_storage(db, lambda s: s.terminals()))
    _table(("id", "name", "role", "merchant", "online", "last seen", "firmware", "cfg", "bl", "queue",
            "oldest unsynced", "heap", "uptime", "acked seq"),
           [(t["id"], t["name"], frames.ROLE_NAMES.get(t["role"], t["role"]), t["merchant_id"],
             "yes" if t["online"] else "no", _age(t["last_seen"]), t["firmware"], t["status_config_version"],
             t["status_blacklist_version"], t["queue_depth"],
             None if t["oldest_unsynced_age_s"] is None else "%ds" % t["oldest_unsynced_age_s"], t["free_heap"],
             t["uptime_s"], t["acked_upto"]) for t in rows])


@main.group()
def ledger():
    """Ledger commands."""


@ledger.command("check")
@click.pass_obj
def ledger_check(db):
    """Verify the ledger: zero-sum transactions, card balances, counter chains."""
    report = _run(_with_storage(db, audit.check))
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        raise SystemExit(1)


@main.command()
@click.option("--merchant", "merchant_id", type=int, help="merchant id")
@click.option("--all", "all_merchants", is_flag=True, help="every merchant")
@click.option("--from", "start", required=True, help="period start (epoch seconds or ISO date, UTC), included")
@click.option("--to", "end", required=True, help="period end, excluded")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="write the settlements to this CSV file")
@click.pass_obj
def settle(db, merchant_id, all_merchants, start, end, csv_path):
    """Close a settlement period (final, idempotent) and export it."""
    if (merchant_id is None) == (not all_merchants):
        raise UserError("say which merchant: --merchant ID or --all")
    start_s, end_s = _when(start, "--from"), _when(end, "--to")
    if end_s <= start_s:
        raise UserError("--to must be after --from")

    async def run(storage):
        ids = [m[0] for m in await storage.merchants()] if all_merchants else [merchant_id]
        if not all_merchants and merchant_id not in [m[0] for m in await storage.merchants()]:
            raise UserError("merchant %d does not exist (see `parkcard merchant add`)" % merchant_id)
        return [await settlement.close(storage, mid, start_s, end_s) for mid in ids]

    results = _run(_with_storage(db, run))
    _table(("merchant", "sales", "refunds", "commission", "payout", "records", "state"),
           [(r["merchant_id"], r["sales_cents"], r["refunds_cents"], r["commission_cents"], r["payout_cents"],
             r["records"], "closed now" if new else "already closed") for r, new in results])
    if csv_path:
        settlement.write_csv(csv_path, [r for r, _ in results])
        click.echo("wrote %s" % csv_path)


@main.group()
def merchant():
    """Merchant registry."""


@merchant.command("add")
@click.option("--id", "merchant_id", type=int, required=True)
@click.option("--name", required=True)
@click.option("--commission-bps", type=click.IntRange(0, 10000), required=True, help="commission, basis points")
@click.option("--park", "park_id", type=int, default=1, show_default=True)
@click.pass_obj
def merchant_add(db, merchant_id, name, commission_bps, park_id):
    """Create or update a merchant."""
    _run(_with_storage(db, lambda s: s.add_merchant(merchant_id, name, commission_bps, park_id), create=True))
    click.echo("merchant %d %s: commission %d bps" % (merchant_id, name, commission_bps))


@main.group()
def terminal():
    """Terminal registry."""


@terminal.command("add")
@click.option("--id", "terminal_id", type=click.IntRange(1, 65535), required=True)
@click.option("--merchant", "merchant_id", type=int, required=True)
@click.option("--role", type=click.Choice(sorted(ROLES)), required=True)
@click.option("--name", required=True)
@click.option("--fixed-price-cents", type=int, default=0)
@click.option("--export", "export_path", type=click.Path(dir_okay=False), help="write the provisioning bundle here")
@click.option("--broker-host", default="127.0.0.1", show_default=True)
@click.option("--broker-port", type=int, default=1883, show_default=True)
@click.option("--ca-pem", type=click.Path(exists=True, dir_okay=False), help="broker CA certificate for TLS")
@click.option("--wifi-ssid", default="")
@click.option("--wifi-password", default="")
@click.pass_obj
def terminal_add(db, terminal_id, merchant_id, role, name, fixed_price_cents, export_path, broker_host, broker_port,
                 ca_pem, wifi_ssid, wifi_password):
    """Register a terminal and generate its key."""
    key = secrets.token_bytes(32)

    async def run(storage):
        try:
            await storage.add_terminal(terminal_id, merchant_id, ROLES[role], key, name, fixed_price_cents)
        except ValueError as exc:
            raise UserError("%s: check `parkcard terminals` and `parkcard merchant add`" % exc) from None

    _run(_with_storage(db, run))
    click.echo("terminal %d (%s, %s) registered for merchant %d" % (terminal_id, name, role, merchant_id))
    if export_path:
        bundle = {"terminal_id": terminal_id, "terminal_key": key.hex(), "username": "term-%d" % terminal_id,
                  "password": secrets.token_urlsafe(18), "broker_host": broker_host, "broker_port": broker_port,
                  "ca_pem": Path(ca_pem).read_text() if ca_pem else None, "wifi_ssid": wifi_ssid,
                  "wifi_password": wifi_password}
        fd = os.open(export_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(bundle, fh, indent=2)
        click.echo("provisioning bundle written to %s (it holds the terminal key: keep it private)" % export_path)


@main.command()
@click.pass_obj
def alarms(db):
    """Alarms raised by ingest (clones, chain breaks, conflicts)."""
    rows = _run(_with_storage(db, lambda s: s.alarms()))
    _table(("id", "kind", "card", "terminal", "seq", "when", "detail"),
           [(r[0], r[1], r[2], r[3], r[4], _age(r[6]), r[5]) for r in rows])


@main.command()
@click.pass_obj
def quarantine(db):
    """Frames and records refused by ingest, with their reasons."""
    rows = _run(_with_storage(db, lambda s: s.quarantined()))
    _table(("id", "topic", "terminal", "reason", "bytes", "when", "detail"),
           [(r[0], r[1], r[2], r[3], r[6], _age(r[5]), r[4]) for r in rows])


@main.command()
@click.option("--broker-host", default="127.0.0.1", show_default=True)
@click.option("--broker-port", type=int, default=None, help="port (default: a free one, or 1883 with --no-broker)")
@click.option("--no-broker", is_flag=True, help="use a broker that is already running")
@click.pass_obj
def up(db, broker_host, broker_port, no_broker):
    """Run Mosquitto (unless --no-broker) and the hub until Ctrl-C."""
    from parkcard.broker import Broker, BrokerError
    from parkcard.service import Hub, configure_logging, serve

    configure_logging()
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    broker = None
    if not no_broker:
        broker = Broker(Path(db).parent / "broker", port=broker_port)
        try:
            broker.start()
        except BrokerError as exc:
            raise UserError(str(exc)) from None
        broker_host, broker_port = broker.host, broker.port
        click.echo("mosquitto listening on %s:%d" % (broker_host, broker_port))
    try:
        _run(serve(Hub(db, broker_host, broker_port or 1883)))
    finally:
        if broker is not None:
            broker.stop()


def _register_demo():
    from parkcard.demo import demo_command
    main.add_command(demo_command)


_register_demo()
