"""Operator accounts: create, list, change roles or password, disable; and the login that makes an Actor.

Every desk, finance, technician and manager action is done by an operator
whose roles decide what the services allow (parkcard.services.privileges).
Passwords are kept as Argon2id hashes (parkcard.security.passwords); a hash
made with older parameters is replaced at the next good login. An account is
disabled, never deleted, so the audit log's names stay someone's. Once the
park has an admin account, the last active one can neither be disabled nor
lose the role, so operators can always be managed from a login (the hub's own
machine, the local admin, can in any case).
"""

import asyncio
import re
import time

from parkcard.security import passwords
from parkcard.services.errors import Refusal
from parkcard.services.inputs import checked
from parkcard.services.privileges import ADMIN, MERCHANT, OPERATORS, ROLES, Actor, requires
from parkcard.store import audited

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
WRONG_LOGIN = "wrong user name or password: check both and try again (an admin can reset a password)"

# Verified when the user name is unknown, so a login takes as long whether the name exists or not.
_UNKNOWN_USER_HASH = passwords.hash_password("no operator has this password")


def checked_username(username):
    """The login name in lower case; Refusal(bad_username) unless it is 1-32 of a-z 0-9 . _ - (first a-z 0-9)."""
    name = (username or "").strip().lower()
    if not USERNAME.match(name):
        raise Refusal("bad_username", "%(name)r is not a login name: use 1 to 32 lower-case letters, digits, '.', "
                                      "'_' or '-', starting with a letter or digit", name=username)
    return name


def checked_roles(roles, merchant_id):
    """The role names, unique and in ROLES order; Refusal for none, an unknown one, or a merchant mismatch."""
    given = set(roles or ())
    unknown = sorted(given - set(ROLES))
    if unknown or not given:
        if not unknown:
            raise Refusal("unknown_role", "no role: give one or more of %(roles)s", roles=", ".join(ROLES))
        raise Refusal("unknown_role", "unknown role %(unknown)s: give one or more of %(roles)s",
                      unknown=", ".join(unknown), roles=", ".join(ROLES))
    if (MERCHANT in given) != (merchant_id is not None):
        raise Refusal("merchant_role", "a merchant login needs the role merchant and its merchant (--merchant), "
                                       "and only a merchant login has a merchant")
    if MERCHANT in given and len(given) > 1:
        raise Refusal("merchant_role", "a merchant login has the role merchant only: make a separate account "
                                       "for park work")
    return [r for r in ROLES if r in given]


# Argon2 costs tens of milliseconds of CPU by design: it runs in a worker thread, never on the hub's loop.
async def _hashed(password, username):
    """The Argon2id hash of a new password; Refusal(weak_password) with the policy's advice."""
    try:
        return await asyncio.to_thread(passwords.hash_password, password, username)
    except passwords.PasswordPolicyError as exc:
        raise Refusal.of(exc, "weak_password") from None


async def _verified(stored_hash, password):
    """True when password matches stored_hash (verified in a worker thread)."""
    return await asyncio.to_thread(passwords.verify_password, stored_hash, password)


async def _existing(store, username):
    """The Operator named username; Refusal(operator_not_found) otherwise."""
    row = await store.operator(checked_username(username))
    if row is None:
        raise Refusal("operator_not_found", "there is no operator %(name)r (see `parkcard operator list`)",
                      name=username)
    return row


async def _keeps_an_admin(store, username):
    """Refusal(last_admin) when username is the park's last active admin account."""
    admins = [o.username for o in await store.operators() if o.active and ADMIN in o.roles.split()]
    if admins == [username]:
        raise Refusal("last_admin", "%(name)s is the park's last active admin: give another operator the role admin "
                                    "first", name=username)


@requires(OPERATORS)
async def create_operator(store, actor, username, password, roles, display_name=None, merchant_id=None):
    """Create an operator account with these roles; return its id."""
    username = checked_username(username)
    roles = checked_roles(roles, merchant_id)
    checked(merchant_id=merchant_id)
    display_name = checked(name=display_name) if display_name else None
    password_hash = await _hashed(password, username)
    try:
        return await store.add_operator(username, password_hash, " ".join(roles), actor.name, display_name,
                                        merchant_id, audit=audited(actor.name, "operator.create", when=lambda _: True,
                                                                   username=username, roles=roles,
                                                                   merchant_id=merchant_id))
    except ValueError as exc:
        raise Refusal("operator_exists" if "exists" in str(exc) else "merchant_not_found",
                      "%(problem)s (see `parkcard operator list` and `parkcard merchant list`)",
                      problem=exc) from None


