"""Price lists and discount rules at the hub: versions on both backends, refusals, privileges, the CLI."""

import asyncio

import pytest
from click.testing import CliRunner

from protocol import frames, hub_price_list, price_list, pricing
from protocol import record as R
from protocol.card import TIER_GOLD, TIER_SILVER, TIER_STANDARD

from parkcard.app import Hub
from parkcard.cli import main
from parkcard.domain.discounts import POLICY
from parkcard.services import discounts, items, merchants
from parkcard.services.privileges import Actor, ServiceError
from parkcard.store import open_store
from parkcard.store.booth import VersionMoved
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, MERCHANT_PARK, desk_issued
from test_hub_cli import DAY_S, UID

SNACKS, TOYS = 3, 4
COLA, CHIPS, CAKE = 11, 12, 13
SNACK_FOOD = 2


def run(store_url, scenario):
    """Run scenario(store, admin) on a fresh park with merchants SNACKS and TOYS."""
    async def go():
        store = await open_store(store_url)
        try:
            admin = Actor("test:admin")
            await merchants.add(store, admin, SNACKS, "Snacks", 500)
            await merchants.add(store, admin, TOYS, "Toys", 800)
            return await scenario(store, admin)
        finally:
            await store.close()
    return asyncio.run(go())


def test_every_item_change_is_a_new_version_and_old_versions_stay(store_url):
    async def scenario(store, admin):
        version, before, after = await items.set_item(store, admin, SNACKS, COLA, "可乐 Cola", 350, SNACK_FOOD)
        assert (version, before, after.code, after.price_cents, after.active) == (1, None, COLA, 350, True)
        version, before, after = await items.set_item(store, admin, SNACKS, COLA, price_cents=400)
        assert (version, before.price_cents, after.price_cents, after.name, after.category) == (
            2, 350, 400, "可乐 Cola", SNACK_FOOD)
        await items.set_item(store, admin, SNACKS, CHIPS, "Chips", 250, member_only=True)
        assert await items.remove_item(store, admin, SNACKS, COLA) == 4
        found, newest = await items.listing(store, admin, SNACKS)
        assert found.version == 4 and [(i.code, i.member_only) for i in newest] == [(CHIPS, True)]
        _, first = await items.listing(store, admin, SNACKS, 1)
        assert [(i.code, i.name, i.price_cents) for i in first] == [(COLA, "可乐 Cola", 350)]
        # The stored entries are the bytes a terminal receives: they parse as one chunk.
        (body,) = hub_price_list.price_list_bodies(SNACKS, 4, newest)
        assert bytes(price_list.parse_price_list(body).entries) == found.entries
        assert [v for v, _at, _by in await items.versions(store, admin, SNACKS)] == [1, 2, 3, 4]
        assert await store.price_list(TOYS) is None     # one list per merchant
    run(store_url, scenario)


def test_an_item_out_of_range_or_incomplete_is_refused_and_nothing_changes(store_url):
    async def scenario(store, admin):
        await items.set_item(store, admin, SNACKS, COLA, "Cola", 350)
        for change in (dict(code=CAKE, name="Cake"),                                 # a new item with no price
                       dict(code=COLA, name="x" * (price_list.NAME_MAX_BYTES + 1)),  # a name too long
                       dict(code=COLA, name="冰淇淋冰淇淋冰淇淋"),                     # 27 UTF-8 bytes
                       dict(code=COLA, price_cents=0),
                       dict(code=COLA, category=pricing.CATEGORY_MAX + 1)):
            with pytest.raises(ServiceError) as refused:
                await items.set_item(store, admin, SNACKS, **change)
            assert "nothing changed" in str(refused.value) or "--price" in str(refused.value)
        with pytest.raises(ServiceError, match="no item 13"):
            await items.remove_item(store, admin, SNACKS, CAKE)
        with pytest.raises(ServiceError, match="merchant list"):
            await items.set_item(store, admin, 99, COLA, "Cola", 350)
        found, listed = await items.listing(store, admin, SNACKS)
        assert found.version == 1 and [(i.name, i.price_cents) for i in listed] == [("Cola", 350)]
        # A version made from a stale one is refused: two operators never lose each other's change.
        with pytest.raises(VersionMoved):
            await store.add_price_list(SNACKS, 0, False, b"", "test")
    run(store_url, scenario)


