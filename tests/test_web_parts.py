"""The web app's parts without a browser: message catalogs complete, login limits, sessions, the live
beacon, the SVG chart, sales per day and the card trace on every store backend (a merchant login sees its own
sales only)."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages import pofile

from protocol import record as R

from parkcard.app import Hub
from parkcard.domain import fleet_alerts
from parkcard.services import park, reports, sales, settlement, trace
from parkcard.services.privileges import Actor, ServiceError
from parkcard.web import charts, i18n
from parkcard.web.live import Beacon
from parkcard.web.sessions import FORM_ANSWERS_MAX, IN_FLIGHT, LoginLimiter, Sessions
from parkcard_devkit.testing import MERCHANT_ICE, MERCHANT_PARK
from test_hub_cli import DAY_S, _populate

WEB = Path(i18n.__file__).parent


class Clock:
    """A clock a test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def extracted_msgids(tmp_path):
    """Every message of the templates and routes, as pybabel extracts them (babel.cfg)."""
    pot = tmp_path / "messages.pot"
    subprocess.run([str(Path(sys.executable).with_name("pybabel")), "extract", "-F", "babel.cfg", "-k", "gettext:3",
                    "-k", "N_", "--no-location", "-o", str(pot), "."], cwd=WEB, check=True, capture_output=True)
    with open(pot, "rb") as f:
        return {m.id for m in pofile.read_po(f) if m.id}


def test_every_message_of_the_app_has_its_chinese_translation(tmp_path):
    wanted = extracted_msgids(tmp_path)
    assert {"Live fleet", "Log in", "Wrong user name or password: check both and try again."} <= wanted
    with open(i18n.catalog_path("zh_Hans"), "rb") as f:
        catalog = pofile.read_po(f)
    translated = {m.id for m in catalog if m.id and m.string}
    assert wanted - translated == set()
    zh = i18n.translations("zh_Hans")
    assert zh.gettext("Live fleet") == "终端实时状态"
    assert zh.gettext("Terminal %(id)d is locked: it forgets its card keys.") % {"id": 7} == "终端 7 已锁定：它将清除卡密钥。"
    assert i18n.translations("en").gettext("Live fleet") == "Live fleet"


def test_the_browser_language_is_negotiated():
    assert i18n.negotiate("zh-CN,zh;q=0.9,en;q=0.8") == "zh_Hans"
    assert i18n.negotiate("en-GB,en;q=0.9") == "en"
    assert i18n.negotiate("fr-FR") == i18n.negotiate(None) == "en"


def test_login_limits_per_user_and_per_address_end_with_their_window():
    clock = Clock()
    limiter = LoginLimiter(clock, window_s=300, per_user_max=3, per_address_max=5)
    for _ in range(3):
        assert limiter.wait_s("ann", "10.0.0.1") == 0
        limiter.failed("ann", "10.0.0.1")
    assert limiter.wait_s("ann", "10.0.0.9") == 301          # the user is limited from any address
    assert limiter.wait_s("bob", "10.0.0.1") == 0            # the address is not, yet
    limiter.failed("bob", "10.0.0.1")
    limiter.failed("cy", "10.0.0.1")
    assert limiter.wait_s("dan", "10.0.0.1") == 301          # 5 failures from the address
    clock.now += 300
    assert limiter.wait_s("ann", "10.0.0.1") == 0
    limiter.failed("ann", "10.0.0.1")
    limiter.succeeded("ann")
    assert limiter._recent(("user", "ann"), clock.now) == ()
    assert limiter.refusals == 2


def test_login_limits_remember_a_bounded_number_of_names_and_count_what_they_forget():
    limiter = LoginLimiter(Clock(), keys_max=4)
    for n in range(4):
        limiter.failed("user%d" % n, "10.0.0.%d" % n)
    assert limiter.forgotten == 4 and len(limiter._failures) == 4


def test_a_session_is_new_at_each_login_ends_at_logout_and_when_idle():
    clock = Clock()
    sessions = Sessions(clock, idle_s=60, sessions_max=2)
    ann = sessions.start(Actor("ann"), "en")
    again = sessions.start(Actor("ann"), "en")
    assert ann.token != again.token and ann.csrf != again.csrf
    assert sessions.get(ann.token) is ann
    sessions.end(ann.token)
    assert sessions.get(ann.token) is None
    clock.now += 61
    assert sessions.get(again.token) is None
    for name in ("a", "b", "c"):
        sessions.start(Actor(name), "en")
    assert sessions.evicted == 1
    assert sessions.get("") is None and sessions.get(None) is None


