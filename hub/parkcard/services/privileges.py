"""Who asks for an operation (Actor) and the privilege each service requires (`@requires`).

Every service takes the store and an Actor. The actor names the person or
process in the audit log, is asked `check(privilege)` before the operation
runs, and announces what the operation committed (`told`) to whatever runs
beside it: the CLI sends the running hub a notice (parkcard.transport.notify),
the running hub acts on the change itself.

`check` allows everything today: operator accounts and roles (cashier,
finance, technician, admin) arrive with the desk issue and plug in here,
without touching the services.
"""

import functools

# Privileges, by what they allow (the roles that hold them come with operator accounts).
PARK_ADMIN = "park.admin"               # park settings, secrets
MERCHANTS = "merchants.manage"
TERMINALS = "terminals.manage"          # register, lock, unlock, de-authorise, authorise
BLACKLIST = "blacklist.manage"
ADMIN_CARDS = "admin_cards.manage"
SETTLEMENT = "settlement.close"


class ServiceError(ValueError):
    """An operation that cannot be done as asked; the message says what went wrong and what to do."""


class Actor:
    """The operator (or process) behind an operation: its audit name, its privileges, where changes are told."""

    def __init__(self, name, tell=None):
        """tell: async (news, terminal_id) -> bool, called after a commit with parkcard.transport.notify names."""
        self.name = name
        self._tell = tell
        self.checked = []       # the privileges asked for, in order (what a role check will decide on)

    def check(self, privilege):
        """Raise ServiceError when the actor may not do what privilege allows (no roles yet: allows all)."""
        self.checked.append(privilege)

    async def told(self, *news, terminal_id=None):
        """Announce committed changes; return True when something running was told."""
        if self._tell is None:
            return False
        return await self._tell(frozenset(news), terminal_id)


def requires(privilege):
    """Decorate a service `async fn(store, actor, ...)`: the actor's privilege is checked before it runs."""
    def decorate(fn):
        @functools.wraps(fn)
        async def checked(store, actor, *args, **kwargs):
            actor.check(privilege)
            return await fn(store, actor, *args, **kwargs)
        checked.privilege = privilege
        return checked
    return decorate


# -- API key scopes (parkcard.services.apikeys): each names the privileges a third party's key holds.
FLEET_READ = "fleet.read"               # terminals, alarms, quarantine
MERCHANTS_READ = "merchants.read"
BLACKLIST_READ = "blacklist.read"
SETTLEMENT_READ = "settlement.read"
PARK_READ = "park.read"                 # the park's currency: every key holds it (amounts need it)

SCOPES = {
    "fleet:read": frozenset({FLEET_READ}),
    "terminals:control": frozenset({FLEET_READ, TERMINALS}),
    "merchants:read": frozenset({MERCHANTS_READ}),
    "merchants:write": frozenset({MERCHANTS_READ, MERCHANTS}),
    "blacklist:read": frozenset({BLACKLIST_READ}),
    "blacklist:write": frozenset({BLACKLIST_READ, BLACKLIST}),
    "settlement:read": frozenset({SETTLEMENT_READ}),
    "settlement:close": frozenset({SETTLEMENT_READ, SETTLEMENT}),
}


def scope_privileges(scopes):
    """The privileges an API key with these scope names holds."""
    return frozenset({PARK_READ}).union(*(SCOPES[s] for s in scopes))
