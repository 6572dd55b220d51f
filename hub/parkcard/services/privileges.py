"""Who asks for an operation (Actor) and the privilege each service requires (`@requires`).

Every service takes the store and an Actor. The actor names the person or
process in the audit log, is asked `check(privilege)` before the operation
runs, and announces what the operation committed (`told`) to whatever runs
beside it: the CLI sends the running hub a notice (parkcard.transport.notify),
the running hub acts on the change itself.

`check` refuses a privilege none of the actor's roles holds (ROLE_PRIVILEGES,
a role -> privileges table). An actor made without roles is the LOCAL_ADMIN:
the person at the hub's own machine (the CLI on the hub's database) or the
hub process itself, who may do everything the hub offers, as before operator
accounts existed; operators who log in get the roles of their account.
"""

import functools

from parkcard.domain.explained import Explained

# Privileges, by what they allow.
PARK_ADMIN = "park.admin"               # park settings, secrets
MERCHANTS = "merchants.manage"
TERMINALS = "terminals.manage"          # register, lock, unlock, de-authorise, authorise
BLACKLIST = "blacklist.manage"
ADMIN_CARDS = "admin_cards.manage"
SETTLEMENT = "settlement.close"
CARD_QUERY = "cards.query"              # balance, status and history of a card
CARD_ISSUE = "cards.issue"
CARD_TOP_UP = "cards.top_up"
CARD_REFUND = "cards.refund"
CARD_RETURN = "cards.return"
CARD_LOSS = "cards.loss"                # report and un-report a loss
CARD_REPLACE = "cards.replace"          # move a lost card's balance to a new card
CARD_STOCK = "card_stock.manage"        # initialise blank cards, move stock between desks
MEMBERS = "members.manage"              # register members, change their tier
SHIFT = "shifts.own"                    # open and close one's own shift
SHIFTS_REVIEW = "shifts.review"         # every cashier's shifts and Z reports, over/short included
REPORTS = "reports.view"                # desk reports, liabilities, exports
TIERS = "tiers.manage"                  # tiers and refund rules (park configuration)
OPERATORS = "operators.manage"          # operator accounts and their roles
AUDIT = "audit.view"
FLEET_READ = "fleet.read"               # terminals, alarms, quarantine
MERCHANTS_READ = "merchants.read"
BLACKLIST_READ = "blacklist.read"
SETTLEMENT_READ = "settlement.read"
PARK_READ = "park.read"                 # the park's currency: every role and key holds it (amounts need it)
CREDITS_GRANT = "credits.grant"         # grant a card value it receives at its next tap; cancel one not yet sent
CREDITS_READ = "credits.read"
TICKETS = "tickets.manage"              # ticket products (park configuration)
TICKET_SELL = "tickets.sell"            # sell a ticket onto a card at the desk
GATES = "gates.manage"                  # gate configs, the areas' daily reset
OCCUPANCY = "occupancy.read"            # who is inside, passages, refusals
WEBHOOKS = "webhooks.manage"            # third parties' webhooks: register, list, remove

PRIVILEGES = (PARK_ADMIN, MERCHANTS, TERMINALS, BLACKLIST, ADMIN_CARDS, SETTLEMENT, CARD_QUERY, CARD_ISSUE,
              CARD_TOP_UP, CARD_REFUND, CARD_RETURN, CARD_LOSS, CARD_REPLACE, CARD_STOCK, MEMBERS, SHIFT,
              SHIFTS_REVIEW, REPORTS, TIERS, OPERATORS, AUDIT, FLEET_READ, MERCHANTS_READ, BLACKLIST_READ,
              SETTLEMENT_READ, PARK_READ, CREDITS_GRANT, CREDITS_READ, TICKETS, TICKET_SELL, GATES, OCCUPANCY,
              WEBHOOKS)

CASHIER = "cashier"
FINANCE = "finance"
TECHNICIAN = "technician"
MANAGER = "manager"
ADMIN = "admin"
MERCHANT = "merchant"           # a booth owner's login: its own merchant's sales and settlements only

_DESK = frozenset({CARD_QUERY, CARD_ISSUE, CARD_TOP_UP, CARD_STOCK, CARD_REFUND, CARD_RETURN, CARD_LOSS, MEMBERS,
                   SHIFT, PARK_READ, CREDITS_GRANT, CREDITS_READ, TICKET_SELL})