def test_discount_rules_give_each_merchant_its_share_and_price_a_basket(store_url):
    async def scenario(store, admin):
        assert await discounts.merchant_rules(store, SNACKS) is not None
        assert (await discounts.rules(store, admin))[0] == 0             # no rules yet: no discount
        assert await discounts.set_tier(store, admin, TIER_GOLD, sale_bp=1000, total_bp=500) == 1
        assert await discounts.set_tier(store, admin, TIER_SILVER, sale_bp=500) == 2
        assert await discounts.set_override(store, admin, TIER_GOLD, 2000, category=SNACK_FOOD) == 3
        assert await discounts.set_override(store, admin, TIER_GOLD, 0, merchant_id=SNACKS, item=CAKE) == 4
        snacks = await discounts.merchant_rules(store, SNACKS)
        toys = await discounts.merchant_rules(store, TOYS)
        assert snacks.version == toys.version == 4
        assert snacks.line_rate(TIER_GOLD, CAKE, SNACK_FOOD) == 0          # the item's override first
        assert toys.line_rate(TIER_GOLD, CAKE, SNACK_FOOD) == 2000         # not Snacks' item: the category's
        assert snacks.line_rate(TIER_GOLD, COLA, 0) == 1000
        assert snacks.line_rate(TIER_STANDARD, COLA, SNACK_FOOD) == 0
        # 2 colas at 350 in category 2 (20 %), a cake at 1000 (0 %), then 5 % on the total.
        price = pricing.price_basket(snacks, TIER_GOLD, [(COLA, SNACK_FOOD, 2, 350), (CAKE, SNACK_FOOD, 1, 1000)])
        assert (price.gross_cents, price.line_discounts, price.total_discount_cents, price.pay_cents) == (
            1700, [140, 0], 78, 1482)
        # Older versions stay as they were: a sale priced with version 1 re-prices with version 1.
        old = await discounts.merchant_rules(store, SNACKS, 1)
        assert old.line_rate(TIER_GOLD, CAKE, SNACK_FOOD) == 1000 and old.sale_bp[TIER_SILVER] == 0
        assert await discounts.remove_override(store, admin, TIER_GOLD, merchant_id=SNACKS, item=CAKE) == 5
        with pytest.raises(ServiceError, match="no such override"):
            await discounts.remove_override(store, admin, TIER_GOLD, merchant_id=SNACKS, item=CAKE)
        for bad in (lambda: discounts.set_tier(store, admin, TIER_GOLD, sale_bp=10001),
                    lambda: discounts.set_tier(store, admin, 16, sale_bp=100),
                    lambda: discounts.set_override(store, admin, TIER_GOLD, 100, category=1, item=2),
                    lambda: discounts.set_override(store, admin, TIER_GOLD, 100, item=CAKE)):
            with pytest.raises(ServiceError):
                await bad()
        assert (await discounts.rules(store, admin))[0] == 5
    run(store_url, scenario)


def test_the_discount_bearer_is_a_merchant_setting(store_url):
    async def scenario(store, admin):
        assert await discounts.bearer(store, admin, SNACKS) == "park"
        assert await discounts.set_bearer(store, admin, SNACKS, "merchant") == "park"
        assert (await discounts.bearer(store, admin, SNACKS), await discounts.bearer(store, admin, TOYS)) == (
            "merchant", "park")
        with pytest.raises(ServiceError, match="park, merchant"):
            await discounts.set_bearer(store, admin, SNACKS, "visitor")
        with pytest.raises(ServiceError, match="no merchant 99"):
            await discounts.set_bearer(store, admin, 99, "merchant")
    run(store_url, scenario)


def test_only_the_roles_that_run_the_park_change_prices_and_discounts(store_url):
    async def scenario(store, admin):
        cashier = Actor("test:cashier", roles=("cashier",))
        finance = Actor("test:finance", roles=("finance",))
        with pytest.raises(ServiceError, match="may not"):
            await items.set_item(store, cashier, SNACKS, COLA, "Cola", 350)
        with pytest.raises(ServiceError, match="may not"):
            await discounts.set_tier(store, finance, TIER_GOLD, sale_bp=100)
        manager = Actor("test:manager", roles=("manager",))
        assert (await items.set_item(store, manager, SNACKS, COLA, "Cola", 350))[0] == 1
        assert await discounts.set_tier(store, manager, TIER_GOLD, sale_bp=100) == 1
        assert (await items.listing(store, finance, SNACKS))[0].version == 1
    run(store_url, scenario)


