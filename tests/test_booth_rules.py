"""Consumption rules on the terminal (SPEC.md §3.6 rules 10-16, §5.10): a booth and a ride refuse, offline and
from the card alone, each sale a rule forbids, with its reason on the display in a visitor's words, and charge
nothing; the sale a rule allows goes through. The rig is test_booth_sales.py's (real RC522 driver on the
virtual chip, real journal)."""

import asyncio

import pytest

from protocol import card, price_list, hub_price_list
from protocol.card import TIER_GOLD, TIER_SILVER, TIER_STANDARD
from protocol.config import ROLE_RIDE
from protocol.spend_rules import TYPE_VISITOR, SpendRules
from terminal import wallet as w
from terminal import spend
from terminal.spend import RulesTail
from test_booth_sales import COLA, MERCHANT, booth
from test_terminal_flow import Terminal, balance_of, fast_loops, new_card  # noqa: F401 - fast_loops: autouse

PERFUME = 21        # a member-only item


def with_rules(t, rules):
    """The booth's config now carries these rules in its tail, as the hub sends them."""
    cfg = t.wallet.config
    cfg.tail = rules.encode() if rules is not None else b""
    return cfg


def sell(t, keys, vc):
    """Key a sale and tap the card; return the Result (None when nothing was charged) and the last screen."""
    t.tap(vc)
    t.keypad.feed(keys)
    result = asyncio.run(t.role.serve(t.wallet.config))
    return result, t.display.history[-1]


def member_booth(tmp_path):
    """The booth, its list with a member-only Perfume 20.00 beside Cola 3.50."""
    t = booth(tmp_path)
    listed = [price_list.Item(COLA, "Cola", 350, 2), price_list.Item(PERFUME, "Perfume", 2000, member_only=True)]
    (body,) = hub_price_list.price_list_bodies(MERCHANT, 4, listed)
    assert t.role.prices.take(price_list.parse_price_list(body))
    return t


@pytest.mark.parametrize("rules, card_info, keys, reason, screen", [
    # A staff card opens shifts and never pays (SPEC.md §3.6 rule 5), whatever the card types a rule allows.
    (SpendRules(1, card_types=TYPE_VISITOR), dict(flags=card.FLAG_STAFF), "11C#", w.NOT_WALLET, "Not a pay card"),
    (SpendRules(1, tiers=0b110), dict(tier=TIER_STANDARD), "11C#", w.NOT_ALLOWED, "Card not valid"),
    (SpendRules(1, member_tier=TIER_GOLD), dict(tier=TIER_SILVER), "21C#", w.MEMBERS_ONLY, "Members only"),
    (None, dict(tier=TIER_STANDARD), "21C#", w.MEMBERS_ONLY, "Members only"),      # members: tier 1 and up
    (SpendRules(1, tx_cap_cents=1000), dict(), "11C3#", w.OVER_TX_CAP, "Over limit"),    # 10.50 > 10.00
    (SpendRules(1, daily_cap_cents=1000), dict(day_spent=800), "11C#", w.OVER_DAILY_CAP, "Daily limit"),
    (SpendRules(1, offline_cents=1000), dict(offline_spent=700), "11C#", w.OFFLINE_LIMIT, "Offline limit"),
])
def test_each_rule_refuses_its_sale_offline_with_its_reason_shown(tmp_path, rules, card_info, keys, reason, screen):
    t = member_booth(tmp_path)
    day_spent = card_info.pop("day_spent", 0)
    offline_spent = card_info.pop("offline_spent", 0)
    with_rules(t, rules)
    vc = new_card(10000, **card_info)
    if day_spent or offline_spent:      # an earlier sale today, at this terminal, not yet uploaded
        t.tap(vc)
        assert t.wallet.debit(day_spent or offline_spent).ok
        t.lift(vc)
    before, seq = balance_of(vc), t.journal.last_seq()
    result, shown = sell(t, keys, vc)
    assert result is not None and not result.ok and result.reason == reason
    assert shown == ("REFUSED", screen)
    assert balance_of(vc) == before and t.journal.last_seq() == seq       # nothing charged, nothing journalled


