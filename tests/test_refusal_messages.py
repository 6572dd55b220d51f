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

import pytest
from babel.messages import pofile

import parkcard
from parkcard.domain import purses, refund_rules
from parkcard.domain.cents import whole
from parkcard.domain.explained import Explained, Sentence, Word
from parkcard.domain.lifecycle import CardStatus
from parkcard.services.errors import Refusal
from parkcard.services.privileges import NotAllowed, ServiceError
from parkcard.store.errors import PeriodOverlap
from parkcard.store.shifts import NoOpenShift, ShiftOfAnother
from parkcard.money import format_cents
from parkcard.web import i18n

HUB = Path(parkcard.__file__).parent
# The sources whose refusals are translated, relative to hub/parkcard/ (a folder means every .py under it).
TRANSLATED = (
    "domain/explained.py",
    "oplog.py", "web/pages.py", "web/routes/fleet.py", "api/park_reports.py",
    # every rule module but ledger.py, whose PostingError is ingest's own and never shown to a person
    "domain/accounts.py", "domain/cents.py", "domain/discounts.py", "domain/fleet_alerts.py", "domain/ingest_rules.py",
    "domain/lifecycle.py", "domain/park_time.py", "domain/purses.py", "domain/record_kinds.py",
    "domain/refund_rules.py", "domain/replacement.py", "domain/repricing.py", "domain/sales_report.py",
    "domain/shifts.py", "domain/spend_rules.py", "domain/staff_shifts.py", "domain/tickets.py", "domain/tiers.py",
    "domain/webhooks.py",
    "services/desk",
    "store/__init__.py", "store/booth.py", "store/credits.py", "store/desk_ops.py", "store/errors.py",
    "store/members.py", "store/reads.py", "store/replacements.py", "store/shifts.py", "store/staff.py",
    "store/tickets.py",
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
MESSAGE_ARGUMENT = {"Refusal": 2, "RefundRefused": 2}
# Classes that word their message themselves from structured fields (the web words them from the same fields).
SELF_WORDED = {"NotAllowed"}


def explained_classes():
    """The names of every Explained class in the hub, found by importing each of its modules."""
    for module in pkgutil.walk_packages([str(HUB)], "parkcard."):
        if not module.name.endswith("__main__"):       # the CLI, which runs when imported
            importlib.import_module(module.name)
    found, todo = set(), [Sentence]
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


def test_a_rules_refusal_given_as_the_reason_is_worded_in_the_same_language():
    with pytest.raises(refund_rules.RefundRefused) as got:
        refund_rules.quote_refund(refund_rules.RefundRules(), purses.Purse(5000, 0), 50000)
    refused = ServiceError("card %(card)d: %(refusal)s", card=7, refusal=got.value)
    assert str(refused) == ("card 7: 50000 cents is over the refundable 5000 cents (bonus 0 cents is never "
                            "refunded): refund at most 5000 cents")
    zh = i18n.translations("zh_Hans").gettext
    assert refused.worded(zh) == "卡 7：50000 分 超过可退的 5000 分（赠送的 0 分 不予退还）：最多退 5000 分"
    assert ServiceError.of(refused).worded(zh).startswith("卡 7：50000 分")
    # A page that knows the park's currency says the amounts in it.
    assert refused.worded(zh, lambda cents: format_cents(cents, "CNY")) == \
        "卡 7：CNY 500.00 超过可退的 CNY 50.00（赠送的 CNY 0.00 不予退还）：最多退 CNY 50.00"
    assert refused.worded(lambda m: m, lambda cents: format_cents(cents, "CNY")).startswith(
        "card 7: CNY 500.00 is over the refundable CNY 50.00 (bonus CNY 0.00 is never refunded)")


def test_the_store_refusals_worded_by_their_class_have_their_chinese_translation():
    zh = i18n.translations("zh_Hans").gettext
    for exc in (NoOpenShift(3), ShiftOfAnother(3, 9, "ann", "bo"), PeriodOverlap(2, "Snacks", 0, 86400)):
        assert zh(exc.message) != exc.message, exc.message
    assert NoOpenShift(3).worded(zh) == "前台 3 没有开启的班次" and str(NoOpenShift(3)) == "desk 3 has no open shift"


def test_a_whole_amount_refused_to_a_maker_of_one_sentence_says_the_same():
    with pytest.raises(ValueError) as plain:        # e.g. a ledger posting's error, made with its own code
        whole(-1, "a debit (cents)", lambda detail: ValueError("bad_amounts: " + detail))
    assert str(plain.value) == "bad_amounts: a debit (cents) must be a whole number of at least 0, not -1"
    with pytest.raises(ServiceError) as explained:
        whole(11, "a tier code", ServiceError, 0, 10)
    assert explained.value.values == {"what": "a tier code", "minimum": 0, "maximum": 10, "value": 11}
    # the input's name is a word of the catalogs: a Chinese page says all of it in Chinese
    assert explained.value.worded(i18n.translations("zh_Hans").gettext) == "等级代码 必须是 0 到 10 之间的整数，不能是 11"


def test_a_word_of_the_catalogs_given_as_a_value_is_worded_in_the_same_language():
    refused = Explained("card %(card)d is %(status)s: it takes no money", card=7, status=Word(CardStatus.BLACKLISTED))
    assert str(refused) == "card 7 is blacklisted: it takes no money"
    zh = {"blacklisted": "已列入黑名单"}.get
    assert refused.worded(lambda m: zh(m, m)) == "card 7 is 已列入黑名单: it takes no money"
    assert Explained("%(name)s", name="blacklisted").worded(lambda m: zh(m, m)) == "blacklisted"     # a plain value
