"""The operator roles and their privileges, as data; Actor.check refuses what an actor's roles lack."""

import ast
from pathlib import Path

import pytest

import parkcard.services
from parkcard.services import privileges as P
from parkcard.services.privileges import Actor, ServiceError


def _required_privileges():
    """Every privilege a service's @requires names today."""
    names = set()
    for path in Path(parkcard.services.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "requires":
                names.add(getattr(P, node.args[0].id))
    return names


def test_the_roles_are_the_five_the_park_uses_and_a_merchant_login():
    assert P.ROLES == ("cashier", "finance", "technician", "manager", "admin", "merchant")


def test_every_role_holds_only_known_privileges_and_admin_holds_all():
    for role, held in P.ROLE_PRIVILEGES.items():
        assert held <= set(P.PRIVILEGES), role
    assert P.ROLE_PRIVILEGES[P.ADMIN] == frozenset(P.PRIVILEGES)
    assert len(set(P.PRIVILEGES)) == len(P.PRIVILEGES)
    assert all(P.roles_holding(p) for p in P.PRIVILEGES)


@pytest.mark.parametrize("role, allowed, refused", [
    (P.CASHIER, {P.CARD_ISSUE, P.CARD_TOP_UP, P.CARD_REFUND, P.CARD_RETURN, P.CARD_LOSS, P.MEMBERS, P.SHIFT},
     {P.CARD_REPLACE, P.SETTLEMENT, P.TERMINALS, P.OPERATORS, P.SHIFTS_REVIEW, P.PARK_ADMIN, P.TIERS}),
    (P.FINANCE, {P.SETTLEMENT, P.SHIFTS_REVIEW, P.REPORTS, P.AUDIT},
     {P.CARD_ISSUE, P.CARD_TOP_UP, P.CARD_REFUND, P.CARD_RETURN, P.SHIFT, P.TERMINALS, P.OPERATORS}),
    (P.TECHNICIAN, {P.TERMINALS, P.ADMIN_CARDS, P.CARD_STOCK, P.BLACKLIST},
     {P.CARD_ISSUE, P.CARD_TOP_UP, P.SETTLEMENT, P.OPERATORS, P.MERCHANTS, P.PARK_ADMIN}),
    (P.MANAGER, {P.CARD_REPLACE, P.CARD_ISSUE, P.BLACKLIST, P.MERCHANTS, P.REPORTS, P.TIERS, P.SHIFTS_REVIEW},
     {P.OPERATORS, P.PARK_ADMIN, P.TERMINALS, P.ADMIN_CARDS}),
    (P.MERCHANT, {P.SETTLEMENT_READ, P.MERCHANTS_READ},
     {P.SETTLEMENT, P.MERCHANTS, P.CARD_QUERY, P.CARD_ISSUE, P.FLEET_READ, P.REPORTS, P.AUDIT, P.OPERATORS}),
])
def test_each_role_holds_its_privileges_and_no_other(role, allowed, refused):
    actor = Actor("op", roles=[role])
    for privilege in sorted(allowed):
        actor.check(privilege)
    for privilege in sorted(refused):
        with pytest.raises(ServiceError, match="op \\(%s\\) may not do this \\(%s\\): ask an operator with the role "
                                               % (role, privilege)):
            actor.check(privilege)
    assert actor.checked == sorted(allowed) + sorted(refused)      # a refused privilege is still recorded as asked


def test_the_refusal_names_the_roles_that_may():
    with pytest.raises(ServiceError, match="ask an operator with the role manager or admin"):
        Actor("anna", roles=[P.CASHIER]).check(P.CARD_REPLACE)


def test_roles_add_up_and_an_unknown_role_is_refused():
    both = Actor("op", roles=[P.CASHIER, P.FINANCE])
    both.check(P.CARD_ISSUE)
    both.check(P.SETTLEMENT)
    with pytest.raises(ServiceError, match="'clerk' is not a role: the roles are cashier, finance"):
        Actor("op", roles=["clerk"])
    with pytest.raises(ServiceError, match="op \\(no role\\) may not"):
        Actor("op", roles=[]).check(P.CARD_QUERY)


def test_an_actor_without_roles_is_the_local_administrator_and_keeps_every_privilege_in_use():
    required = _required_privileges()
    assert {P.MERCHANTS, P.TERMINALS, P.BLACKLIST, P.ADMIN_CARDS, P.SETTLEMENT, P.PARK_ADMIN} <= required
    local = Actor("cli:root")
    assert local.roles == P.LOCAL_ADMIN
    for privilege in required:
        local.check(privilege)
