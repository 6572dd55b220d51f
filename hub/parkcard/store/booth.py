"""The store's price lists, discount rules and discount bearers: one definition for every backend.

A backend's store mixes BoothMethods in beside reads.SharedMethods (same `_all`, `_one`, `write`).
Versions are appended, never changed: a sale is re-priced from the versions its record names. A new
version names the version it was made from (`after`), so two operators editing at once cannot lose
each other's change: the second is refused and edits the newer version.
"""

from parkcard.store.errors import Refused
from parkcard.store.rows import DiscountRulesVersion, PriceListVersion

DISCOUNT_BEARERS = ("park", "merchant")
_PRICE_LIST_SELECT = "SELECT merchant_id, version, free_amount, entries, created_at, created_by FROM price_lists "


class VersionMoved(Refused):
    """A new version was made from one that is no longer the newest: read the newest and edit it."""


def _price_list(merchant_id, version, free_amount, entries, created_at, created_by):
    """A PriceListVersion from its columns (the entries as bytes whatever the driver returns)."""
    return PriceListVersion(merchant_id, version, bool(free_amount), bytes(entries), created_at, created_by)


class BoothMethods:
    """Price list and discount rule versions, and who bears a merchant's discounts (a mixin)."""

    async def price_list(self, merchant_id, version=None):
        """Return the merchant's PriceListVersion (the newest, or this version), or None."""
        if version is None:
            return await self._one_as(_price_list, _PRICE_LIST_SELECT + "WHERE merchant_id=? ORDER BY version DESC "
                                      "LIMIT 1", (merchant_id,))
        return await self._one_as(_price_list, _PRICE_LIST_SELECT + "WHERE merchant_id=? AND version=?",
                                  (merchant_id, version))

    async def price_list_versions(self, merchant_id):
        """Return [(version, created_at, created_by)] of a merchant's price list, oldest first."""
        return [tuple(r) for r in await self._all("SELECT version, created_at, created_by FROM price_lists "
                                                  "WHERE merchant_id=? ORDER BY version", (merchant_id,))]

    async def add_price_list(self, merchant_id, after, free_amount, entries, actor, audit=None):
        """Append version after + 1 of a merchant's list; return it. ValueError for an unknown merchant,
        VersionMoved when `after` is not the newest version (0: the merchant has none)."""
        def run(tx):
            if tx.sql_row("SELECT 1 FROM merchants WHERE id=?", (merchant_id,)) is None:
                raise Refused("there is no merchant %(merchant)d", merchant=merchant_id)
            newest = tx.sql_row("SELECT MAX(version) FROM price_lists WHERE merchant_id=?", (merchant_id,))[0] or 0
            if newest != after:
                raise VersionMoved("merchant %(merchant)d's price list is at version %(newest)d, not %(after)d",
                                   merchant=merchant_id, newest=newest, after=after)
            tx.sql_rowcount("INSERT INTO price_lists(merchant_id, version, free_amount, entries, created_at, "
                            "created_by) VALUES (?, ?, ?, ?, ?, ?)",
                            (merchant_id, after + 1, int(free_amount), bytes(entries), tx.now, actor))
            return after + 1
        return await self.write(run, audit)

    async def discount_rules(self, version=None):
        """Return the park's DiscountRulesVersion (the newest, or this version), or None."""
        return await self._rules_version("discount_rules", version)

    async def add_discount_rules(self, after, rules, actor, audit=None):
        """Append version after + 1 of the park's discount rules (rules: their JSON text); return it.
        VersionMoved when `after` is not the newest version (0: there is none)."""
        return await self._add_rules_version("discount_rules", "the discount rules", after, rules, actor, audit)

    async def spend_rules(self, version=None):
        """Return the park's consumption rules (SPEC.md §5.10) as a DiscountRulesVersion-shaped row (the newest,
        or this version), or None."""
        return await self._rules_version("consumption_rules", version)

    async def add_spend_rules(self, after, rules, actor, audit=None):
        """Append version after + 1 of the park's consumption rules (their JSON text); return it.
        VersionMoved when `after` is not the newest version (0: there is none)."""
        return await self._add_rules_version("consumption_rules", "the consumption rules", after, rules, actor,
                                             audit)

    async def _rules_version(self, table, version):
        """One version of a table of whole-park rule versions (the newest when version is None), or None."""
        select = "SELECT version, rules, created_at, created_by FROM %s " % table
        if version is None:
            return await self._one_as(DiscountRulesVersion, select + "ORDER BY version DESC LIMIT 1")
        return await self._one_as(DiscountRulesVersion, select + "WHERE version=?", (version,))

    async def _add_rules_version(self, table, what, after, rules, actor, audit):
        """Append version after + 1 to a table of whole-park rule versions; VersionMoved unless after is newest."""
        def run(tx):
            newest = tx.sql_row("SELECT MAX(version) FROM %s" % table)[0] or 0
            if newest != after:
                raise VersionMoved("%(what)s are at version %(newest)d, not %(after)d", what=what, newest=newest,
                                   after=after)
            tx.sql_rowcount("INSERT INTO %s(version, rules, created_at, created_by) VALUES (?, ?, ?, ?)" % table,
                            (after + 1, rules, tx.now, actor))
            return after + 1
        return await self.write(run, audit)

    async def discount_bearer(self, merchant_id):
        """Return who bears the merchant's discounts ('park' or 'merchant'), or None for an unknown merchant."""
        return await self._one_value("SELECT discount_bearer FROM merchants WHERE id=?", (merchant_id,))

    async def set_discount_bearer(self, merchant_id, bearer, audit=None):
        """Set who bears the merchant's discounts; return the bearer before. ValueError for an unknown merchant."""
        if bearer not in DISCOUNT_BEARERS:
            raise Refused("the discount bearer is one of %(bearers)s, not %(bearer)r",
                          bearers=", ".join(DISCOUNT_BEARERS), bearer=bearer)

        def run(tx):
            row = tx.sql_row("SELECT discount_bearer FROM merchants WHERE id=?", (merchant_id,))
            if row is None:
                raise Refused("there is no merchant %(merchant)d", merchant=merchant_id)
            tx.sql_rowcount("UPDATE merchants SET discount_bearer=? WHERE id=?", (bearer, merchant_id))
            return row[0]
        return await self.write(run, audit)
