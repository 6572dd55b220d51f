"""The manager's pages' parts without a browser: every record kind has one name, in both languages, and the
operators' sessions end when idle and at their absolute expiry, both park settings (the clock injected)."""

from protocol import record as R

from parkcard.domain import record_kinds
from parkcard.web import i18n


def test_every_record_kind_has_a_name_in_both_languages_and_an_unknown_one_shows_its_number():
    assert set(record_kinds.KIND_NAMES) == set(R.KINDS)
    zh = i18n.translations("zh_Hans")
    for kind in R.KINDS:
        english = record_kinds.kind_name(kind)
        assert english and not english.isdigit()
        assert record_kinds.kind_name(kind, zh.gettext) != english, kind      # translated, not left in English
    assert record_kinds.kind_name(R.KIND_SHIFT) == "staff shift at a booth"
    assert record_kinds.kind_name(R.KIND_REVERSAL, zh.gettext) == "商户冲正"
    assert record_kinds.kind_name(99) == "record kind 99"
    assert record_kinds.kind_name(99, zh.gettext) == "记录类型 99"
