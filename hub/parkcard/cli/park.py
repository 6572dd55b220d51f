"""`parkcard init` (the park's secrets and PKI) and `parkcard park set` (its settings)."""

from pathlib import Path

import click

from parkcard.cli.common import UserError, in_store, park_dir
from parkcard.security import secure
from parkcard.security.pki import PKIError
from parkcard.services import park as park_service
from parkcard.services import shifts


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="folder of the park's secrets and PKI [default: --park-dir, else the database's folder]")
@click.option("--hostname", "hostnames", multiple=True,
              help="extra DNS name or IP address terminals use to reach the broker (repeatable)")
@click.pass_obj
def init(obj, directory, hostnames):
    """Create the park's PKI, card master keys, transport key and hub broker password (only what is missing)."""
    directory = Path(directory) if directory else park_dir(obj)
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
    audited_or_said(obj, lambda s, actor: park_service.initialised(s, actor, created))


def audited_or_said(obj, fn):
    """Record a change already made outside the database (files written) in the audit log, or say it was not."""
    try:
        in_store(obj, fn, create=True)
    except OSError as exc:
        raise UserError("done, but the audit log could not be written: %s" % exc) from None


@click.group()
def park():
    """Park settings."""


@park.command("set")
@click.option("--park", "park_id", type=int, default=1, show_default=True)
@click.option("--currency", required=True, help="ISO 4217 code of the park's money, e.g. CNY, EUR, HKD")
@click.pass_obj
def park_set(obj, park_id, currency):
    """Set the park's currency (before it takes money: amounts are stored without one)."""
    code, changed = in_store(obj, lambda s, actor: park_service.set_currency(s, actor, park_id, currency),
                             create=True)
    if not changed:
        click.echo("park %d already uses %s: nothing changed" % (park_id, code))
        return
    click.echo("park %d: amounts are in %s" % (park_id, code))


@park.command("pay-methods")
@click.argument("methods", nargs=-1)
@click.pass_obj
def park_pay_methods(obj, methods):
    """The payment methods the desks take: cash, and METHODS (e.g. card mobile) when given; `cash` alone: only cash."""
    async def setting(store, actor):
        changed = await shifts.set_pay_methods(store, actor, methods) if methods else None
        return changed, await shifts.pay_methods(store, actor)
    changed, taken = in_store(obj, setting, create=bool(methods))
    click.echo("the desks take %s%s" % (", ".join(taken), "" if changed is not False else " (nothing changed)"))
