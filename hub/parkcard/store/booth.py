"""The store's price lists, discount rules and discount bearers: one definition for every backend.

A backend's store mixes BoothMethods in beside reads.SharedMethods (same `_all`, `_one`, `write`).
Versions are appended, never changed: a sale is re-priced from the versions its record names. A new
version names the version it was made from (`after`), so two operators editing at once cannot lose
each other's change: the second is refused and edits the newer version.
"""

from parkcard.store.rows import DiscountRulesVersion, PriceListVersion

DISCOUNT_BEARERS = ("park", "merchant")
_PRICE_LIST_SELECT = "SELECT merchant_id, version, free_amount, entries, created_at, created_by FROM price_lists "
_RULES_SELECT = "SELECT version, rules, created_at, created_by FROM discount_rules "


class VersionMoved(ValueError):
    """A new version was made from one that is no longer the newest: read the newest and edit it."""


def _price_list(row):
    """A PriceListVersion from its row (the entries as bytes whatever the driver returns)."""
    return PriceListVersion(row[0], row[1], bool(row[2]), bytes(row[3]), row[4], row[5]) if row else None


class BoothMethods:
    """Price list and discount rule versions, and who bears a merchant's discounts (a mixin)."""

    async def price_list(self, merchant_id, version=None):
        """Return the merchant's PriceListVersion (the newest, or this version), or None."""
        if version is None:
            return _price_list(await self._one(_PRICE_LIST_SELECT + "WHERE merchant_id=? ORDER BY version DESC "
                                               "LIMIT 1", (merchant_id,)))
        return _price_list(await self._one(_PRICE_LIST_SELECT + "WHERE merchant_id=? AND version=?",
                                           (merchant_id, version)))

    async def price_list_versions(self, merchant_id):
        """Return [(version, created_at, created_by)] of a merchant's price list, oldest first."""
        return [tuple(r) for r in await self._all("SELECT version, created_at, created_by FROM price_lists "
                                                  "WHERE merchant_id=? ORDER BY version", (merchant_id,))]

    async def add_price_list(self, merchant_id, after, free_amount, entries, actor, audit=None):
        """Append version after + 1 of a merchant's list; return it. ValueError for an unknown merchant,
        VersionMoved when `after` is not the newest version (0: the merchant has none)."""
        def run(tx):
            if tx.sql_row("SELECT 1 FROM merchants WHERE id=?", (merchant_id,)) is None:
                raise ValueError("there is no merchant %d" % merchant_id)
            newest = tx.sql_row("SELECT MAX(version) FROM price_lists WHERE merchant_id=?", (merchant_id,))[0] or 0
            if newest != after:
                raise VersionMoved("merchant %d's price list is at version %d, not %d" % (merchant_id, newest, after))
            tx.sql_rowcount("INSERT INTO price_lists(merchant_id, version, free_amount, entries, created_at, "
                            "created_by) VALUES (?, ?, ?, ?, ?, ?)",
                            (merchant_id, after + 1, int(free_amount), bytes(entries), tx.now, actor))
            return after + 1
        return await self.write(run, audit)

    async def discount_rules(self, version=None):
        """Return the park's DiscountRulesVersion (the newest, or this version), or None."""
        if version is None:
            row = await self._one(_RULES_SELECT + "ORDER BY version DESC LIMIT 1")
        else:
            row = await self._one(_RULES_SELECT + "WHERE version=?", (version,))
        return DiscountRulesVersion(*row) if row else None

    async def add_discount_rules(self, after, rules, actor, audit=None):
        """Append version after + 1 of the park's discount rules (rules: their JSON text); return it.
        VersionMoved when `after` is not the newest version (0: there is none)."""
        def run(tx):
            newest = tx.sql_row("SELECT MAX(version) FROM discount_rules")[0] or 0
            if newest != after:
                raise VersionMoved("the discount rules are at version %d, not %d" % (newest, after))
            tx.sql_rowcount("INSERT INTO discount_rules(version, rules, created_at, created_by) VALUES (?, ?, ?, ?)",
                            (after + 1, rules, tx.now, actor))
            return after + 1
        return await self.write(run, audit)

    async def discount_bearer(self, merchant_id):
        """Return who bears the merchant's discounts ('park' or 'merchant'), or None for an unknown merchant."""
        row = await self._one("SELECT discount_bearer FROM merchants WHERE id=?", (merchant_id,))
        return row[0] if row else None

    async def set_discount_bearer(self, merchant_id, bearer, audit=None):
        """Set who bears the merchant's discounts; return the bearer before. ValueError for an unknown merchant."""
        if bearer not in DISCOUNT_BEARERS:
            raise ValueError("the discount bearer is one of %s, not %r" % (", ".join(DISCOUNT_BEARERS), bearer))

        def run(tx):
            row = tx.sql_row("SELECT discount_bearer FROM merchants WHERE id=?", (merchant_id,))
            if row is None:
                raise ValueError("there is no merchant %d" % merchant_id)
            tx.sql_rowcount("UPDATE merchants SET discount_bearer=? WHERE id=?", (bearer, merchant_id))
            return row[0]
        return await self.write(run, audit)
