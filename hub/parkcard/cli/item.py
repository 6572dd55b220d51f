"""`parkcard item set|remove|list|versions|free-amount`: a merchant's price list."""

import click

from protocol.price_list import NAME_MAX_BYTES, PRICE_MAX_CENTS
from protocol.pricing import CATEGORY_MAX, ITEM_CODE_MAX

from parkcard.bounds import MERCHANT_ID, BoundParam
from parkcard.cli.common import amount_cents, in_park_currency, in_store, table, utc
from parkcard.money import format_cents
from parkcard.services import items

_MERCHANT = click.option("--merchant", "merchant_id", type=BoundParam(MERCHANT_ID), required=True)
_CODE = click.option("--code", type=click.IntRange(1, ITEM_CODE_MAX), required=True,
                     help="what the vendor keys, 1..%d" % ITEM_CODE_MAX)


@click.group()
def item():
    """A merchant's price list: every change is a new version, sent to the merchant's booths."""


@item.command("set")
@_MERCHANT
@_CODE
@click.option("--name", default=None, help="shown on the booth's display, at most %d UTF-8 bytes" % NAME_MAX_BYTES)
@click.option("--price", default=None, help="list price in the park's currency, e.g. 3.50 (at most %s cents)"
              % format(PRICE_MAX_CENTS, ","))
@click.option("--category", type=click.IntRange(0, CATEGORY_MAX), default=None,
              help="for category discounts (`parkcard discount override --category`)")
@click.option("--active/--inactive", default=None, help="sold or not (an inactive item stays listed)")
@click.option("--member-only/--for-everyone", default=None, help="sold to member cards only")
@click.pass_obj
def item_set(obj, merchant_id, code, name, price, category, active, member_only):
    """Add an item, or change what is given of it (a new item needs --name and --price)."""
    (version, before, after), currency = in_park_currency(obj, lambda s, actor, currency: items.set_item(
        s, actor, merchant_id, code, name, None if price is None else amount_cents(price, currency, "--price"),
        category, active, member_only))
    click.echo("merchant %d item %d %s: %s, category %d%s%s; price list version %d%s"
               % (merchant_id, code, after.name, format_cents(after.price_cents, currency), after.category,
                  "" if after.active else ", inactive", ", members only" if after.member_only else "", version,
                  " (new item)" if before is None else ""))


@item.command("remove")
@_MERCHANT
@_CODE
@click.pass_obj
def item_remove(obj, merchant_id, code):
    """Take an item off the list (its past sales keep the version they were priced with)."""
    version = in_store(obj, lambda s, actor: items.remove_item(s, actor, merchant_id, code))
    click.echo("merchant %d item %d removed; price list version %d" % (merchant_id, code, version))


@item.command("free-amount")
@_MERCHANT
@click.option("--allow/--forbid", required=True, help="whether the vendor may key an amount instead of an item")
@click.pass_obj
def item_free_amount(obj, merchant_id, allow):
    """Allow or forbid keyed amounts at the merchant's booths."""
    version = in_store(obj, lambda s, actor: items.allow_free_amount(s, actor, merchant_id, allow))
    click.echo("merchant %d: keyed amounts %s; price list version %d"
               % (merchant_id, "allowed" if allow else "forbidden", version))


@item.command("list")
@_MERCHANT
@click.option("--version", type=click.IntRange(1), default=None, help="an older version [default: the newest]")
@click.pass_obj
def item_list(obj, merchant_id, version):
    """The merchant's items, by code."""

    async def read(s, actor):
        return await items.listing(s, actor, merchant_id, version), await s.park_currency()
    (found, entries), currency = in_store(obj, read)
    if found is None:
        click.echo("merchant %d has no price list yet: add an item with `parkcard item set`" % merchant_id)
        return
    click.echo("merchant %d price list version %d (%s by %s), keyed amounts %s"
               % (merchant_id, found.version, utc(found.created_at), found.created_by,
                  "allowed" if found.free_amount else "forbidden"))
    table(("code", "name", "price", "category", "sold", "members only"),
          [(i.code, i.name, format_cents(i.price_cents, currency), i.category, "yes" if i.active else "no",
            "yes" if i.member_only else "no") for i in entries])


@item.command("versions")
@_MERCHANT
@click.pass_obj
def item_versions(obj, merchant_id):
    """Every version of the merchant's price list: when and by whom."""
    rows = in_store(obj, lambda s, actor: items.versions(s, actor, merchant_id))
    table(("version", "made at", "by"), [(v, utc(at), by) for v, at, by in rows])
