"""Consumption rules (SPEC.md §5.10): the T_CONFIG tail's vectors on CPython and MicroPython, the hub's rules
per category or merchant on both backends, and the CLI."""

import asyncio

import pytest
from click.testing import CliRunner

from conftest import REPO, run_cpython
from protocol import spend_rules as s
from protocol.errors import Malformed

from parkcard.cli import main
from parkcard.domain.spend_rules import CATEGORY, MERCHANT, ParkSpendRules, Rule
from parkcard.services import merchants, spend_rules
from parkcard.services.errors import Refusal
from parkcard.services.privileges import Actor
from parkcard.store import open_store

VECTORS = REPO / "protocol" / "vectors" / "spend_rules.json"
CHECK = REPO / "tests" / "mpy" / "spend_rules_check.py"


def test_spend_rules_vectors_on_cpython():
    assert run_cpython(CHECK, VECTORS).stdout.startswith("spend rules vectors ok")


@pytest.mark.micropython
def test_spend_rules_vectors_on_micropython(micropython):
    proc = micropython(CHECK, VECTORS)
    assert proc.stdout.startswith("spend rules vectors ok")
    assert proc.stdout == run_cpython(CHECK, VECTORS).stdout


@pytest.mark.parametrize("fields", [dict(version=0), dict(tx_cap_cents=1 << 23), dict(card_types=0),
                                    dict(card_types=4), dict(tiers=0), dict(offline_cents=-1), dict(member_tier=16)])
def test_rules_out_of_range_are_not_encoded(fields):
    with pytest.raises(Malformed):
        s.SpendRules(**fields).encode()


def test_a_merchant_rule_comes_before_its_category_s():
    park = ParkSpendRules({(CATEGORY, 2): Rule(tx_cap_cents=500), (MERCHANT, 3): Rule(daily_cap_cents=900)})
    assert park.for_terminal(3, 2) == Rule(daily_cap_cents=900)
    assert park.for_terminal(4, 2) == Rule(tx_cap_cents=500)
    assert park.for_terminal(4, 1) is None and park.tail(5, 4, 1) == b""
    assert s.SpendRules.decode(park.tail(5, 4, 2)).fields() == (5, 500, 0, s.TYPES_ALL, s.TIERS_ALL, 0, 1)
    assert ParkSpendRules.from_json(park.to_json()).rules == park.rules


def test_every_change_is_a_new_version_and_the_terminal_tail_follows(store_url):
    async def scenario():
        store = await open_store(store_url)
        try:
            admin = Actor("test:admin")
            await merchants.add(store, admin, 3, "Snacks", 500)
            assert await spend_rules.terminal_tail(store, 3, 2) == (0, b"")
            assert (await spend_rules.set_rule(store, admin, CATEGORY, 2, tx_cap_cents=800))[0] == 1
            version, rule = await spend_rules.set_rule(store, admin, CATEGORY, 2, tiers=0b110)
            assert (version, rule) == (2, Rule(tx_cap_cents=800, tiers=0b110))   # fields not named are kept
            await spend_rules.set_rule(store, admin, MERCHANT, 3, member_tier=2, offline_cents=1500)
            version, tail = await spend_rules.terminal_tail(store, 3, 2)
            assert (version, s.SpendRules.decode(tail).fields()) == (3, (3, 0, 0, 3, 0xFFFF, 1500, 2))
            assert await spend_rules.clear_rule(store, admin, MERCHANT, 3) == 4
            version, tail = await spend_rules.terminal_tail(store, 3, 2)
            assert s.SpendRules.decode(tail).fields() == (4, 800, 0, 3, 0b110, 0, 1)
            refusals = []
            for call in (lambda: spend_rules.set_rule(store, admin, MERCHANT, 9, tx_cap_cents=1),
                         lambda: spend_rules.set_rule(store, admin, CATEGORY, 16, tx_cap_cents=1),
                         lambda: spend_rules.set_rule(store, admin, CATEGORY, 1, tiers=0),
                         lambda: spend_rules.clear_rule(store, admin, CATEGORY, 5)):
                with pytest.raises(Refusal) as exc:
                    await call()
                refusals.append(exc.value.code)
            assert refusals == ["merchant_not_found", "out_of_range", "out_of_range", "rule_not_found"]
            assert (await spend_rules.listing(store, admin))[0] == 4        # a refusal makes no version
            assert [v for v in [await store.spend_rules(n) for n in (1, 2, 3, 4)] if v] != []   # old versions stay
        finally:
            await store.close()
    asyncio.run(scenario())


def test_the_rule_commands(tmp_path):
    db = str(tmp_path / "park.db")
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, ["--db", db, *args])
    assert run("merchant", "add", "--id", "3", "--name", "Snacks", "--commission-bps", "500").exit_code == 0
    done = run("rule", "set", "--merchant", "3", "--daily-cap", "30", "--offline", "12.50", "--card-types", "visitor",
               "--tiers", "1,2")
    assert done.exit_code == 0 and "version 1" in done.output, done.output
    assert "per day CNY 30.00" in done.output and "offline CNY 12.50" in done.output and "per sale -" in done.output
    listed = run("rule", "list").output.splitlines()
    assert listed[0] == "consumption rules version 1" and listed[2].split()[:6] == [
        "merchant", "3", "-", "CNY", "30.00", "visitor"]
    for args, says in [(("--tiers", "0,16"), "tiers are 0..15"), (("--card-types", "kid"), "one of staff, visitor"),
                       ((), "say")]:
        bad = run("rule", "set", "--category", "1", *args) if args else run("rule", "set")
        assert bad.exit_code != 0 and "Traceback" not in bad.output
    for amount, says in [("12.345", "at most 2 decimals"), ("-5", "not an amount"), ("83886.08", "at most CNY 83,886.07")]:
        bad = run("rule", "set", "--merchant", "3", "--tx-cap", amount)
        assert bad.exit_code != 0 and "--tx-cap" in bad.output and says in bad.output, bad.output
        assert "Traceback" not in bad.output
    assert run("rule", "list").output.splitlines()[2].split()[:6] == ["merchant", "3", "-", "CNY", "30.00", "visitor"]
    assert "either --category N or --merchant M" in run("rule", "set", "--tx-cap", "1").output
    assert "has no rule" in run("rule", "clear", "--merchant", "3").output
    assert "there is no rule for merchant 3" in run("rule", "clear", "--merchant", "3").output
