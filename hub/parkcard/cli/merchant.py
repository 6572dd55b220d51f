"""`parkcard merchant add|set|list`."""

import click

from parkcard.bounds import COMMISSION_BPS, MERCHANT_ID, PARK_ID, BoundParam, NameParam
from parkcard.cli.common import UserError, in_store, table
from parkcard.services import discounts, merchants


@click.group()
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
    if not in_store(obj, lambda s, actor: merchants.add(s, actor, merchant_id, name, commission_bps, park_id),
                    create=True):
        click.echo("merchant %d %s already exists with commission %d bps: nothing changed"
                   % (merchant_id, name, commission_bps))
        return
    click.echo("merchant %d %s: commission %d bps" % (merchant_id, name, commission_bps))


@merchant.command("set")
@click.option("--id", "merchant_id", type=BoundParam(MERCHANT_ID), required=True)
@click.option("--name", type=NameParam(), default=None, help="new name")
@click.option("--commission-bps", type=BoundParam(COMMISSION_BPS), default=None, help="new commission, basis points")
@click.option("--discount-borne-by", "bearer", type=click.Choice(["merchant", "park"]), default=None,
              help="who pays the booth discounts of the merchant's sales (优惠费用由商户承担: merchant)")
@click.pass_obj
def merchant_set(obj, merchant_id, name, commission_bps, bearer):
    """Change a merchant's name, commission or discount bearer; a running hub applies it within seconds."""
    if name is None and commission_bps is None and bearer is None:
        raise UserError("say what to change: --name NAME, --commission-bps N and/or --discount-borne-by "
                        "merchant|park")
    if bearer is not None:
        was = in_store(obj, lambda s, actor: discounts.set_bearer(s, actor, merchant_id, bearer))
        click.echo("merchant %d: discounts borne by the %s (was the %s); sales applied from now on are paid so"
                   % (merchant_id, bearer, was))
        if name is None and commission_bps is None:
            return
    before, after = in_store(obj, lambda s, actor: merchants.change(s, actor, merchant_id, name, commission_bps))
    if before == after:
        click.echo("merchant %d is already %s at %d bps: nothing changed" % (merchant_id, *after))
        return
    click.echo("merchant %d: %s, commission %d bps (was %s, %d bps); records ingested from now on use it"
               % (merchant_id, after[0], after[1], before[0], before[1]))


@merchant.command("list")
@click.pass_obj
def merchant_list(obj):
    """Every merchant: id, name, commission, park and its terminals."""
    rows = in_store(obj, merchants.listing)
    table(("id", "name", "commission bps", "park", "terminals"),
          [(m, name, bps, park, ", ".join(map(str, tids)) or "none") for m, park, name, bps, tids in rows])