def test_the_cli_edits_items_and_discounts_and_states_the_policy(tmp_path):
    db = str(tmp_path / "hub.db")
    cli = CliRunner()

    def ok(*args):
        result = cli.invoke(main, ["--db", db, *args])
        assert result.exit_code == 0, result.output
        return result.output
    ok("merchant", "add", "--id", str(SNACKS), "--name", "Snacks", "--commission-bps", "500")
    assert "version 1 (new item)" in ok("item", "set", "--merchant", "3", "--code", "11", "--name", "Cola",
                                        "--price", "3.50", "--category", "2")
    assert "version 2" in ok("item", "set", "--merchant", "3", "--code", "11", "--inactive")
    listed = ok("item", "list", "--merchant", "3")
    assert "version 2" in listed and "Cola" in listed and "3.50" in listed
    assert "allowed" in ok("item", "free-amount", "--merchant", "3", "--allow")
    ok("discount", "tier", "--tier", "2", "--sale-bp", "1000", "--total-bp", "500")
    ok("discount", "override", "--tier", "2", "--category", "2", "--rate-bp", "2000")
    shown = ok("discount", "show")
    assert "version 2" in shown and POLICY in shown
    assert "borne by the merchant (was the park)" in ok("discount", "bearer", "--merchant", "3", "--by", "merchant")
    refused = cli.invoke(main, ["--db", db, "item", "set", "--merchant", "3", "--code", "12", "--name", "Chips"])
    assert refused.exit_code != 0 and "--price" in refused.output and "Traceback" not in refused.output
    refused = cli.invoke(main, ["--db", db, "discount", "override", "--tier", "2", "--item", "5", "--rate-bp", "1"])
    assert refused.exit_code != 0 and "--merchant M with --item" in refused.output


def test_an_operator_who_logged_in_edits_prices_only_with_a_role_that_may(tmp_path):
    db, password = str(tmp_path / "hub.db"), "a long enough passphrase"
    cli = CliRunner()

    def as_(user, *args, stdin=None):
        env = {"PARKCARD_OPERATOR": user, "PARKCARD_PASSWORD": password} if user else None
        return cli.invoke(main, ["--db", db, *args], env=env, input=stdin)
    assert as_(None, "merchant", "add", "--id", "3", "--name", "Snacks", "--commission-bps", "500").exit_code == 0
    for user, role in (("mia", "manager"), ("carl", "cashier")):
        made = as_(None, "operator", "add", user, "--role", role, "--password-stdin", stdin=password + "\n")
        assert made.exit_code == 0, made.output
    refused = as_("carl", "item", "set", "--merchant", "3", "--code", "1", "--name", "Cola", "--price", "3.50")
    assert refused.exit_code == 2 and "carl (cashier) may not do this" in refused.output
    for typed, said in (("3.505", "'3.505' is not an amount in CNY"), ("-1", "'-1' is not an amount in CNY"),
                        ("0", "price 1..8388607 cents")):
        wrong = as_("mia", "item", "set", "--merchant", "3", "--code", "1", "--name", "Cola", "--price", typed)
        assert wrong.exit_code == 2 and said in wrong.output and "Traceback" not in wrong.output
    done = as_("mia", "item", "set", "--merchant", "3", "--code", "1", "--name", "Cola", "--price", "3.50")
    assert done.exit_code == 0 and "version 1" in done.output and "CNY 3.50" in done.output
    versions = as_("mia", "item", "versions", "--merchant", "3").output.splitlines()
    assert versions[1].split()[0] == "1" and versions[1].split()[-1] == "mia"     # the version names who made it


@pytest.mark.parametrize("bearer, park_part", [("park", 180), ("merchant", 0)])
def test_settlement_pays_the_park_s_part_of_the_discounts_to_the_merchant(store_url, bearer, park_part):
    async def scenario():
        hub = await Hub(store_url).open()
        try:
            await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
            await hub.add_merchant(MERCHANT_ICE, "Ice cream", 1000)
            await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "front desk")
            await hub.register_terminal(5, MERCHANT_ICE, frames.ROLE_POS, "ice booth")
            await discounts.set_bearer(hub.storage, hub.actor("test:admin"), MERCHANT_ICE, bearer)
            issued = await desk_issued(hub, UID, 10000, time_s=DAY_S)
            # Two sales priced at the booth: 10.00 list - 1.00 discount, 9.00 list - 0.80.
            sales = [R.Record(R.KIND_DEBIT, 5, seq, DAY_S + 3600 * seq, issued.card_no, UID, seq + 1, paid, balance,
                              item=11, discount_cents=off)
                     for seq, paid, off, balance in ((1, 900, 100, 9100), (2, 820, 80, 8280))]
            mac = hub.registry.get(5).record_mac
            await hub.ingest.apply_local(5, [(R.STATUS_COMMITTED, r.encode(mac)) for r in sales])
            return await hub.storage.close_settlements([MERCHANT_ICE], DAY_S, DAY_S + 86400)
        finally:
            await hub.stop()
    [(closed, new)] = asyncio.run(scenario())
    # Commission 10 % of what the cards paid (17.20): 1.72. A merchant bearing its discounts gets
    # 17.20 - 1.72; when the park bears them it also pays the 1.80 taken off the list prices.
    assert new and (closed.sales_cents, closed.commission_cents, closed.discounts_cents) == (1720, 172, 180)
    assert (closed.park_discounts_cents, closed.payout_cents) == (park_part, 1720 - 172 + park_part)
    assert closed.payout_cents == 1720 + 180 - 172 - (180 - park_part)   # list-price sales - commission - its share
