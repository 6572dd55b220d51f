"""Consumption rules end to end: set with the hub's service, pushed over a real Mosquitto (TLS, ACL) in the
T_CONFIG tail of each booth and ride, enforced by the real firmware on virtual readers: one refused sale per
rule, its reason on the display, nothing charged; the sale the rules allow settles and the ledger balances."""

import asyncio

import pytest

from protocol import card as C
from protocol.config import ROLE_POS
from sim.cards import card_balance
from terminal import wallet as w

from parkcard.domain.spend_rules import MERCHANT
from parkcard.services import spend_rules
from parkcard_devkit.park_sim import ParkSim

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_each_rule_pushed_to_a_booth_refuses_its_sale_with_the_reason_shown(tmp_path):
    async def scenario(sim):
        booth = next(t for t in sim.terminals if t.role == ROLE_POS)
        gold = next(v for v in sim.visitors if v.tier == C.TIER_GOLD)
        standard = next(v for v in sim.visitors if v.tier == C.TIER_STANDARD)
        admin = sim.hub.actor("test:manager")
        seen = []

        async def rule(**fields):
            """Replace the booth's merchant rule and wait until the booth holds it."""
            if seen:
                await spend_rules.clear_rule(sim.hub.storage, admin, MERCHANT, booth.merchant_id)
            version, _rule = await spend_rules.set_rule(sim.hub.storage, admin, MERCHANT, booth.merchant_id, **fields)
            await sim.wait_for(lambda: booth.wallet.spend_rules is not None
                               and booth.wallet.spend_rules.rules.version == version, 30, "the rules did not arrive")
            seen.append(version)

        async def refused(visitor, cents, reason, screen, **sale):
            before = card_balance(sim.park_keys, visitor.virtual).balance_cents
            result = booth.tap(visitor.virtual, cents, **sale)
            assert (result.ok, result.reason) == (False, reason)
            assert booth.board.display().lines == ("REFUSED", screen)
            assert card_balance(sim.park_keys, visitor.virtual).balance_cents == before
            await asyncio.sleep(0)

        await rule(tiers=1 << C.TIER_GOLD)
        await refused(standard, 100, w.NOT_ALLOWED, "Card not valid")
        await rule(member_tier=C.TIER_GOLD)
        await refused(standard, 100, w.MEMBERS_ONLY, "Members only", member_only=True)
        await rule(tx_cap_cents=500)
        await refused(gold, 501, w.OVER_TX_CAP, "Over limit")
        await rule(daily_cap_cents=600)
        assert booth.tap(gold.virtual, 400).ok
        await refused(gold, 201, w.OVER_DAILY_CAP, "Daily limit")
        await rule(offline_cents=300)
        await sim.drain(60)         # the 4.00 is at the hub: it does not count against the offline limit
        booth.relay.cut()
        await sim.wait_for(lambda: not booth.terminal.client.connected, 30, "the booth did not notice the cut")
        assert booth.tap(gold.virtual, 200).ok
        await refused(gold, 101, w.OFFLINE_LIMIT, "Offline limit")
        booth.relay.restore()
        await sim.drain(60)
        assert await sim.card_mismatches() == []
        report = await sim.ledger_report()
        assert report.ok, "\n".join(report.lines())
        return seen

    async def go():
        async with ParkSim(tmp_path / "park", terminals=1, cards=5, seed=3) as sim:
            return await scenario(sim)
    versions = asyncio.run(go())
    assert versions == [1, 3, 5, 7, 9]     # each change a version: a clear and a set