# What each role may do. A cashier serves holders at a desk (and stocks the blank cards it hands out);
# finance settles and reviews money but serves no card (who counts the money does not also move it); a
# technician runs terminals and card stock; a
# manager runs the park's day, including replacements (they move a balance with no payment) and the
# blacklist; an admin may do everything.
ROLE_PRIVILEGES = {
    CASHIER: _DESK,
    FINANCE: frozenset({SETTLEMENT, SETTLEMENT_READ, MERCHANTS_READ, SHIFTS_REVIEW, REPORTS, CARD_QUERY, AUDIT,
                        PARK_READ, CREDITS_READ}),
    TECHNICIAN: frozenset({TERMINALS, FLEET_READ, ADMIN_CARDS, CARD_STOCK, BLACKLIST, BLACKLIST_READ, CARD_QUERY,
                           PARK_READ, GATES, OCCUPANCY}),
    MANAGER: _DESK | {CARD_REPLACE, BLACKLIST, BLACKLIST_READ, MERCHANTS, MERCHANTS_READ, FLEET_READ,
                      SETTLEMENT_READ, SHIFTS_REVIEW, REPORTS, TIERS, AUDIT, TICKETS, GATES, OCCUPANCY},
    ADMIN: frozenset(PRIVILEGES),
    # Which merchant is the account's own (Operator.merchant_id); services that list sales or
    # settlements keep such an actor to it (Actor.merchant_id).
    MERCHANT: frozenset({SETTLEMENT_READ, MERCHANTS_READ, PARK_READ}),
}
ROLES = tuple(ROLE_PRIVILEGES)
LOCAL_ADMIN = (ADMIN,)          # the roles of an actor made without any: the hub's own machine


def privileges_of(roles):
    """Every privilege held by any of roles; ServiceError for a role the park does not have."""
    held = set()
    for role in roles:
        if role not in ROLE_PRIVILEGES:
            raise ServiceError("%(role)r is not a role: the roles are %(roles)s", role=role, roles=", ".join(ROLES))
        held |= ROLE_PRIVILEGES[role]
    return frozenset(held)


def roles_holding(privilege):
    """The roles that hold privilege, in ROLES order."""
    return tuple(role for role in ROLES if privilege in ROLE_PRIVILEGES[role])


class ServiceError(Explained):
    """An operation that cannot be done as asked; the message says what went wrong and what to do."""

    @classmethod
    def of(cls, exc):
        """The ServiceError that says what exc (a rule's refusal) says, in every language when exc is Explained."""
        return cls(exc.message, **exc.values) if isinstance(exc, Explained) else cls(str(exc))


class NotAllowed(ServiceError):
    """A privilege none of the actor's roles holds: who was refused, what was needed, which roles hold it."""

    def __init__(self, name, roles, privilege):
        self.name, self.roles, self.privilege = name, tuple(roles), privilege
        self.holders = roles_holding(privilege) or (ADMIN,)
        super().__init__("%s (%s) may not do this (%s): ask an operator with the role %s" % (
            name, ", ".join(self.roles) or "no role", privilege, " or ".join(self.holders)))


class Actor:
    """The operator (or process) behind an operation: its audit name, its privileges, where changes are told."""

    operator_id = None          # an operator account's id (parkcard.services.operators), else None
    merchant_id = None          # the one merchant a merchant login may see, else None (every merchant)

    def __init__(self, name, tell=None, roles=LOCAL_ADMIN):
        """tell: async (news, terminal_id) -> bool, called after a commit; roles: ROLES names (ServiceError if not)."""
        self.name = name
        self._tell = tell
        self.roles = tuple(roles)
        self.privileges = privileges_of(self.roles)
        self.checked = []       # the privileges asked for, in order, granted or not

    def check(self, privilege):
        """Raise ServiceError when none of the actor's roles holds privilege."""
        self.checked.append(privilege)
        if privilege not in self.privileges:
            raise NotAllowed(self.name, self.roles, privilege)

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

SCOPES = {
    "fleet:read": frozenset({FLEET_READ}),
    "terminals:control": frozenset({FLEET_READ, TERMINALS}),
    "merchants:read": frozenset({MERCHANTS_READ}),
    "merchants:write": frozenset({MERCHANTS_READ, MERCHANTS}),
    "blacklist:read": frozenset({BLACKLIST_READ}),
    "blacklist:write": frozenset({BLACKLIST_READ, BLACKLIST}),
    "settlement:read": frozenset({SETTLEMENT_READ}),
    "settlement:close": frozenset({SETTLEMENT_READ, SETTLEMENT}),
    "credits:read": frozenset({CREDITS_READ}),
    "credits:write": frozenset({CREDITS_READ, CREDITS_GRANT}),     # a third party's top-up lands as a credit
    "cards:read": frozenset({CARD_QUERY}),                          # a card's trace
    "reports:read": frozenset({REPORTS, SETTLEMENT_READ}),          # sales, top-ups, liabilities
    # Each cashier's Z reports, with their drawer's over/short: a person's figures, apart from the park's totals.
    "reports:z": frozenset({SHIFTS_REVIEW}),
    "gates:read": frozenset({OCCUPANCY}),                           # who is inside
    "rules:write": frozenset({TIERS}),                              # consumption rules (消费规则), tier discounts
    "webhooks:manage": frozenset({WEBHOOKS}),                       # where the park's events are sent
    "desk:operate": frozenset({CARD_QUERY, CARD_ISSUE, CARD_TOP_UP, CARD_STOCK}),  # serve cards at a desk terminal
    "cards:loss": frozenset({CARD_QUERY, CARD_LOSS}),              # report a card lost, and found again
    "desk:replace": frozenset({CARD_QUERY, CARD_REPLACE}),         # a lost card's balance onto a stock card
}


def scope_privileges(scopes):
    """The privileges an API key with these scope names holds."""
    return frozenset({PARK_READ}).union(*(SCOPES[s] for s in scopes))
