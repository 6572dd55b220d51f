"""API keys and idempotency keys in the store and their services, on every backend (no HTTP)."""

import pytest

from parkcard.services import apikeys
from parkcard.services.errors import Refusal
from parkcard.services.privileges import BLACKLIST, FLEET_READ, SETTLEMENT, Actor
from parkcard.store import audited
from test_store_contract import run

pytestmark = pytest.mark.api


def test_keys_are_stored_hashed_found_by_hash_and_revoked_once(store_url):
    async def scenario(store):
        admin = Actor("cli:admin")
        key_id, secret = await apikeys.create(store, admin, "ticketing", ["fleet:read", "blacklist:write"])
        (row,) = await store.api_keys()
        assert (row.id, row.name, row.scopes, row.created_by, row.revoked_at) == (
            key_id, "ticketing", "blacklist:write fleet:read", "cli:admin", None)
        assert row.secret_sha256 == apikeys.secret_hash(secret) and secret.encode() not in repr(row).encode()
        with pytest.raises(Refusal) as taken:
            await apikeys.create(store, admin, "ticketing", ["fleet:read"])
        assert taken.value.code == "api_key_exists"
        with pytest.raises(Refusal) as unknown:
            await apikeys.create(store, admin, "other", ["money:print"])
        assert unknown.value.code == "unknown_scope"

        actor = await apikeys.authenticate(store, secret)
        assert actor.name == "api:ticketing"
        actor.check(FLEET_READ)
        actor.check(BLACKLIST)
        with pytest.raises(Refusal) as short:
            actor.check(SETTLEMENT)
        assert short.value.code == "scope_missing" and "settlement:close" in str(short.value)
        for wrong, said in ((None, "no API key was sent"), ("", "no API key was sent"),
                            (secret + "x", "unknown or revoked")):
            with pytest.raises(Refusal) as refused:
                await apikeys.authenticate(store, wrong)
            assert refused.value.code == "unauthenticated" and said in str(refused.value)

        assert await apikeys.revoke(store, admin, "ticketing") is True
        assert await apikeys.revoke(store, admin, "ticketing") is False
        with pytest.raises(Refusal) as missing:
            await apikeys.revoke(store, admin, "nobody")
        assert missing.value.code == "api_key_not_found"
        with pytest.raises(Refusal) as revoked:
            await apikeys.authenticate(store, secret)
        assert revoked.value.code == "unauthenticated"
    run(store_url, scenario)


def test_the_first_response_to_an_idempotency_key_is_kept(store_url):
    async def scenario(store):
        key_id = await store.add_api_key("k", b"\x01" * 32, "fleet:read", "cli:admin",
                                         audit=audited("cli:admin", "apikey.create", when=lambda _: True, name="k"))
        assert await store.idempotent_response(key_id, "a") is None
        first = await store.keep_idempotent_response(key_id, "a", b"\x02" * 32, 200, '{"changed": true}')
        assert (first.request_sha256, first.status, first.body) == (b"\x02" * 32, 200, '{"changed": true}')
        # A second answer to the same key (two hubs' race) does not replace the first.
        second = await store.keep_idempotent_response(key_id, "a", b"\x03" * 32, 422, "{}")
        assert second == first == await store.idempotent_response(key_id, "a")
        other = await store.add_api_key("k2", b"\x04" * 32, "fleet:read", "cli:admin")
        assert await store.idempotent_response(other, "a") is None
    run(store_url, scenario)
