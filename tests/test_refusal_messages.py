"""Every refusal a person may read on a web page has its message in the Chinese catalog.

An Explained refusal (parkcard.domain.explained) keeps its English message and
the values of its %(name)s fields apart, so a page can translate the message
and fill in the values. These tests hold the sources listed in TRANSLATED to
that: each message given to an Explained class is a literal (its fields are
values, never formatted in), and each has its translation in the zh_Hans
catalog, as pybabel extracts them.
"""

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

from babel.messages import pofile

import parkcard
from parkcard.domain.explained import Explained
from parkcard.services.errors import Refusal
from parkcard.services.privileges import NotAllowed, ServiceError
from parkcard.web import i18n

HUB = Path(parkcard.__file__).parent
# The sources whose refusals are translated, relative to hub/parkcard/ (a folder means every .py under it).
TRANSLATED = (
    "domain/explained.py",
    "app.py",
    "bounds.py",
    "desk.py",
    "money.py",
    "services/admin_cards.py",
    "services/apikeys.py",
    "services/audit.py",
    "services/blacklist.py",
    "services/credits.py",
    "services/discounts.py",
    "services/errors.py",
    "services/gates.py",
    "services/inputs.py",
    "services/items.py",
    "services/losses.py",
    "services/members.py",
    "services/merchants.py",
    "services/monitoring.py",
    "services/occupancy.py",
    "services/operators.py",
    "services/park.py",
    "services/privileges.py",
    "services/reports.py",
    "services/repricing.py",
    "services/sales.py",
    "services/settlement.py",
    "services/shifts.py",
    "services/spend_rules.py",
    "services/staff.py",
    "services/staff_reports.py",
    "services/terminals.py",
    "services/tickets.py",
    "services/tiers.py",
    "services/trace.py",
    "services/versions.py",
    "services/webhooks.py",
)
# Classes whose message is not their first argument: the argument it is (1-based, as pybabel counts).
MESSAGE_ARGUMENT = {"Refusal": 2}
# Classes that word their message themselves from structured fields (the web words them from the same fields).
SELF_WORDED = {"NotAllowed"}


def explained_classes():
    """The names of every Explained class in the hub, found by importing each of its modules."""
    for module in pkgutil.walk_packages([str(HUB)], "parkcard."):
        if not module.name.endswith("__main__"):       # the CLI, which runs when imported
            importlib.import_module(module.name)
    found, todo = set(), [Explained]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found - SELF_WORDED


def translated_sources():
    """The .py files TRANSLATED names."""
    for name in TRANSLATED:
        path = HUB / name
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def message_arguments(tree, classes):
    """(line, message node) of each call of an Explained class in tree."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name in classes:
                index = MESSAGE_ARGUMENT.get(name, 1) - 1
                if len(node.args) > index:
                    yield node.lineno, node.args[index]


def test_the_hub_has_explained_refusals():
    classes = explained_classes()
    assert {"ServiceError", "Refusal"} <= classes
    assert issubclass(ServiceError, Explained) and issubclass(Refusal, ServiceError)
    assert issubclass(NotAllowed, ServiceError)


def test_a_refusal_keeps_its_message_and_values_apart_and_words_itself_in_a_language():
    exc = Refusal("not_a_desk", "terminal %(terminal)d is not a desk", terminal=99)
    assert str(exc) == "terminal 99 is not a desk" and exc.code == "not_a_desk"
    assert exc.worded(lambda m: {"terminal %(terminal)d is not a desk": "终端 %(terminal)d 不是收银台"}[m]) == \
        "终端 99 不是收银台"
    assert ServiceError.of(exc).worded(lambda m: "<%s>" % m) == "<terminal 99 is not a desk>"
    literal = ServiceError("100% sure")     # no values: the message is not formatted
    assert str(literal) == "100% sure" and literal.worded(lambda m: m) == "100% sure"


def test_every_refusal_message_in_the_translated_sources_is_a_literal_with_its_values_apart():
    classes = explained_classes()
    formatted = []
    for path in translated_sources():
        for line, message in message_arguments(ast.parse(path.read_text(), str(path)), classes):
            if not (isinstance(message, ast.Constant) and isinstance(message.value, str)) and \
                    not isinstance(message, (ast.Name, ast.Attribute)):
                formatted.append("%s:%d" % (path.relative_to(HUB), line))
    assert formatted == [], "give the values as keyword arguments (message %(name)s fields), not formatted in"


def test_every_refusal_message_in_the_translated_sources_has_its_chinese_translation(tmp_path):
    keywords = []
    for name in sorted(explained_classes()):
        keywords += ["-k", "%s:%d" % (name, MESSAGE_ARGUMENT[name]) if name in MESSAGE_ARGUMENT else name]
    pot = tmp_path / "refusals.pot"
    subprocess.run([str(Path(sys.executable).with_name("pybabel")), "extract", "--no-default-keywords", *keywords,
                    "--no-location", "-o", str(pot), *map(str, translated_sources())], check=True,
                   capture_output=True)
    with open(pot, "rb") as f:
        wanted = {m.id for m in pofile.read_po(f) if m.id}
    with open(i18n.catalog_path("zh_Hans"), "rb") as f:
        translated = {m.id for m in pofile.read_po(f) if m.id and m.string}
    assert sorted(wanted - translated) == []


def test_a_service_error_of_a_plain_error_says_what_it_says():
    assert str(ServiceError.of(ValueError("no such tier"))) == "no such tier"