def test_a_form_token_is_answered_once_and_a_session_remembers_a_bounded_number():
    session = Sessions().start(Actor("cas", roles=("cashier",)), "en")
    assert session.claim("form-1") is None
    assert session.claim("form-1") == IN_FLIGHT          # sent again while the first is being done
    session.answer("form-1", "ok", "Credit 1 is granted.")
    assert session.claim("form-1") == ("ok", "Credit 1 is granted.")
    for n in range(FORM_ANSWERS_MAX):
        assert session.claim("other-%d" % n) is None
    assert len(session.answers) == FORM_ANSWERS_MAX and "form-1" not in session.answers


def test_the_beacon_wakes_a_waiter_when_bumped_and_returns_after_its_timeout():
    async def run():
        beacon = Beacon()
        waiter = asyncio.create_task(beacon.wait(0, 30))
        await asyncio.sleep(0)
        beacon.bump()
        assert await waiter == 1
        assert await beacon.wait(0, 30) == 1        # already past what the caller saw: at once
        assert await beacon.wait(1, 0.01) == 1      # nothing new: after the timeout
    asyncio.run(run())


def test_the_chart_stacks_each_merchant_per_day_and_escapes_names():
    svg = charts.stacked_bars(["2026-07-01", "2026-07-02"], [("Ice <cream>", [100, 0]), ("Tea", [50, 200])],
                              lambda v: "CNY %d" % v, "Sales")
    assert svg.count("<rect ") == 3          # no bar for a zero
    assert "Ice &lt;cream&gt;" in svg and "<cream>" not in svg
    assert 'aria-label="Sales"' in svg and "CNY 200" in svg
    assert charts.legend([("a", []), ("b", [])]) == [("a", charts.COLOURS[0]), ("b", charts.COLOURS[1])]
    assert svg.count('class="grid"') == 3 and "CNY 100" in svg      # a scale to the highest bar: 0, 100, 200


def test_an_empty_chart_shows_its_zero_line_only_not_a_scale_of_sales_there_are_none_of():
    svg = charts.stacked_bars(["2026-07-01", "2026-07-02"], [("Tea", [0, 0])], lambda v: "CNY %d" % v, "Sales")
    assert "<rect " not in svg and svg.count('class="grid"') == 1 and "CNY 1" not in svg and "CNY 0" in svg


def test_sales_per_day_are_the_parks_days_and_a_merchant_login_sees_its_own(store_url):
    asyncio.run(_populate(store_url))

    async def read():
        hub = await Hub(store_url).open()
        try:
            admin = Actor("admin")
            day = DAY_S // 86400
            utc = await sales.by_day(hub.storage, admin, DAY_S, DAY_S + 86400)
            # Two hours behind UTC, the 01:00 UTC sale falls on the park's day before.
            behind = await sales.by_day(hub.storage, admin, DAY_S - 86400, DAY_S + 86400, -7200)
            booth = Actor("booth", roles=("finance",))
            booth.merchant_id = MERCHANT_PARK
            other = await sales.by_day(hub.storage, booth, DAY_S, DAY_S + 86400)
            booth.merchant_id = MERCHANT_ICE
            own = await sales.by_day(hub.storage, booth, DAY_S, DAY_S + 86400)
            with pytest.raises(ServiceError, match="1 to 366 days"):
                await sales.by_day(hub.storage, admin, DAY_S, DAY_S - 1)
            with pytest.raises(ServiceError, match="may not"):
                await sales.by_day(hub.storage, Actor("desk", roles=("cashier",)), DAY_S, DAY_S + 1)
            return day, utc, behind, other, own
        finally:
            await hub.stop()

    day, utc, behind, other, own = asyncio.run(read())
    assert [tuple(r) for r in utc] == [(day, MERCHANT_ICE, "Ice cream", 1250 + 999, 999, 3)]
    assert [tuple(r) for r in behind] == [(day - 1, MERCHANT_ICE, "Ice cream", 1250, 0, 1),
                                          (day, MERCHANT_ICE, "Ice cream", 999, 999, 2)]
    assert other == [] and own == utc


def test_a_merchant_login_lists_only_its_own_settlements(store_url):
    asyncio.run(_populate(store_url))

    async def read():
        hub = await Hub(store_url).open()
        try:
            await settlement.close_period(hub.storage, Actor("fin"), None, DAY_S, DAY_S + 86400)
            booth = Actor("booth", roles=("merchant",))
            booth.merchant_id = MERCHANT_PARK
            theirs = await settlement.listing(hub.storage, booth)
            ice = [s for s in await settlement.listing(hub.storage, Actor("fin")) if s.merchant_id == MERCHANT_ICE]
            with pytest.raises(ServiceError, match="no settlement"):
                await settlement.one(hub.storage, booth, ice[0].id)
            booth.merchant_id = MERCHANT_ICE
            return theirs, await settlement.listing(hub.storage, booth), ice
        finally:
            await hub.stop()

    park_desk, own, ice = asyncio.run(read())
    assert [s.merchant_id for s in park_desk] == [MERCHANT_PARK]
    assert own == ice and len(ice) == 1


