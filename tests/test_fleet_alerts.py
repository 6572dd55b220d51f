"""Clock skew and reboot loops from real status frames (Mosquitto, the hub's fleet ingest): a terminal whose
clock is minutes off and one that boots again and again are alerts beside the others; a good clock and a
single reboot are none."""

import asyncio
import time
import zoneinfo

import pytest

from protocol import frames, hub_frames
from protocol import topics

from parkcard.domain import fleet_alerts
from parkcard.services import monitoring
from parkcard.services.privileges import Actor
from parkcard_devkit.testing import connect_booth, start_hub

pytestmark = [pytest.mark.broker]

UTC = zoneinfo.ZoneInfo("UTC")


def status_at(term, boot, time_s, uptime_s=30):
    """Publish a retained online status stamped with time_s by the terminal's clock."""
    term.counter += 1
    body = hub_frames.Status(boot=boot, online=1, uptime_s=uptime_s).encode()
    return term.publish(frames.encode(term.frame_mac, frames.T_STATUS, term.terminal_id, term.counter, int(time_s),
                                      body), leaf=topics.STATUS, retain=True)


def boots(hub):
    """{terminal id: the boot counter of its last status applied} of the booths."""
    return {tid: hub.registry.get(tid).status_boot for tid in (5, 6, 7)}


def test_a_wrong_clock_and_a_reboot_loop_are_fleet_alerts(tmp_path, broker):
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        try:
            good = await connect_booth(hub, broker.host, broker.port, 5, "good booth")
            skewed = await connect_booth(hub, broker.host, broker.port, 6, "slow clock")
            looping = await connect_booth(hub, broker.host, broker.port, 7, "reboot loop")
            try:
                status_at(good, 1, time.time())
                status_at(skewed, 1, time.time() - 10 * fleet_alerts.CLOCK_SKEW_MAX_S)
                for boot in range(1, 2 + fleet_alerts.REBOOT_LOOP_BOOTS):      # boot after boot, each seconds in
                    status_at(looping, boot, time.time(), uptime_s=5)
                last_boot = 1 + fleet_alerts.REBOOT_LOOP_BOOTS
                await hub.wait_until(lambda: boots(hub) == {5: 1, 6: 1, 7: last_boot})
                found = await monitoring.fleet_alerts(hub.storage, Actor("tec"), time.time(), UTC)
                rows = {t.id: t for t in await hub.storage.terminals()}
                status_at(good, 2, time.time())          # one reboot is no loop
                await hub.wait_until(lambda: boots(hub) == {5: 2, 6: 1, 7: last_boot})
                after_one = await monitoring.fleet_alerts(hub.storage, Actor("tec"), time.time(), UTC)
            finally:
                for term in (good, skewed, looping):
                    term.close()
        finally:
            await hub.stop()
        return found, rows, after_one

    found, rows, after_one = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert found[5] == [] and after_one[5] == []
    assert found[6] == [fleet_alerts.CLOCK_SKEW]
    assert rows[6].clock_skew_s <= -10 * fleet_alerts.CLOCK_SKEW_MAX_S + 5
    assert found[7] == [fleet_alerts.REBOOT_LOOP]
    assert (rows[7].status_boot, rows[7].boot_window_first) == (1 + fleet_alerts.REBOOT_LOOP_BOOTS, 1)
