"""The park's time zone (parkcard.domain.park_time, `parkcard park timezone`): park days and daily resets on the
park's clock across DST changes, the zone a gate is sent, and the nightly reset of occupancy, on SQLite and
PostgreSQL."""

import asyncio

import pytest

from protocol import frames, ticket as t

from parkcard.domain import park_time as pt
from parkcard.domain import tickets as rules
from parkcard.services import occupancy, park
from parkcard.services.privileges import Actor, ServiceError
from parkcard.store import store_for
from parkcard.store.rows import GateRow

BERLIN = pt.zone("Europe/Berlin")
SHANGHAI = pt.zone("Asia/Shanghai")
SPRING_2026 = 1774746000      # 2026-03-29 01:00 UTC: Berlin's clocks go from 02:00 to 03:00
AUTUMN_2026 = 1792890000      # 2026-10-25 01:00 UTC: from 03:00 back to 02:00
RESET_0230 = 2 * 3600 + 1800  # a reset inside the hour either change skips or repeats


def test_a_zone_is_an_iana_name_this_machine_knows():
    with pytest.raises(pt.TimeZoneError, match="IANA name such as Asia/Shanghai"):
        pt.zone("Mars/Olympus")
    with pytest.raises(pt.TimeZoneError):
        pt.zone(" Asia/Shanghai")
    assert pt.zone_fields(SHANGHAI, SPRING_2026) == (8 * 3600, 0, 8 * 3600)
    assert pt.zone_fields(BERLIN, SPRING_2026 - 10 * 86400) == (3600, SPRING_2026, 7200)
    assert pt.zone_fields(BERLIN, SPRING_2026) == (7200, AUTUMN_2026, 3600)


def test_in_shanghai_the_park_day_turns_at_local_midnight_not_at_0800():
    day = 20541                                         # 2026-03-29
    assert pt.day_bounds(SHANGHAI, 0, day) == (day * 86400 - 8 * 3600, (day + 1) * 86400 - 8 * 3600)
    assert pt.park_day(SHANGHAI, 0, day * 86400 - 8 * 3600 - 1) == day - 1
    assert pt.park_day(SHANGHAI, 0, day * 86400 + 7 * 3600) == day     # 15:00 local: still the same day


def test_across_berlins_changes_a_park_day_is_23_or_25_hours_and_never_goes_back():
    # spring: 02:30 does not exist on the 29th, the day turns at the change (03:00 CEST)
    assert pt.day_bounds(BERLIN, RESET_0230, 20541) == (SPRING_2026, SPRING_2026 + 84600)
    assert pt.day_bounds(BERLIN, RESET_0230, 20540)[1] - pt.day_bounds(BERLIN, RESET_0230, 20540)[0] == 84600
    # autumn: 02:30 comes twice on the 25th; the day turns at the first, the second does not reopen the 24th
    start, end = pt.day_bounds(BERLIN, RESET_0230, 20751)
    assert (start, end - start) == (AUTUMN_2026 - 1800, 25 * 3600)
    assert pt.park_day(BERLIN, RESET_0230, AUTUMN_2026 + 1800) == 20751      # the second 02:30
    assert pt.local_text(BERLIN, start) == "2026-10-25 02:30 CEST"


@pytest.mark.parametrize("sent_at", [SPRING_2026 - 5 * 86400, SPRING_2026 - 1, AUTUMN_2026 - 40 * 86400])
def test_a_gate_counts_every_hour_into_the_same_day_as_the_hub(sent_at):
    """A gate holds the zone fields of its last config; the hub counts from zoneinfo: they agree, by the hour."""
    for reset_s in (0, RESET_0230, 4 * 3600):
        offset_s, change, next_offset_s = pt.zone_fields(BERLIN, sent_at)
        gate = t.GateConfig(reset_s=reset_s, products=[t.GateProduct(1)], utc_offset_s=offset_s,
                            next_change_s=change, next_offset_s=next_offset_s)
        for time_s in range(sent_at, min(change + 3 * 86400, sent_at + 200 * 86400), 1800):
            assert gate.park_day(time_s) == pt.park_day(BERLIN, reset_s, time_s), (reset_s, time_s)


def test_the_nightly_reset_is_due_once_per_park_day_and_caught_up_after_a_restart():
    areas = {1: RESET_0230, 2: 0}
    day_start = pt.day_start_s(BERLIN, RESET_0230, 20541)
    assert pt.due_resets(areas, {}, BERLIN, day_start) == {1: SPRING_2026, 2: pt.day_start_s(BERLIN, 0, 20541)}
    done = {1: SPRING_2026, 2: pt.day_start_s(BERLIN, 0, 20541)}
    assert pt.due_resets(areas, done, BERLIN, day_start + 3600) == {}
    next_day = pt.day_start_s(BERLIN, RESET_0230, 20542)
    assert pt.due_resets({1: RESET_0230}, done, BERLIN, next_day - 1) == {}
    # the hub was down for two days: it resets once, at the last reset instant
    assert pt.due_resets({1: RESET_0230}, done, BERLIN, next_day + 86400 + 5) == {1: next_day + 86400}


