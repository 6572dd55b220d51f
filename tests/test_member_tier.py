"""A member's new tier reaches the card through the desk's write path, on SQLite and PostgreSQL: Mosquitto, the
desk firmware on a virtual reader. The hub keeps what tier the card itself holds (booths give that tier's
discounts offline) until the desk writes the new one: with the card's next top-up or refund, or on its own
(`card write-tier`); the cashier sees it pending until then, and a card pulled mid-write is written by the same
command again."""

import asyncio

import pytest

from protocol import card as C
from sim.cards import card_balance
from terminal.rc522 import RC522Error

from parkcard.services import members as member_service
from parkcard.services.desk.query import card_on_desk
from parkcard.services.privileges import ServiceError
from parkcard_devkit.park_sim import DESK_TERMINAL_ID, ParkSim
from test_desk import at_desk, balanced, cli

pytestmark = [pytest.mark.broker, pytest.mark.slow]

STOCK_UID = bytes.fromhex("04aabbccdd0909")


def _tier_on(sim, virtual):
    """The tier the card's own info block holds."""
    keys = C.CardKeys(sim.park_keys, virtual.uid)
    return C.CardInfo.decode(bytes(virtual.blocks[C.INFO_BLOCK]), keys).tier


def test_a_members_new_tier_is_written_onto_the_card_at_the_desk_and_pending_until_then(tmp_path, store_url,
                                                                                        monkeypatch):
    db = str(tmp_path / "park" / "parkcard.db") if store_url.endswith(".db") else store_url

    async def scenario(sim):
        storage, manager = sim.hub.storage, sim.hub.actor("test:manager")
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        member = await member_service.register(storage, manager, "Li Wei", "+86 138-0000-1234")
        card = await sim.new_card(STOCK_UID)
        issued, _ = await at_desk(sim, card, desk.issue("tier-issue", 5000, member_no=member.member_no))
        card_no = issued.card_no
        assert _tier_on(sim, card) == C.TIER_STANDARD
        assert await member_service.tiers_pending(storage, manager, member.member_no) == {}

        told = await asyncio.to_thread(cli, "--db", db, "member", "tier", member.member_no, "gold")
        assert told.exit_code == 0 and "card %d still holds the old tier" % card_no in told.output, told.output
        assert await member_service.tiers_pending(storage, manager, member.member_no) == {card_no: C.TIER_STANDARD}
        shown = await asyncio.to_thread(cli, "--db", db, "card", "show", card_no)
        assert "the card itself still holds tier 0: tier 2 is written onto it" in shown.output, shown.output
        seen, _ = await at_desk(sim, card, card_on_desk(desk.path, manager, DESK_TERMINAL_ID))
        assert (seen.tier, seen.tier_pending) == (C.TIER_STANDARD, C.TIER_GOLD)     # what the cashier is shown
        # The next top-up carries the tier onto the card (its gold bonus too), after the slot.
        topped, _ = await at_desk(sim, card, desk.top_up("tier-top-up", 1000))
        assert topped.bonus_cents == 100 and card_balance(sim.park_keys, card).balance_cents == 5000 + 1100
        assert _tier_on(sim, card) == C.TIER_GOLD
        assert await member_service.tiers_pending(storage, manager) == {}

        # Back to silver: written on its own, no value moved; a card pulled mid-write is written by the retry.
        await member_service.set_tier(storage, manager, member.member_no, "silver")
        assert await member_service.tiers_pending(storage, manager) == {card_no: C.TIER_GOLD}
        reader = sim.desk.terminal.card_writer.reader
        write_block = reader.write_block

        def pulled(block, data):
            raise RC522Error("the card left during the write")
        monkeypatch.setattr(reader, "write_block", pulled)
        torn, _ = await at_desk(sim, card, desk.write_tier("tier-write"))
        monkeypatch.setattr(reader, "write_block", write_block)
        assert isinstance(torn, ServiceError) and "run the same command again" in str(torn)
        assert _tier_on(sim, card) == C.TIER_GOLD
        assert await member_service.tiers_pending(storage, manager) == {card_no: C.TIER_GOLD}
        before = card_balance(sim.park_keys, card)
        written, _ = await at_desk(sim, card, desk.write_tier("tier-write"))
        assert (written.written, written.tier_before, written.tier) == (True, C.TIER_GOLD, C.TIER_SILVER)
        assert _tier_on(sim, card) == C.TIER_SILVER
        after = card_balance(sim.park_keys, card)
        assert (after.counter, after.balance_cents) == (before.counter, before.balance_cents)
        assert await member_service.tiers_pending(storage, manager) == {}
        again, _ = await at_desk(sim, card, desk.write_tier("tier-write-2"))
        assert again.written is False                   # it holds the hub's tier: nothing to write

        # From the cashier's command line: queued for the running hub, which writes it at the desk.
        await member_service.set_tier(storage, manager, member.member_no, "gold")
        by_cli, _ = await at_desk(sim, card, asyncio.to_thread(
            cli, "--db", db, "card", "write-tier", "--desk", DESK_TERMINAL_ID, "--op-id", "tier-cli", "--wait", 30))
        assert by_cli.exit_code == 0 and "card %d on desk %d carries its member's tier now" % (
            card_no, DESK_TERMINAL_ID) in by_cli.output, by_cli.output
        assert _tier_on(sim, card) == C.TIER_GOLD
        assert await member_service.tiers_pending(storage, manager) == {}
        await balanced(sim)

    async def go():
        db = None if store_url.endswith(".db") else store_url
        async with ParkSim(tmp_path / "park", terminals=1, cards=1, db=db) as sim:
            await scenario(sim)
    asyncio.run(asyncio.wait_for(go(), 300))
