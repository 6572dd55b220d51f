"""What `parkcard demo` prints reads as a park manager's report: names, amounts with the currency, words."""

import asyncio
import re

import pytest

from terminal import wallet as w

from parkcard_devkit.demo import REFUSAL_WORDS, refusal_words, run_demo
from parkcard_devkit.park_sim import MERCHANTS


def test_every_refusal_reason_has_words():
    reasons = {value for name, value in vars(w).items() if name.isupper() and isinstance(value, str)}
    assert reasons <= set(REFUSAL_WORDS)
    assert refusal_words(w.INSUFFICIENT, 101) == "insufficient balance: 101 taps"
    assert refusal_words(w.OVER_DAILY_CAP, 1) == "over the card's daily spending limit: 1 tap"


@pytest.mark.broker
def test_the_demo_report_names_merchants_shows_the_currency_and_explains_the_check(tmp_path):
    lines = []
    # Few cards for many taps: some visitors run out of money and are refused.
    code = asyncio.run(run_demo(str(tmp_path / "park"), terminals=3, taps=60, cards=2, offline=False,
                                broker_url=None, seed=1, echo=lines.append, tap_interval_ms=0))
    out = "\n".join(lines)
    assert code == 0, out
    table = lines[lines.index(next(li for li in lines if li.startswith("settlement of this run"))) + 1:][:4]
    assert table[0].split() == ["merchant", "sales", "refunds", "commission", "payout", "payments"]
    assert sorted(li.split("CNY")[0].strip() for li in table[1:]) == sorted(name for _id, name, _bps in MERCHANTS)
    assert all(li.count("CNY ") == 4 for li in table[1:])
    assert re.search(r"^  insufficient balance: \d+ taps?$", out, re.M), out
    assert not re.search(r"\b(insufficient|over_daily_cap) \d", out)          # no bare reason codes
    assert "RESULT: OK: the ledger balances" in out
    assert "(each must sum to zero" in out
