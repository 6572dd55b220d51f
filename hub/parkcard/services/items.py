"""A merchant's price list: items (code, name, price, category, active, member-only), every change a new version.

Terminals of the merchant receive each version whole (SPEC.md §7.1) and keep serving the one they hold
until the next is complete; a sale's record names the version it was priced from.
"""

from protocol import hub_price_list
from protocol.errors import Malformed
from protocol.price_list import ENTRY_SIZE, ITEMS_MAX, Item, decode_entry

from parkcard.services.errors import Refusal
from parkcard.services.inputs import checked
from parkcard.services.privileges import MERCHANTS, MERCHANTS_READ, requires
from parkcard.store import audited
from parkcard.store.booth import VersionMoved
from parkcard.transport import notify


def entries_of(price_list):
    """The Items of a stored PriceListVersion (none for None), ascending by code."""
    if price_list is None:
        return []
    data = price_list.entries
    return [decode_entry(data, at) for at in range(0, len(data), ENTRY_SIZE)]


@requires(MERCHANTS_READ)
async def listing(store, actor, merchant_id, version=None):
    """Return (PriceListVersion or None, [Item]) of the merchant's newest list, or of that version."""
    checked(merchant_id=merchant_id)
    found = await store.price_list(merchant_id, version)
    if found is None and version is not None:
        raise Refusal("price_list_not_found", "merchant %(merchant)d has no price list version %(version)d (see "
                                              "`parkcard item versions --merchant %(merchant)d`)", merchant=merchant_id,
                      version=version)
    return found, entries_of(found)


@requires(MERCHANTS_READ)
async def versions(store, actor, merchant_id):
    """Return [(version, created_at, created_by)] of the merchant's price list, oldest first."""
    checked(merchant_id=merchant_id)
    return await store.price_list_versions(merchant_id)


@requires(MERCHANTS)
async def set_item(store, actor, merchant_id, code, name=None, price_cents=None, category=None, active=None,
                   member_only=None):
    """Add an item or change some of its fields; return (version, Item before or None, Item after).

    A new item needs a name and a price; what is not given keeps its value (a new item: category 0,
    active, for every card). ServiceError for a value out of range: nothing changes.
    """
    checked(merchant_id=merchant_id)
    current = await store.price_list(merchant_id)
    items = entries_of(current)
    before = next((i for i in items if i.code == code), None)
    if before is None and (name is None or price_cents is None):
        raise Refusal("item_incomplete", "merchant %(merchant)d has no item %(item)d yet: give its --name and --price",
                      merchant=merchant_id, item=code)
    base = before or Item(code, name, price_cents)
    after = Item(code, base.name if name is None else name.strip(),
                 base.price_cents if price_cents is None else price_cents,
                 base.category if category is None else category, base.active if active is None else active,
                 base.member_only if member_only is None else member_only)
    try:
        hub_price_list.item_entry(after)
    except Malformed as exc:
        raise Refusal("out_of_range", "%(problem)s: nothing changed", problem=exc) from None
    items = sorted([i for i in items if i.code != code] + [after], key=lambda i: i.code)
    if len(items) > ITEMS_MAX:
        raise Refusal("out_of_range", "a price list holds at most %(most)d items: remove one first", most=ITEMS_MAX)
    detail = dict(merchant_id=merchant_id, code=code, name=after.name, price_cents=after.price_cents,
                  category=after.category, active=after.active, member_only=after.member_only)
    version = await _publish(store, actor, merchant_id, current, items, "item.set", detail)
    return version, before, after


@requires(MERCHANTS)
async def remove_item(store, actor, merchant_id, code):
    """Take an item off the merchant's list (its sales keep their version); return the new version."""
    checked(merchant_id=merchant_id)
    current = await store.price_list(merchant_id)
    items = entries_of(current)
    if not any(i.code == code for i in items):
        raise Refusal("item_not_found", "merchant %(merchant)d has no item %(item)d (see `parkcard item list "
                                        "--merchant %(merchant)d`)", merchant=merchant_id, item=code)
    return await _publish(store, actor, merchant_id, current, [i for i in items if i.code != code], "item.remove",
                          dict(merchant_id=merchant_id, code=code))


@requires(MERCHANTS)
async def allow_free_amount(store, actor, merchant_id, allowed):
    """Allow or forbid keyed amounts (free amount lines) at the merchant's booths; return the new version."""
    checked(merchant_id=merchant_id)
    current = await store.price_list(merchant_id)
    return await _publish(store, actor, merchant_id, current, entries_of(current), "item.free_amount",
                          dict(merchant_id=merchant_id, allowed=bool(allowed)), free_amount=bool(allowed))


async def _publish(store, actor, merchant_id, current, items, action, detail, free_amount=None):
    """Store items as the merchant's next version (made from `current`) and tell the running hub."""
    if free_amount is None:
        free_amount = current.free_amount if current else False
    entries = b"".join(hub_price_list.item_entry(i) for i in items)
    try:
        version = await store.add_price_list(merchant_id, current.version if current else 0, free_amount, entries,
                                             actor.name, audit=audited(actor.name, action, extra=_version, **detail))
    except VersionMoved as exc:
        raise Refusal("version_moved", "%(problem)s: someone changed it meanwhile; look again (`parkcard item list "
                                       "--merchant %(merchant)d`) and repeat the change", problem=exc,
                      merchant=merchant_id) from None
    except ValueError as exc:
        raise Refusal("merchant_not_found", "%(problem)s (see `parkcard merchant list`)", problem=exc) from None
    await actor.told(notify.PRICES)
    return version


def _version(version):
    """The audit detail of a new version."""
    return dict(version=version)