def test_the_card_trace_lists_where_and_when_a_card_was_used_newest_first(store_url):
    asyncio.run(_populate(store_url))

    async def read():
        hub = await Hub(store_url).open()
        try:
            card_no = (await hub.storage.card_numbers())[0]
            uses = await trace.card_trace(hub.storage, Actor("tec", roles=("technician",)), card_no)
            newest = await trace.card_trace(hub.storage, Actor("admin"), card_no, limit=1)
            with pytest.raises(ServiceError, match="not a card of this park"):
                await trace.card_trace(hub.storage, Actor("admin"), card_no + 1000)
            with pytest.raises(ServiceError, match="may not"):
                await trace.card_trace(hub.storage, Actor("ice", roles=("merchant",)), card_no)
            return uses, newest
        finally:
            await hub.stop()

    uses, newest = asyncio.run(read())
    booth = [(u.time_s, u.terminal_id, u.terminal_name, u.merchant_id, u.seq, u.kind, u.amount_cents,
              u.balance_after_cents) for u in uses if u.terminal_id == 5]
    assert booth == [(DAY_S + 3 * 3600, 5, "ice booth", MERCHANT_ICE, 3, R.KIND_REFUND, 999, 8750),
                     (DAY_S + 2 * 3600, 5, "ice booth", MERCHANT_ICE, 2, R.KIND_DEBIT, 999, 7751),
                     (DAY_S + 3600, 5, "ice booth", MERCHANT_ICE, 1, R.KIND_DEBIT, 1250, 8750)]
    assert (uses[-1].kind, uses[-1].time_s, uses[-1].amount_cents) == (R.KIND_ISSUE, DAY_S, 10000)    # at the desk
    assert len(uses) == 4 and newest == uses[:1]


