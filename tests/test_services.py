"""One service per operation: the CLI and the running hub call the same functions (parkcard.services)."""

import ast
import asyncio
import inspect
from pathlib import Path

import pytest
from click.testing import CliRunner

from protocol import frames

import parkcard.cli
import parkcard.services
from parkcard.app import Hub
from parkcard.cli import main
from parkcard.money import AmountError, parse_amount
from parkcard.oplog import OpLog, log_path_for
from parkcard.services import inputs, merchants, terminals
from parkcard.services.errors import Refusal
from parkcard.services.privileges import Actor, ServiceError
from parkcard.store import open_store
from parkcard.store.sqlite import SqliteStore
from parkcard.web import i18n

MERCHANT_ID, TERMINAL_ID, CARD_NO = 3, 7, 100001


def _store_writes():
    """Names of the store methods that write (they run a write transaction)."""
    return {name for name, fn in inspect.getmembers(SqliteStore, inspect.iscoroutinefunction)
            if "self.write(" in inspect.getsource(fn) or name == "write"}


def _called_attributes(path):
    """Every attribute name called as a method in a module, and every name it imports."""
    tree = ast.parse(path.read_text())
    calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    return calls, imported


def test_no_command_group_writes_the_store_itself():
    writes = _store_writes()
    assert {"add_merchant", "terminal_command", "blacklist_change", "revoke_admin_card", "audit"} <= writes
    for path in sorted(Path(parkcard.cli.__file__).parent.glob("*.py")):
        calls, imported = _called_attributes(path)
        assert not calls & writes, "%s writes the store itself: %s" % (path.name, sorted(calls & writes))
        assert "audited" not in imported, "%s writes its own audit entries" % path.name


def test_every_service_checks_a_privilege_before_it_runs(tmp_path):
    services = Path(parkcard.services.__file__).parent
    for path in sorted(services.glob("*.py")):
        module = "parkcard.services." + path.stem
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.AsyncFunctionDef) and not node.name.startswith("_"):
                params = [a.arg for a in node.args.args[:2]]
                if params == ["store", "actor"]:
                    fn = getattr(__import__(module, fromlist=[node.name]), node.name)
                    assert getattr(fn, "privilege", None), "%s.%s has no @requires" % (module, node.name)

    async def scenario():
        storage = await open_store(tmp_path / "hub.db")
        try:
            actor = Actor("alice")
            await merchants.add(storage, actor, MERCHANT_ID, "Ice cream", 1000)
            await terminals.register(storage, actor, TERMINAL_ID, MERCHANT_ID, frames.ROLE_POS, "booth")
            await terminals.lock(storage, actor, TERMINAL_ID)
            return actor.checked
        finally:
            await storage.close()
    assert asyncio.run(scenario()) == ["merchants.manage", "terminals.manage", "terminals.manage"]


def _audit_entries(db):
    """(actor, action, details) of the audit log of db, without times and hashes."""
    return [(e["actor"], e["action"], e["details"]) for e in OpLog(log_path_for(db)).entries()]


def test_the_cli_and_the_running_hub_write_the_same_audit_entries(tmp_path, monkeypatch):
    monkeypatch.setattr("parkcard.cli.common.operator_name", lambda: "alice")
    cli_db = tmp_path / "cli" / "hub.db"
    runner = CliRunner()
    for args in (["merchant", "add", "--id", MERCHANT_ID, "--name", "Ice cream", "--commission-bps", 1000],
                 ["terminal", "add", "--id", TERMINAL_ID, "--merchant", MERCHANT_ID, "--role", "pos", "--name",
                  "booth"],
                 ["terminal", "lock", TERMINAL_ID], ["terminal", "unlock", TERMINAL_ID],
                 ["blacklist", "add", CARD_NO, "--reason", "lost", "--force"],
                 ["blacklist", "remove", CARD_NO, "--reason", "found"],
                 ["merchant", "set", "--id", MERCHANT_ID, "--commission-bps", 900]):
        result = runner.invoke(main, ["--db", str(cli_db), *map(str, args)])
        assert result.exit_code == 0, result.output

    hub_db = tmp_path / "hub" / "hub.db"
    hub_db.parent.mkdir()

    async def hub_side():
        hub = await Hub(hub_db, broker_port=1).open()     # no broker: the queued commands wait in the link
        try:
            await hub.add_merchant(MERCHANT_ID, "Ice cream", 1000, actor="alice")
            await hub.register_terminal(TERMINAL_ID, MERCHANT_ID, frames.ROLE_POS, "booth", actor="alice")
            await hub.lock_terminal(TERMINAL_ID, actor="alice")
            await hub.unlock_terminal(TERMINAL_ID, actor="alice")
            await hub.blacklist_add(CARD_NO, "lost", actor="alice", force=True)
            await hub.blacklist_remove(CARD_NO, "found", actor="alice")
            await hub.set_merchant(MERCHANT_ID, commission_bps=900, actor="alice")
        finally:
            await hub.stop()
    asyncio.run(hub_side())

    cli, hub = _audit_entries(cli_db), _audit_entries(hub_db)
    assert [action for _, action, _ in cli] == ["merchant.add", "terminal.add", "terminal.lock", "terminal.unlock",
                                                "blacklist.add", "blacklist.remove",
                                                "merchant.set"]
    assert cli == hub


def test_a_refusal_words_the_range_it_names_and_the_reason_it_gives_in_the_pages_language():
    zh = i18n.translations("zh_Hans").gettext
    with pytest.raises(Refusal) as refused:
        inputs.checked(card_no=0)
    assert refused.value.code == "out_of_range" and str(refused.value) == \
        "0 is out of range: a card number is a whole number from 1 to 4294967295 (32 bits on the card and the wire)"
    assert refused.value.worded(zh) == "0 超出范围：卡号是 1 到 4294967295 之间的整数（卡上和传输中占 32 位）"
    with pytest.raises(AmountError) as typed:
        parse_amount("1.005", "CNY")
    said = ServiceError("%(problem)s: nothing changed", problem=typed.value)
    assert str(said) == "'1.005' is not an amount in CNY: digits with at most 2 decimals, e.g. 12.50: nothing changed"
    assert said.worded(zh) == "'1.005' 不是 CNY 金额：请填写数字，最多 2 位小数，例如 12.50：未作更改"
    assert ServiceError.of(typed.value).worded(zh) == "'1.005' 不是 CNY 金额：请填写数字，最多 2 位小数，例如 12.50"
    assert said.worded(lambda message: message) == str(said)        # English: the same words as str()