@pytest.mark.parametrize("rules, card_info, keys", [
    (SpendRules(1, card_types=TYPE_VISITOR, tiers=0b110), dict(tier=TIER_SILVER), "11C#"),
    (SpendRules(1, member_tier=TIER_SILVER), dict(tier=TIER_SILVER), "21C#"),
    (SpendRules(1, tx_cap_cents=1050, daily_cap_cents=1050, offline_cents=1050), dict(), "11C3#"),   # at the caps
])
def test_a_sale_the_rules_allow_goes_through(tmp_path, rules, card_info, keys):
    t = member_booth(tmp_path)
    with_rules(t, rules)
    vc = new_card(10000, **card_info)
    result, shown = sell(t, keys, vc)
    assert result is not None and result.ok and shown[0].startswith("APPROVED")
    assert balance_of(vc) == 10000 - result.amount_cents


def test_the_offline_limit_counts_only_what_the_hub_has_not_acknowledged(tmp_path):
    t = member_booth(tmp_path)
    RulesTail(t.wallet).take(with_rules(t, SpendRules(1, offline_cents=1000)))     # what the role does
    vc = new_card(10000)

    def pay(cents, virtual=vc):
        t.tap(virtual)
        try:
            return t.wallet.debit(cents)
        finally:
            t.lift(virtual)
    assert pay(700).ok
    assert pay(400).reason == w.OFFLINE_LIMIT
    t.journal.ack(t.journal.last_seq())     # the hub has it: it no longer counts
    assert pay(400).ok
    assert pay(700).reason == w.OFFLINE_LIMIT
    assert pay(1000, new_card(10000, card_no=77, uid=bytes.fromhex("04111111111111"))).ok     # per card


def test_a_ride_takes_the_rules_of_its_config(tmp_path):
    t = Terminal(tmp_path, role=ROLE_RIDE, price_cents=450)
    t.wallet.config.tail = SpendRules(1, tiers=1 << TIER_GOLD).encode()
    vc = new_card(10000, tier=TIER_STANDARD)
    t.tap(vc)
    result = asyncio.run(asyncio.wait_for(t.role.ride_once(450), 20))
    assert result is not None and result.reason == w.NOT_ALLOWED
    assert t.display.history[-1] == ("REFUSED", "Card not valid") and balance_of(vc) == 10000
    t.wallet.config.tail = b"\x00\x01"      # rules a terminal cannot read: the park's caps alone
    t.lift(vc)
    t.tap(vc)
    result = asyncio.run(asyncio.wait_for(t.role.ride_once(450), 20))
    assert result.ok and balance_of(vc) == 10000 - 450


def test_every_refusal_has_words_that_fit_the_display():
    from terminal.ui import reason_text
    reasons = {value for name, value in vars(w).items() if name.isupper() and isinstance(value, str)}
    texts = [reason_text(reason) for reason in sorted(reasons)]
    assert all(text and text != reason for text, reason in zip(texts, sorted(reasons))), texts
    assert all(len(text) <= 16 for text in texts)     # 128 px of 8x8 font (terminal/devices.py)
    assert reason_text("no_such_reason") == "no_such_reason"


def test_the_offline_limit_reads_only_the_journals_newest_records_at_a_tap(tmp_path):
    t = member_booth(tmp_path)
    RulesTail(t.wallet).take(with_rules(t, SpendRules(1, offline_cents=1000)))
    read = []
    each_after = t.journal.each_after

    def watched(seq, visit):
        each_after(seq, lambda s, buf, at: (read.append(s), visit(s, buf, at)))
    t.journal.each_after = watched

    def pay(cents, card_no):
        virtual = t.tap(new_card(10000, card_no=card_no, uid=bytes.fromhex("04%012x" % card_no)))
        try:
            return t.wallet.debit(cents)
        finally:
            t.lift(virtual)
    for card_no in range(600, 600 + spend.CARDS_COUNTED_MAX):
        assert pay(700, card_no).ok
    del read[:]
    assert pay(400, 600).reason == w.OFFLINE_LIMIT
    assert read == [t.journal.last_seq()]       # the one sale since the last tap, not the 64 before it
    # More cards than it keeps counted: one it does not hold is summed from the unacknowledged records.
    assert pay(700, 900).ok
    del read[:]
    assert pay(400, 900).reason == w.OFFLINE_LIMIT
    last = t.journal.last_seq()
    assert read == [last] + list(range(1, last + 1))    # its own sale since the last tap, then the one scan
    assert pay(300, 900).ok and pay(300, 601).ok