def test_reports_sum_sales_per_terminal_top_ups_with_their_bonus_and_what_the_park_owes(store_url):
    asyncio.run(_populate(store_url))

    async def read():
        hub = await Hub(store_url).open()
        try:
            admin = Actor("admin")
            per_terminal = await reports.sales_by_terminal(hub.storage, admin, DAY_S, DAY_S + 86400)
            park_desk = Actor("desk", roles=("merchant",))
            park_desk.merchant_id = MERCHANT_PARK
            theirs = await reports.sales_by_terminal(hub.storage, park_desk, DAY_S, DAY_S + 86400)
            top_ups = await reports.top_ups_by_day(hub.storage, admin, DAY_S - 86400, DAY_S + 86400)
            owed = await reports.liabilities(hub.storage, admin)
            with pytest.raises(ServiceError, match="may not"):
                await reports.liabilities(hub.storage, park_desk)
            with pytest.raises(ServiceError, match="1 to 366 days"):
                await reports.top_ups_by_day(hub.storage, admin, DAY_S, DAY_S)
            return per_terminal, theirs, top_ups, owed
        finally:
            await hub.stop()

    per_terminal, theirs, top_ups, owed = asyncio.run(read())
    assert [tuple(r) for r in per_terminal] == [(5, "ice booth", MERCHANT_ICE, "Ice cream", 1250 + 999, 999, 3)]
    assert theirs == []
    assert [tuple(r) for r in top_ups] == [(DAY_S // 86400, 10000, 0, 1)]       # the card's issue, no bonus
    # the card holds 10000 - 1250 - 999 + 999; the booth is owed its sales less 10 % commission, less the refund
    assert owed.cards_cents == 8750 and owed.pending_credits_cents == 0 and owed.holds_cents == 0
    assert owed.merchants_cents == (1250 - 125) + (999 - 100) - (999 - 100)


class _Row:
    """The fields of a terminals row the alert rules read."""

    def __init__(self, queue_depth=None, oldest_unsynced_age_s=None, last_seq=None, acked_upto=0, clock_skew_s=None,
                 status_boot=None, boot_window_first=None):
        self.queue_depth, self.oldest_unsynced_age_s = queue_depth, oldest_unsynced_age_s
        self.last_seq, self.acked_upto = last_seq, acked_upto
        self.clock_skew_s, self.status_boot, self.boot_window_first = clock_skew_s, status_boot, boot_window_first


def test_fleet_alerts_follow_the_opening_hours_the_queue_the_sequence_and_the_conflicts():
    day = (9 * 60, 18 * 60)
    night = (22 * 60, 2 * 60)           # open across midnight
    assert fleet_alerts.is_open(day, 9 * 60) and not fleet_alerts.is_open(day, 18 * 60)
    assert fleet_alerts.is_open(night, 23 * 60) and fleet_alerts.is_open(night, 60)
    assert not fleet_alerts.is_open(night, 12 * 60) and not fleet_alerts.is_open(None, 12 * 60)
    quiet = _Row(queue_depth=3, oldest_unsynced_age_s=20, last_seq=10, acked_upto=7)
    assert fleet_alerts.alerts(quiet, True, True, 0) == []
    assert fleet_alerts.alerts(quiet, False, False, 0) == []          # offline while closed: no alert
    assert fleet_alerts.alerts(quiet, False, True, 1) == [fleet_alerts.OFFLINE_OPEN, fleet_alerts.CONFLICT]
    assert fleet_alerts.alerts(_Row(queue_depth=fleet_alerts.QUEUE_LAG_RECORDS), True, True, 0) == [
        fleet_alerts.LAGGING]
    assert fleet_alerts.alerts(_Row(oldest_unsynced_age_s=fleet_alerts.QUEUE_LAG_AGE_S), True, True, 0) == [
        fleet_alerts.LAGGING]
    # the terminal counts 2 waiting after seq 10, so it holds the hub acknowledged 8; the hub has 5
    assert fleet_alerts.alerts(_Row(queue_depth=2, last_seq=10, acked_upto=5), True, True, 0) == [
        fleet_alerts.SEQ_GAP]
    behind = -fleet_alerts.CLOCK_SKEW_MAX_S - 1
    assert fleet_alerts.alerts(_Row(clock_skew_s=behind), True, True, 0) == [fleet_alerts.CLOCK_SKEW]
    assert fleet_alerts.alerts(_Row(clock_skew_s=fleet_alerts.CLOCK_SKEW_MAX_S), True, True, 0) == []
    looping = _Row(status_boot=7 + fleet_alerts.REBOOT_LOOP_BOOTS, boot_window_first=7)
    assert fleet_alerts.alerts(looping, True, True, 0) == [fleet_alerts.REBOOT_LOOP]
    assert fleet_alerts.alerts(_Row(status_boot=9, boot_window_first=7), True, True, 0) == []
    with pytest.raises(fleet_alerts.OpeningHoursError):
        fleet_alerts.checked_hours(9 * 60, 9 * 60)


def test_a_boot_window_runs_for_its_length_and_starts_again_after_it_or_when_the_counter_goes_back():
    window = fleet_alerts.boot_window((None, None), 5, 1000.0)
    assert window == (1000.0, 5)
    assert fleet_alerts.boot_window(window, 8, 1000.0 + fleet_alerts.REBOOT_LOOP_WINDOW_S) == (1000.0, 5)
    assert fleet_alerts.boot_window(window, 8, 1001.0 + fleet_alerts.REBOOT_LOOP_WINDOW_S) == (
        1001.0 + fleet_alerts.REBOOT_LOOP_WINDOW_S, 8)
    assert fleet_alerts.boot_window(window, 1, 1010.0) == (1010.0, 1)        # wiped and counting again
    assert fleet_alerts.clock_skew_s(1_700_000_300, 1_700_000_000.9) == 300
    with pytest.raises(fleet_alerts.OpeningHoursError):
        fleet_alerts.checked_hours(0, 24 * 60)


def test_the_opening_hours_are_a_park_setting_on_every_store_backend(store_url):
    async def scenario():
        hub = await Hub(store_url).open()
        try:
            admin = Actor("admin")
            before = await park.opening_hours(hub.storage, admin)
            changed = await park.set_opening_hours(hub.storage, admin, 9 * 60, 18 * 60)
            again = await park.set_opening_hours(hub.storage, admin, 9 * 60, 18 * 60)
            with pytest.raises(ServiceError, match="different times"):
                await park.set_opening_hours(hub.storage, admin, 60, 60)
            with pytest.raises(ServiceError, match="may not"):
                await park.set_opening_hours(hub.storage, Actor("tec", roles=("technician",)), 0, 60)
            hours = await park.opening_hours(hub.storage, Actor("cas", roles=("cashier",)))
            await park.set_opening_hours(hub.storage, admin, None, None)
            cleared = await park.opening_hours(hub.storage, admin)
            actions = [e["action"] for e in hub.storage.oplog.entries()]
            return before, changed, again, hours, cleared, actions
        finally:
            await hub.stop()

    before, changed, again, hours, cleared, actions = asyncio.run(scenario())
    assert (before, changed, again, hours, cleared) == (None, True, False, (540, 1080), None)
    assert actions.count("park.opening_hours") == 2
