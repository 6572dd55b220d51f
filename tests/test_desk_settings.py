"""The park's desk settings on every store backend: card deposits, refund rules and the tier table, audited,
refused with a message that says what to do, read back as set (SPEC.md §4.12)."""

import asyncio

import pytest

from parkcard.app import Hub
from parkcard.domain.tiers import DEFAULT_TIERS
from parkcard.services import park, tiers
from parkcard.services.privileges import Actor, ServiceError
from parkcard.store.rows import DeskSettings


def test_deposits_refund_rules_and_tiers_are_park_settings_on_every_backend(store_url):
    async def scenario():
        hub = await Hub(store_url).open()
        admin, cashier = Actor("admin"), Actor("cas", roles=("cashier",))
        try:
            fresh = await park.desk_settings(hub.storage, cashier), list(await tiers.park_tiers(hub.storage))
            await park.set_card_deposit(hub.storage, admin, "member", 2000)
            await park.set_card_deposit(hub.storage, admin, "temporary", 1000)
            ruled = await park.set_refund_rules(hub.storage, admin, 500, 150, 50)
            for bad, says in ((("member", 2050), "whole units of 100"), (("member", 25600), "from 0 to 25500"),
                              (("gift", 100), "none of the park's")):
                with pytest.raises(ServiceError, match=says):
                    await park.set_card_deposit(hub.storage, admin, *bad)
            with pytest.raises(ServiceError, match="basis points"):
                await park.set_refund_rules(hub.storage, admin, 0, 10001, 0)
            with pytest.raises(ServiceError, match="may not"):
                await park.set_card_deposit(hub.storage, cashier, "member", 0)
            gold = await tiers.change_tier(hub.storage, admin, 2, bonus_bps=500, steps=[[10000, 800]])
            vip = await tiers.add_tier(hub.storage, admin, 5, "vip", bonus_bps=1500)
            for args, says in (((2, "again"), "exists"), ((6, "GOLD"), "already called"), ((16, "x"), "0..15")):
                with pytest.raises(ServiceError, match=says):
                    await tiers.add_tier(hub.storage, admin, *args)
            with pytest.raises(ServiceError, match="no tier has code 7"):
                await tiers.change_tier(hub.storage, admin, 7, bonus_bps=1)
            table = await tiers.park_tiers(hub.storage)
            actions = [e["action"] for e in hub.storage.oplog.entries()]
            return fresh, ruled, gold, vip, table, actions
        finally:
            await hub.stop()

    fresh, ruled, gold, vip, table, actions = asyncio.run(scenario())
    assert fresh == (DeskSettings(), list(DEFAULT_TIERS))       # seeded: the desk's bonus as it always was
    assert ruled == DeskSettings(2000, 1000, 500, 150, 50)
    assert (gold.name, gold.bonus_bps, table.bonus_cents(2, 10000)) == ("gold", 500, 500 + 800)
    assert (vip.code, table.bonus_cents(5, 1000)) == (5, 150)
    assert [actions.count(a) for a in ("park.deposit", "park.refund_rules", "tier.add", "tier.set")] == [2, 1, 1, 1]
