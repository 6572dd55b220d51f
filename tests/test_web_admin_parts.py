"""The manager's pages' parts without a browser: every record kind has one name, in both languages, and the
operators' sessions end when idle and at their absolute expiry, both park settings (the clock injected)."""

import asyncio

import pytest

from protocol import record as R

from parkcard.domain import record_kinds
from parkcard.services import park
from parkcard.services.privileges import Actor, ServiceError
from parkcard.store import open_store
from parkcard.store.rows import SessionLimits
from parkcard.web import i18n
from parkcard.web.sessions import Sessions, token_digest


def test_every_record_kind_has_a_name_in_both_languages_and_an_unknown_one_shows_its_number():
    assert set(record_kinds.KIND_NAMES) == set(R.KINDS)
    zh = i18n.translations("zh_Hans")
    for kind in R.KINDS:
        english = record_kinds.kind_name(kind)
        assert english and not english.isdigit()
        assert record_kinds.kind_name(kind, zh.gettext) != english, kind      # translated, not left in English
    assert record_kinds.kind_name(R.KIND_SHIFT) == "staff shift at a booth"
    assert record_kinds.kind_name(R.KIND_REVERSAL, zh.gettext) == "商户冲正"
    assert record_kinds.kind_name(99) == "record kind 99"
    assert record_kinds.kind_name(99, zh.gettext) == "记录类型 99"


class Clock:
    """A clock a test moves by hand (the sessions' monotonic clock, or the wall clock)."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_a_busy_session_ends_at_its_absolute_limit_and_an_unused_one_when_idle():
    clock = Clock()
    sessions = Sessions(clock, idle_s=600, max_s=3600)
    busy = sessions.start(Actor("ann"), "en")
    quiet = sessions.start(Actor("bob"), "en")
    for _ in range(7):                      # a request every 500 s keeps it from idling
        clock.now += 500
        assert sessions.get(busy.token) is busy
    assert sessions.get(quiet.token) is None            # 3500 s without a request
    clock.now += 101                        # 3601 s after the login: over, busy as it is
    assert sessions.get(busy.token) is None


def test_sessions_follow_the_parks_limits_as_they_change():
    clock = Clock()
    sessions = Sessions(clock)
    assert (sessions.idle_s, sessions.max_s) == (8 * 3600, 8 * 3600)
    ann = sessions.start(Actor("ann"), "en")
    clock.now += 1800
    assert sessions.get(ann.token) is ann
    sessions.set_limits(SessionLimits(idle_s=900, max_s=3600))
    clock.now += 901
    assert sessions.get(ann.token) is None


def _in_store(store_url, scenario):
    async def run():
        store = await open_store(store_url)
        try:
            return await scenario(store)
        finally:
            await store.close()
    return asyncio.run(run())


def test_the_session_limits_are_a_park_setting_checked_audited_and_refused_to_a_cashier(store_url):
    async def scenario(store):
        assert await park.session_limits(store) == SessionLimits(8 * 3600, 8 * 3600)
        admin = Actor("ada")
        assert await park.set_session_limits(store, admin, idle_s=1800, max_s=36000) == (SessionLimits(1800, 36000),
                                                                                          True)
        assert await park.set_session_limits(store, admin, idle_s=1800) == (SessionLimits(1800, 36000), False)
        for idle_s, max_s in ((60, None), (None, 600), (3600, 8 * 86400), ("30", None)):
            with pytest.raises(ServiceError, match="nothing changed"):
                await park.set_session_limits(store, admin, idle_s=idle_s, max_s=max_s)
        with pytest.raises(ServiceError, match="may not do this"):
            await park.set_session_limits(store, Actor("cas", roles=("cashier",)), idle_s=3600)
        entries = [e for e in store.oplog.entries() if e["action"] == "park.session_limits"]
        return await park.session_limits(store), entries
    limits, entries = _in_store(store_url, scenario)
    assert limits == SessionLimits(1800, 36000)
    assert len(entries) == 1 and entries[0]["actor"] == "ada"


def test_a_kept_session_found_after_a_restart_still_ends_at_the_absolute_limit_from_its_login(store_url):
    async def actor_of(name):
        return Actor(name)

    async def scenario(store):
        wall = Clock(now=2_000_000_000.0)
        before = Sessions(Clock(), max_s=3600)
        ann = before.start(Actor("ann"), "en")
        await before.keep(store, ann, wall_clock=wall)
        kept = await store.web_session(token_digest(ann.token), wall())
        wall.now = kept.created_at + 1800           # the hub restarts half an hour after the login
        after = Sessions(Clock(), max_s=3600)
        found = await after.find(store, ann.token, actor_of, wall_clock=wall)
        assert found is not None and found.actor.name == "ann"
        after.clock.now += 1799
        assert after.get(ann.token) is found
        after.clock.now += 2
        assert after.get(ann.token) is None         # an hour after the login, not after the restart
        shorter = Sessions(Clock(), max_s=1200)     # the limit was shortened meanwhile: the kept one is over
        assert await shorter.find(store, ann.token, actor_of, wall_clock=wall) is None
        return await store.web_session(token_digest(ann.token), wall())
    assert _in_store(store_url, scenario) is None


def test_the_session_limits_are_shown_and_set_from_the_cli_and_a_bad_one_is_refused_in_words(tmp_path):
    from click.testing import CliRunner

    from parkcard.cli import main
    db = ["--db", str(tmp_path / "hub.db")]
    out = CliRunner().invoke(main, db + ["park", "sessions", "--idle-minutes", "45", "--max-hours", "12"])
    assert out.exit_code == 0, out.output
    assert out.output.strip() == ("web sessions end after 45 minutes without use, and 720 minutes after the login "
                                  "at the latest")
    out = CliRunner().invoke(main, db + ["park", "sessions", "--max-hours", "200"])
    assert out.exit_code != 0 and "at most 7 days" in out.output and "Traceback" not in out.output
    out = CliRunner().invoke(main, db + ["park", "sessions"])
    assert "after 45 minutes without use, and 720 minutes" in out.output