def _actor():
    return Actor("test")


def test_the_time_zone_is_stored_audited_and_reaches_the_gates_config(store_url):
    async def scenario():
        store = await store_for(store_url).open()
        try:
            actor = _actor()
            assert await park.time_zone(store, actor) == "UTC"
            with pytest.raises(ServiceError, match="not a time zone.*nothing changed"):
                await park.set_time_zone(store, actor, "Europe/Berlín")
            assert await park.set_time_zone(store, actor, "Asia/Shanghai") == ("Asia/Shanghai", True)
            assert await park.set_time_zone(store, actor, "Asia/Shanghai") == ("Asia/Shanghai", False)
            assert await park.time_zone(store, actor) == "Asia/Shanghai"
            zone = pt.zone_fields(await park.zone_of(store), SPRING_2026)
            version, tail = rules.gate_tail(GateRow(41, t.DIRECTION_ENTRY, 1, 0, 0, 0, (1,), 3),
                                            {1: rules.ProductRule(t.TYPE_DAY, 0, 1, 0, 0, 0, 0, 0, 0)}, zone)
            gate = t.GateConfig.decode(tail)
            assert (gate.utc_offset_s, gate.next_change_s, gate.version) == (8 * 3600, 0, version) and version != 3
            assert await park.today(store, 20541 * 86400 - 8 * 3600) == 20541
        finally:
            await store.close()
    asyncio.run(scenario())


def test_the_scheduled_reset_is_recorded_once_per_area_and_day_across_a_dst_change(store_url):
    async def scenario():
        store = await store_for(store_url).open()
        try:
            actor = _actor()
            await park.set_time_zone(store, actor, "Europe/Berlin")
            await store.add_merchant(2, "Gates", 0)
            for terminal_id, area in ((41, 1), (42, 2)):
                await store.add_terminal(terminal_id, 2, frames.ROLE_GATE, bytes(32), "gate %d" % terminal_id)
                await store.set_gate(terminal_id, t.DIRECTION_ENTRY, area, 0, 0, RESET_0230, [1])
            assert await occupancy.reset_due(store, actor, SPRING_2026 - 1) == {
                1: SPRING_2026 - 84600, 2: SPRING_2026 - 84600}
            assert await occupancy.reset_due(store, actor, SPRING_2026 - 1) == {}
            # the spring change skips 02:30: both areas reset at the change itself
            assert await occupancy.reset_due(store, actor, SPRING_2026 + 60) == {1: SPRING_2026, 2: SPRING_2026}
            assert (await occupancy.occupancy(store, actor)).resets == {1: SPRING_2026, 2: SPRING_2026}
            assert await occupancy.reset_due(store, actor, SPRING_2026 + 84600 - 1) == {}
            assert await occupancy.reset_due(store, actor, SPRING_2026 + 84600) == {1: SPRING_2026 + 84600,
                                                                                    2: SPRING_2026 + 84600}
        finally:
            await store.close()
    asyncio.run(scenario())


@pytest.mark.broker
def test_the_web_app_shows_times_in_the_stored_zone_unless_told_another(tmp_path, broker):
    from parkcard.api.server import ApiServer
    from parkcard.web.pages import zone_shown
    from parkcard_devkit.testing import start_hub

    async def zones_served(db, time_zone):
        """The zone the pages show before and after the park's zone changes under the running hub."""
        api = ApiServer(port=0, time_zone=time_zone)
        hub = await start_hub(db, broker.host, broker.port, api=api)
        try:
            await hub.wait_until(lambda: api.app is not None, 30)
            web = api.app.state.web
            before = await zone_shown(web, _actor())
            await park.set_time_zone(hub.storage, _actor(), "America/Los_Angeles")
            return before, await zone_shown(web, _actor())
        finally:
            await hub.stop()

    async def scenario():
        db = str(tmp_path / "hub.db")
        store = await store_for(db).open()
        await park.set_time_zone(store, _actor(), "Asia/Shanghai")
        await store.close()
        assert await zones_served(db, None) == ("Asia/Shanghai", "America/Los_Angeles")
        assert await zones_served(db, "Europe/Berlin") == ("Europe/Berlin", "Europe/Berlin")
    asyncio.run(scenario())
