"""`parkcard terminal add|lock|unlock|deauthorise`: the terminal registry and its commands."""

import json
import os
import secrets
from pathlib import Path

import click

from protocol import frames, topics

from parkcard.bounds import FIXED_PRICE_CENTS, MERCHANT_ID, PORT, TERMINAL_ID, BoundParam, NameParam
from parkcard.cli.common import UserError, amount_cents, in_park_currency, in_store, load_park, park_dir
from parkcard.cli.park import audited_or_said
from parkcard.security import secure
from parkcard.security.pki import PKIError, check_hostnames
from parkcard.services import terminals
from parkcard.transport import broker_auth

ROLES = {name: role for role, name in frames.ROLE_NAMES.items()}


@click.group()
def terminal():
    """Terminal registry."""


@terminal.command("add")
@click.option("--id", "terminal_id", type=BoundParam(TERMINAL_ID), required=True)
@click.option("--merchant", "merchant_id", type=BoundParam(MERCHANT_ID), required=True)
@click.option("--role", type=click.Choice(sorted(ROLES)), required=True)
@click.option("--name", type=NameParam(), required=True)
@click.option("--fixed-price", default="0", show_default=True,
              help="what one ride costs, in the park's currency, e.g. 5 or 4.50")
@click.option("--fixed-price-cents", expose_value=False, hidden=True, callback=lambda ctx, param, value: _gone(value),
              help="replaced by --fixed-price")
@click.option("--export", "export_path", type=click.Path(dir_okay=False), help="write the provisioning bundle here")
@click.option("--broker-host", default="localhost", show_default=True,
              help="name the terminal connects to; the broker certificate must carry it (`init --hostname`)")
@click.option("--broker-port", type=BoundParam(PORT), default=secure.SECURE_PORT, show_default=True)
@click.option("--ca-pem", type=click.Path(exists=True, dir_okay=False),
              help="broker CA certificate [default: the park CA made by `parkcard init`]")
@click.option("--wifi-ssid", default="")
@click.option("--wifi-password", default="")
@click.pass_obj
def terminal_add(obj, terminal_id, merchant_id, role, name, fixed_price, export_path, broker_host,
                 broker_port, ca_pem, wifi_ssid, wifi_password):
    """Register a terminal: generate its key and broker password, and optionally export its bundle."""
    try:
        check_hostnames([broker_host])
    except PKIError as exc:
        raise UserError("--broker-host: %s" % exc) from None
    park = load_park(park_dir(obj))
    if export_path and park is None:
        raise UserError("a bundle needs the park's transport key and CA: run `parkcard init` first "
                        "(looked in %s)" % park_dir(obj))
    key = secrets.token_bytes(terminals.TERMINAL_KEY_SIZE)
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
    try:
        in_park_currency(obj, lambda s, actor, currency: terminals.register(
            s, actor, terminal_id, merchant_id, ROLES[role], name, key,
            amount_cents(fixed_price, currency, "--fixed-price", FIXED_PRICE_CENTS.high), broker_password=password))
    except UserError:
        if export_path:
            os.unlink(export_path)  # the key in it belongs to no terminal
        raise
    click.echo("terminal %d (%s, %s) registered for merchant %d" % (terminal_id, name, role, merchant_id))
    if export_path:
        audited_or_said(obj, lambda s, actor: terminals.exported(s, actor, terminal_id, export_path))
        click.echo("provisioning bundle written to %s (it holds the terminal key, broker password and transport "
                   "key: keep it private, delete it after flashing)" % export_path)
        if not wifi_ssid:
            click.echo("note: no --wifi-ssid given: parkcard-flash refuses a bundle without one")


def _gone(cents):
    """Refuse the old option of a ride's price in cents, naming the one that replaced it."""
    if cents is not None:
        raise UserError("--fixed-price-cents %s: a ride's price is typed in the park's currency now: give "
                        "--fixed-price, e.g. --fixed-price 4.50; nothing was registered" % cents)


def terminal_bundle(terminal_id, key, password, transport_key, ca_path, broker_host, broker_port, wifi_ssid="",
                    wifi_password=""):
    """The provisioning bundle of one terminal (tools/flash/parkcard_flash/bundle.py reads it)."""
    return {"terminal_id": terminal_id, "terminal_key": key.hex(), "transport_key": transport_key.hex(),
            "username": topics.client_name(terminal_id), "password": password,
            "broker_host": broker_host, "broker_port": broker_port, "ca_pem": Path(ca_path).read_text(),
            "wifi_ssid": wifi_ssid, "wifi_password": wifi_password}


def _command(name, operation, doc, message, unchanged):
    """A `terminal NAME TERMINAL_ID` command that runs a terminal command service and says what happened."""
    @terminal.command(name, help=doc)
    @click.argument("terminal_id", type=BoundParam(TERMINAL_ID))
    @click.pass_obj
    def run_command(obj, terminal_id):
        if not in_store(obj, lambda s, actor: operation(s, actor, terminal_id)):
            click.echo(unchanged % terminal_id)     # nothing happened, so nothing is audited
            return
        click.echo(message % terminal_id)
    return run_command


terminal_lock = _command(
    "lock", terminals.lock,
    "Lock a terminal: it forgets its card keys and no admin card authorises it until `terminal unlock`.",
    "terminal %d locked; the running hub sends it the lock command within seconds "
    "(a terminal offline gets it when it reconnects)", "terminal %d was already locked: nothing changed")
terminal_unlock = _command(
    "unlock", terminals.unlock, "Let a locked terminal be authorised again (a technician taps an admin card).",
    "terminal %d unlocked: it serves again once a technician taps an admin card",
    "terminal %d was not locked: nothing changed")
terminal_deauthorise = _command(
    "deauthorise", terminals.deauthorise,
    "De-authorise a terminal: it forgets its card keys until the next admin card tap.",
    "terminal %d de-authorised; the running hub sends the command within "
    "seconds", "terminal %d was not authorised: nothing changed (`terminal lock` makes it refuse any admin card)")
