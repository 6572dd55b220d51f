"""API keys of third parties: create (the secret is shown once), list, revoke; and the Actor a key becomes.

A key is 32 random bytes (256 bits) from `secrets`, so the store keeps only its
SHA-256: a slow password hash (argon2, bcrypt) protects guessable secrets
against a stolen database, and a random 256-bit secret is not guessable; a
plain SHA-256 lets each request find its key by one indexed lookup.
"""

import hashlib
import secrets

from parkcard.services.errors import Refusal
from parkcard.services.inputs import checked
from parkcard.services.privileges import PARK_ADMIN, SCOPES, Actor, requires, scope_privileges
from parkcard.store import audited

SECRET_PREFIX = "pk_"       # tells a ParkCard key apart in a config file or a leaked log
SECRET_BYTES = 32


def secret_hash(secret):
    """The SHA-256 the store keeps of an API key's secret."""
    return hashlib.sha256(secret.encode()).digest()


def checked_scopes(scopes):
    """The scope names, sorted and unique; Refusal(unknown_scope) for a name that is none of SCOPES."""
    scopes = sorted(set(scopes))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        if not unknown:
            raise Refusal("unknown_scope", "no scope: give one or more of %(scopes)s", scopes=", ".join(sorted(SCOPES)))
        raise Refusal("unknown_scope", "unknown scope %(unknown)s: give one or more of %(scopes)s",
                      unknown=", ".join(unknown), scopes=", ".join(sorted(SCOPES)))
    return scopes


@requires(PARK_ADMIN)
async def create(store, actor, name, scopes):
    """Create an API key with these scopes; return (ApiKey id, the secret: shown once, never stored)."""
    name = checked(name=name)
    scopes = checked_scopes(scopes)
    secret = SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    try:
        key_id = await store.add_api_key(name, secret_hash(secret), " ".join(scopes), actor.name, audit=audited(
            actor.name, "apikey.create", when=lambda _: True, name=name, scopes=scopes))
    except ValueError as exc:
        raise Refusal("api_key_exists", "%(problem)s: pick another name (see `parkcard apikey list`)",
                      problem=exc) from None
    return key_id, secret


@requires(PARK_ADMIN)
async def listing(store, actor):
    """Every API key, revoked ones included (no secrets: the store has none)."""
    return await store.api_keys()


@requires(PARK_ADMIN)
async def revoke(store, actor, name):
    """Revoke an API key: no request is accepted with it from now on. Return False if it was revoked already."""
    try:
        return await store.revoke_api_key(name, actor.name, audit=audited(actor.name, "apikey.revoke", name=name))
    except ValueError as exc:
        raise Refusal("api_key_not_found", "%(problem)s (see `parkcard apikey list`)", problem=exc) from None


async def authenticate(store, secret, tell=None):
    """The ApiKeyActor of a valid, unrevoked secret; Refusal(unauthenticated) otherwise."""
    if not secret:
        raise Refusal("unauthenticated", "no API key was sent: send `Authorization: Bearer <key>` with a key "
                                         "from `parkcard apikey create`")
    key = await store.api_key_by_hash(secret_hash(secret))
    if key is None or key.revoked_at is not None:
        raise Refusal("unauthenticated", "the API key is unknown or revoked: send `Authorization: Bearer <key>` "
                                         "with a key from `parkcard apikey create`")
    return ApiKeyActor(key, tell)


class ApiKeyActor(Actor):
    """A third party calling through its API key: audited as `api:<name>`, allowed what its scopes map to."""

    def __init__(self, key, tell=None):
        super().__init__("api:%s" % key.name, tell, roles=())     # no operator role: its scopes alone
        self.key = key
        self.scopes = key.scopes.split()
        self.privileges = scope_privileges(self.scopes)

    def check(self, privilege):
        """Refusal(scope_missing) unless one of the key's scopes grants privilege."""
        self.checked.append(privilege)
        if privilege not in self.privileges:
            needed = sorted(s for s, granted in SCOPES.items() if privilege in granted)
            raise Refusal("scope_missing", "API key %(key)r may not do this: it needs scope %(needed)s (it has "
                                           "%(scopes)s)", key=self.key.name, needed=" or ".join(needed),
                          scopes=", ".join(self.scopes))
