"""`parkcard apikey create|list|revoke`: API keys of third parties for /api/v1 (parkcard.api)."""

import click

from parkcard.bounds import NameParam
from parkcard.cli.common import in_store, table, utc
from parkcard.services import apikeys
from parkcard.services.privileges import SCOPES


@click.group("apikey")
def apikey():
    """API keys of third parties: each with its scopes, shown once, revocable."""


@apikey.command("create")
@click.option("--name", type=NameParam(), required=True, help="who the key is for, e.g. ticketing")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(sorted(SCOPES)),
              help="what the key may do (repeat for several)")
@click.pass_obj
def apikey_create(obj, name, scopes):
    """Create an API key and print its secret, once: the hub keeps only its SHA-256."""
    _key_id, secret = in_store(obj, lambda s, actor: apikeys.create(s, actor, name, scopes), create=True)
    click.echo("API key %s (%s):\n%s\nKeep it now: it is not shown again. Send it as `Authorization: Bearer <key>`."
               % (name, ", ".join(sorted(set(scopes))), secret))


@apikey.command("list")
@click.pass_obj
def apikey_list(obj):
    """Every API key: name, scopes, who created it and when, revoked or not (never the secret)."""
    table(("name", "scopes", "created", "by", "revoked"),
          [(k.name, " ".join(k.scopes.split()), utc(k.created_at), k.created_by,
            "%s by %s" % (utc(k.revoked_at), k.revoked_by) if k.revoked_at is not None else "no")
           for k in in_store(obj, apikeys.listing)])


@apikey.command("revoke")
@click.argument("name")
@click.pass_obj
def apikey_revoke(obj, name):
    """Revoke an API key: the hub refuses it from the next request on."""
    if in_store(obj, lambda s, actor: apikeys.revoke(s, actor, name)):
        click.echo("API key %s revoked" % name)
    else:
        click.echo("API key %s was revoked already: nothing changed" % name)