@requires(OPERATORS)
async def list_operators(store, actor):
    """Every operator account, disabled ones included (the hashes stay in the store)."""
    return await store.operators()


@requires(OPERATORS)
async def set_roles(store, actor, username, roles):
    """Give an operator exactly these roles (its merchant, if any, stays)."""
    row = await _existing(store, username)
    roles = checked_roles(roles, row.merchant_id)
    if ADMIN not in roles:
        await _keeps_an_admin(store, row.username)
    await store.update_operator(row.username, roles=" ".join(roles), audit=audited(
        actor.name, "operator.roles", username=row.username, roles=roles, before=row.roles.split()))
    return roles


@requires(OPERATORS)
async def set_password(store, actor, username, password):
    """Set an operator's password (an admin's reset: the old one is not needed)."""
    row = await _existing(store, username)
    password_hash = await _hashed(password, row.username)
    await store.update_operator(row.username, password_hash=password_hash, password_changed_at=_now(),
                                audit=audited(actor.name, "operator.password", username=row.username))


async def change_own_password(store, operator, current, new):
    """An operator changes its own password, proving the current one (every role may: no privilege)."""
    if operator.operator_id is None:
        raise Refusal("not_an_operator", "only an operator login has a password to change: an admin resets "
                                         "others' with `parkcard operator passwd`")
    row = await _existing(store, operator.name)
    if not await _verified(row.password_hash, current):
        raise Refusal("wrong_login", "the current password is wrong: nothing was changed")
    await store.update_operator(row.username, password_hash=await _hashed(new, row.username), password_changed_at=_now(),
                                audit=audited(operator.name, "operator.password", username=row.username))


@requires(OPERATORS)
async def disable_operator(store, actor, username):
    """Disable an account: it may not log in from now on. Return False if it was disabled already."""
    row = await _existing(store, username)
    if not row.active:
        return False
    if row.username == actor.name:
        raise Refusal("own_account", "you cannot disable your own account: ask another admin")
    await _keeps_an_admin(store, row.username)
    await store.update_operator(row.username, active=0, audit=audited(actor.name, "operator.disable",
                                                                      username=row.username))
    return True


@requires(OPERATORS)
async def enable_operator(store, actor, username):
    """Enable a disabled account again. Return False if it was active already."""
    row = await _existing(store, username)
    if row.active:
        return False
    await store.update_operator(row.username, active=1, audit=audited(actor.name, "operator.enable",
                                                                      username=row.username))
    return True


async def authenticate(store, username, password, tell=None):
    """The OperatorActor of an active account whose password matches; Refusal(wrong_login) otherwise."""
    try:
        name = checked_username(username)
    except Refusal:
        name = None
    row = await store.operator(name) if name else None
    # The hash is verified even for an unknown name: a login takes as long whether the name exists or not.
    good = await _verified(row.password_hash if row else _UNKNOWN_USER_HASH, password or "")
    if row is None or not good:
        raise Refusal("wrong_login", WRONG_LOGIN)
    if not row.active:
        raise Refusal("operator_disabled", "the account %(name)s is disabled: ask an admin to enable it",
                      name=row.username)
    changes = dict(last_login_at=_now())
    if passwords.needs_rehash(row.password_hash):
        try:
            changes["password_hash"] = await asyncio.to_thread(passwords.hash_password, password, row.username)
        except passwords.PasswordPolicyError:
            pass        # a password set under an older policy: it stays until its owner changes it
    await store.update_operator(row.username, **changes)
    return OperatorActor(row, tell)


async def session_actor(store, username, tell=None):
    """The OperatorActor of a kept web session's account with its roles as they are now; None when the account is
    gone or disabled (the session then ends)."""
    row = await store.operator(username)
    return OperatorActor(row, tell) if row is not None and row.active else None


def _now():
    """Epoch seconds now."""
    return time.time()


class OperatorActor(Actor):
    """An operator who logged in: audited by login name, allowed what the account's roles hold."""

    def __init__(self, row, tell=None):
        super().__init__(row.username, tell, roles=row.roles.split())
        self.operator_id = row.id
        self.merchant_id = row.merchant_id
        self.display_name = row.display_name or row.username
