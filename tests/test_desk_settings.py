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


def test_the_parks_offline_rules_are_what_terminals_are_sent_and_what_a_replacement_holds_by(store_url):
    from protocol import frames

    async def scenario():
        hub = await Hub(store_url).open()
        admin, cashier = Actor("admin"), Actor("cas", roles=("cashier",))
        try:
            await hub.add_merchant(2, "Ice cream", 1000)
            await hub.register_terminal(5, 2, frames.ROLE_POS, "booth 5")
            state = hub.registry.get(5)

            def sent_config(payload):
                return frames.Config.decode(frames.decode(state.frame_mac, payload).body)
            before = sent_config(await hub.downlink.config(5))
            fresh = await park.replacement_settings(hub.storage)
            changed = await park.set_offline_rules(hub.storage, admin, 12 * 3600, 15000)
            same = await park.set_offline_rules(hub.storage, admin, 12 * 3600, 15000)
            after = sent_config(await hub.downlink.config(5))
            for args, says in (((3600, 100, 1800), "release after at least the offline window"),
                               ((8 * 86400, 100), "at most 604800 s"), ((0, 100), "offline window"),
                               ((3600, -1), "daily cap")):
                with pytest.raises(ServiceError, match=says):
                    await park.set_offline_rules(hub.storage, admin, *args)
            with pytest.raises(ServiceError, match="may not"):
                await park.set_offline_rules(hub.storage, cashier, 3600, 100)
            late = await park.set_offline_rules(hub.storage, admin, 12 * 3600, 15000, 2 * 86400)
            return before, fresh, changed, same, after, await park.replacement_settings(hub.storage), late
        finally:
            await hub.stop()

    before, fresh, changed, same, after, settings, late = asyncio.run(scenario())
    assert (before.max_offline_s, before.daily_cap_cents) == (86400, 20000)        # the terminals' defaults
    assert (fresh.offline_window_s, fresh.daily_cap_cents, fresh.release_after_s) == (86400, 20000, 86400)
    assert (changed.offline_window_s, changed.offline_daily_cap_cents, changed.offline_rules_version) == (
        43200, 15000, 1)
    assert same == changed                                  # nothing changed: the version stays
    assert (after.max_offline_s, after.daily_cap_cents, after.version) == (43200, 15000, before.version + 1)
    assert (settings.offline_window_s, settings.daily_cap_cents, settings.release_after_s) == (43200, 15000, 172800)
    assert late.offline_rules_version == 2


def test_park_offline_rules_from_the_cli(tmp_path):
    from click.testing import CliRunner

    from parkcard.cli import main

    db = str(tmp_path / "hub.db")

    def cli(*args):
        return CliRunner().invoke(main, ["--db", db, *[str(a) for a in args]])
    shown = cli("park", "offline-rules")
    assert shown.exit_code == 0 and "serve offline for 24 h, a card spends at most CNY 200.00 a day" in shown.output
    set_ = cli("park", "offline-rules", "--window-hours", 12, "--daily-cap", "150")
    assert set_.exit_code == 0 and "for 12 h" in set_.output and "CNY 150.00" in set_.output
    assert "released 12 h after its loss report" in set_.output
    bad = cli("park", "offline-rules", "--release-after-hours", 1)
    assert bad.exit_code == 2 and "release after at least the offline window: nothing changed" in bad.output
    assert "Traceback" not in bad.output
