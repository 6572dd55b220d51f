"""Operator accounts: the services on every backend, the login, and `parkcard --operator` at the CLI."""

import pytest
from click.testing import CliRunner

from parkcard import oplog
from parkcard.cli import main
from parkcard.security import passwords
from parkcard.services import operators
from parkcard.services.errors import Refusal
from parkcard.services.privileges import CARD_ISSUE, OPERATORS, SETTLEMENT_READ, Actor, ServiceError
from test_store_contract import run

GOOD = "correct horse battery"



async def _code_of(coro):
    try:
        await coro
    except Refusal as exc:
        return exc.code
    raise AssertionError("not refused")


def test_accounts_are_created_hashed_and_log_in_with_their_roles(store_url):
    async def scenario(store):
        admin = Actor("cli:root")
        anna_id = await operators.create_operator(store, admin, " Anna ", GOOD, ["cashier"], "Anna Li")
        (row,) = await store.operators()
        assert (row.id, row.username, row.display_name, row.roles, row.active, row.created_by) == (
            anna_id, "anna", "Anna Li", "cashier", 1, "cli:root")
        assert GOOD not in repr(row) and passwords.verify_password(row.password_hash, GOOD)

        anna = await operators.authenticate(store, "ANNA", GOOD)
        assert (anna.name, anna.roles, anna.operator_id, anna.merchant_id) == ("anna", ("cashier",), anna_id, None)
        anna.check(CARD_ISSUE)
        with pytest.raises(ServiceError, match="anna \\(cashier\\) may not do this"):
            anna.check(OPERATORS)
        with pytest.raises(ServiceError, match="may not do this"):      # the service checks, not the caller
            await operators.create_operator(store, anna, "bob", GOOD, ["admin"])
        assert (await store.operator("anna")).last_login_at is not None

        codes = [await _code_of(operators.authenticate(store, name, pw)) for name, pw in (
            ("anna", GOOD + "x"), ("nobody", GOOD), ("", GOOD), ("anna", ""), ("anna", None), ("../x", GOOD))]
        assert codes == ["wrong_login"] * 6
        return [await _code_of(c) for c in (
            operators.create_operator(store, admin, "anna", GOOD, ["cashier"]),
            operators.create_operator(store, admin, "Bad Name", GOOD, ["cashier"]),
            operators.create_operator(store, admin, "x" * 33, GOOD, ["cashier"]),
            operators.create_operator(store, admin, "bob", "short", ["cashier"]),
            operators.create_operator(store, admin, "bob", "bob", ["cashier"]),
            operators.create_operator(store, admin, "bob", GOOD, ["wizard"]),
            operators.create_operator(store, admin, "bob", GOOD, []),
            operators.create_operator(store, admin, "bob", GOOD, ["merchant"]),
            operators.create_operator(store, admin, "bob", GOOD, ["cashier"], merchant_id=7),
            operators.create_operator(store, admin, "bob", GOOD, ["merchant"], merchant_id=7),
            operators.create_operator(store, admin, "bob", GOOD, ["merchant"], merchant_id=0),
        )], [o.username for o in await store.operators()]
    codes, names = run(store_url, scenario)
    assert codes == ["operator_exists", "bad_username", "bad_username", "weak_password", "weak_password",
                     "unknown_role", "unknown_role", "merchant_role", "merchant_role", "merchant_not_found",
                     "out_of_range"]
    assert names == ["anna"]        # nothing refused was stored


def test_roles_passwords_and_disabling_keep_the_last_admin_and_are_audited(store_url):
    async def scenario(store):
        root = Actor("cli:root")
        await operators.create_operator(store, root, "ada", GOOD, ["admin"])
        await operators.create_operator(store, root, "carl", GOOD, ["cashier"])
        ada = await operators.authenticate(store, "ada", GOOD)
        refusals = [await _code_of(c) for c in (
            operators.set_roles(store, ada, "ada", ["manager"]),       # the last admin keeps the role
            operators.disable_operator(store, ada, "ada"),              # nobody disables their own account
            operators.disable_operator(store, root, "ada"),             # nor the last admin
            operators.set_roles(store, ada, "nobody", ["cashier"]),
            operators.change_own_password(store, Actor("cli:root"), GOOD, GOOD + "!"),
        )]
        assert await operators.set_roles(store, ada, "carl", ["manager", "cashier"]) == ["cashier", "manager"]
        await operators.set_password(store, ada, "carl", "a new long password")
        with pytest.raises(Refusal):
            await operators.authenticate(store, "carl", GOOD)
        carl = await operators.authenticate(store, "carl", "a new long password")
        assert carl.roles == ("cashier", "manager")
        assert await _code_of(operators.change_own_password(store, carl, "wrong one here", "another passphrase")) \
            == "wrong_login"
        await operators.change_own_password(store, carl, "a new long password", "another passphrase")
        await operators.authenticate(store, "carl", "another passphrase")

        assert await operators.disable_operator(store, ada, "carl") is True
        assert await operators.disable_operator(store, ada, "carl") is False
        disabled = await _code_of(operators.authenticate(store, "carl", "another passphrase"))
        assert await operators.enable_operator(store, ada, "carl") is True
        assert await operators.enable_operator(store, ada, "carl") is False
        await operators.authenticate(store, "carl", "another passphrase")
        return refusals, disabled, store.oplog.path
    refusals, disabled, log_path = run(store_url, scenario)
    assert refusals == ["last_admin", "own_account", "last_admin", "operator_not_found", "not_an_operator"]
    assert disabled == "operator_disabled"
    actions = [(e["actor"], e["action"]) for e in oplog.OpLog(log_path).entries()]
    assert actions == [("cli:root", "operator.create"), ("cli:root", "operator.create"),
                       ("ada", "operator.roles"), ("ada", "operator.password"), ("carl", "operator.password"),
                       ("ada", "operator.disable"), ("ada", "operator.enable")]


