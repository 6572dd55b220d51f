"""Operator web sessions kept in the store: a login survives a hub restart (over real HTTP, the hub's own
server), the store keeps only the token's hash, a logout and a disabled account end the kept session, and an
expired one is no session; the store's session methods on both backends."""

import asyncio
import re
import time

import httpx
import pytest

from parkcard.services import operators
from parkcard.services.privileges import Actor
from parkcard.store import open_store
from parkcard.web.sessions import SESSION_COOKIE, token_digest
from web_kit import HubThread

pytestmark = [pytest.mark.broker]

PASSWORD = "correct horse battery"


def log_in(client, user):
    """Log in through the login form (its double-submit CSRF token); return the session token."""
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = client.post("/login", data={"csrf": csrf, "username": user, "password": PASSWORD, "next": "/fleet"})
    assert answer.status_code == 303 and answer.headers["location"] == "/fleet"
    return client.cookies[SESSION_COOKIE]


def client_for(hub, token=None):
    client = httpx.Client(base_url=hub.url, follow_redirects=False)
    if token is not None:
        client.cookies.set(SESSION_COOKIE, token)
    return client


def logged_in(client):
    """True when the session cookie opens the fleet page."""
    answer = client.get("/fleet")
    return answer.status_code == 200 and "Live fleet" in answer.text


def test_a_session_survives_a_hub_restart_and_a_logout_or_a_disabled_account_ends_it(tmp_path, broker):
    db = str(tmp_path / "hub.db")
    hub = HubThread(db, broker).start()
    try:
        for name in ("ada", "tec"):
            hub.call(operators.create_operator(hub.hub.storage, Actor("setup"), name, PASSWORD, ["admin"]))
        with client_for(hub) as client:
            ada = log_in(client, "ada")
            csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/fleet").text).group(1)
        with client_for(hub) as client:
            tec = log_in(client, "tec")
        kept = hub.call(hub.hub.storage.web_session(token_digest(ada), time.time()))
        assert kept.username == "ada" and kept.token_sha256 != ada.encode()
        assert ada not in open(db, "rb").read().decode("latin-1")        # the token itself is never stored
    finally:
        hub.stop()
    hub = HubThread(db, broker).start()         # a new hub process: nothing of the sessions in memory
    try:
        with client_for(hub, ada) as client:
            assert logged_in(client)
            # A form of a page shown before the restart still carries the session's CSRF token.
            assert client.post("/language", data={"csrf": csrf, "locale": "zh_Hans", "next": "/fleet"}
                               ).status_code == 303
            assert "实时" in client.get("/fleet").text
            assert client.post("/logout", data={"csrf": csrf}).status_code == 303
        with client_for(hub, ada) as client:
            assert not logged_in(client)        # logged out: the kept session went too
        with client_for(hub, tec) as client:
            assert logged_in(client)
        hub.call(operators.disable_operator(hub.hub.storage, Actor("setup"), "tec"))
    finally:
        hub.stop()
    hub = HubThread(db, broker).start()
    try:
        with client_for(hub, tec) as client:
            assert not logged_in(client)        # its account was disabled: the session is refused and ended
        assert hub.call(hub.hub.storage.web_session(token_digest(tec), time.time())) is None
    finally:
        hub.stop()


def test_an_expired_kept_session_is_no_session(tmp_path, broker):
    hub = HubThread(str(tmp_path / "hub.db"), broker).start()
    try:
        hub.call(operators.create_operator(hub.hub.storage, Actor("setup"), "ada", PASSWORD, ["admin"]))
        token = "a-token-from-yesterday"
        storage = hub.hub.storage
        hub.call(storage.keep_web_session(token_digest(token), "ada", "csrf", "en", time.time() - 1))
        with client_for(hub, token) as client:
            assert not logged_in(client)
        with client_for(hub) as client:
            log_in(client, "ada")               # a new login clears what expired
        assert hub.call(storage.end_web_sessions(expired_before=time.time())) == 0
    finally:
        hub.stop()


def test_the_store_keeps_finds_and_ends_sessions_on_every_backend(store_url):
    async def scenario():
        store = await open_store(store_url)
        try:
            now = time.time()
            for token, user, expires in (("t-ann", "ann", now + 60), ("t-ann2", "ann", now + 60),
                                         ("t-bob", "bob", now + 60), ("t-old", "bob", now - 1)):
                await store.keep_web_session(token_digest(token), user, "csrf-" + token, "en", expires)
            found = await store.web_session(token_digest("t-ann"), now)
            await store.set_web_session_locale(token_digest("t-ann"), "zh_Hans")
            changed = await store.web_session(token_digest("t-ann"), now)
            expired = await store.web_session(token_digest("t-old"), now)
            dropped = await store.end_web_sessions(expired_before=now)
            ended = await store.end_web_sessions(token_sha256=token_digest("t-bob"))
            of_ann = await store.end_web_sessions(username="ann")
            left = [await store.web_session(token_digest(t), now) for t in ("t-ann", "t-ann2", "t-bob")]
        finally:
            await store.close()
        return found, changed, expired, dropped, ended, of_ann, left

    found, changed, expired, dropped, ended, of_ann, left = asyncio.run(scenario())
    assert (found.username, found.csrf, found.locale) == ("ann", "csrf-t-ann", "en")
    assert changed.locale == "zh_Hans" and expired is None
    assert (dropped, ended, of_ann, left) == (1, 1, 2, [None, None, None])