def test_a_merchant_login_knows_its_merchant_and_may_only_read(store_url):
    async def scenario(store):
        await store.add_merchant(3, "Crêpes", 500, 1)
        await operators.create_operator(store, Actor("cli:root"), "crepes", GOOD, ["merchant"], merchant_id=3)
        return await operators.authenticate(store, "crepes", GOOD)
    crepes = run(store_url, scenario)
    assert (crepes.roles, crepes.merchant_id) == (("merchant",), 3)
    crepes.check(SETTLEMENT_READ)
    with pytest.raises(ServiceError):
        crepes.check(CARD_ISSUE)


def test_an_old_hash_is_replaced_at_the_next_good_login(store_url):
    import argon2
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

    async def scenario(store):
        await store.add_operator("old", weak.hash(GOOD), "cashier", "cli:root")
        await operators.authenticate(store, "old", GOOD)
        return (await store.operator("old")).password_hash
    stored = run(store_url, scenario)
    assert passwords.verify_password(stored, GOOD) and not passwords.needs_rehash(stored)


def _cli(db, *args, env=None, input=None):
    return CliRunner().invoke(main, ["--db", str(db)] + [str(a) for a in args], env=env, input=input)


def test_the_cli_runs_commands_as_the_operator_who_logged_in(tmp_path):
    db = tmp_path / "park.db"
    made = _cli(db, "operator", "add", "ada", "--role", "admin", "--name", "Ada Park", input=GOOD + "\n" + GOOD + "\n")
    assert made.exit_code == 0, made.output
    assert "operator ada created with the role admin" in made.output
    made = _cli(db, "operator", "add", "carl", "--role", "cashier", "--password-stdin", input=GOOD + "\n")
    assert made.exit_code == 0, made.output

    as_carl = {"PARKCARD_OPERATOR": "carl", "PARKCARD_PASSWORD": GOOD}
    refused = _cli(db, "operator", "list", env=as_carl)
    assert refused.exit_code == 2 and "carl (cashier) may not do this (operators.manage)" in refused.output
    assert "Traceback" not in refused.output
    wrong = _cli(db, "--operator", "carl", "operator", "list", env={"PARKCARD_PASSWORD": "not it at all"})
    assert wrong.exit_code == 2 and "wrong user name or password" in wrong.output
    asked = _cli(db, "--operator", "ada", "operator", "list", input=GOOD + "\n")
    assert asked.exit_code == 0, asked.output
    lines = asked.output.splitlines()
    assert any(line.split()[:2] == ["ada", "Ada"] for line in lines) and any(
        line.split()[:3] == ["carl", "cashier", "active"] for line in lines)

    weak = _cli(db, "operator", "add", "dora", "--role", "cashier", "--password-stdin", input="short\n")
    assert weak.exit_code == 2 and "use at least 10" in weak.output
    bad_role = _cli(db, "operator", "add", "dora", "--role", "wizard", "--password-stdin", input=GOOD + "\n")
    assert bad_role.exit_code == 2 and "wizard" in bad_role.output
    as_ada = {"PARKCARD_OPERATOR": "ada", "PARKCARD_PASSWORD": GOOD}
    assert "disabled" in _cli(db, "operator", "disable", "carl", env=as_ada).output
    disabled = _cli(db, "operator", "list", env=as_carl)
    assert disabled.exit_code == 2 and "disabled: ask an admin" in disabled.output
    assert "now has the roles cashier, finance" in _cli(db, "operator", "roles", "carl", "--role", "finance",
                                                        "--role", "cashier").output
    last = _cli(db, "operator", "roles", "ada", "--role", "manager")
    assert last.exit_code == 2 and "last active admin" in last.output
