"""The hub prices every booth sale again from the versions its sale lines name (SPEC.md §4.11), on SQLite
and PostgreSQL over a real Mosquitto: the same figures raise nothing; different ones stand and are alarmed
once with both figures; sale lines move no value and claim no counter."""

import asyncio
import pytest

from protocol import pricing, record as R, sale_line as SL

from parkcard import audit
from parkcard.domain import accounts
from parkcard.services import discounts, items
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, connect_booth, desk_issued, start_hub

pytestmark = pytest.mark.broker

UID = b"\x04\x10\x20\x30"
BOOTH = 9
COLA, CAKE = 11, 12
TIER = 2
HOUR = 1795600800


def run(coro, timeout_s=120):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


def basket(term, card_no, counter, balance, lines, list_version, rules_version, pay, discount, line_discounts):
    """Journal a basket as a booth does: its sale lines, then the debit; return the debit's seq."""
    sale = R.Record(R.KIND_DEBIT, term.terminal_id, term.seq + len(lines) + 1, HOUR, card_no, UID, counter, pay,
                    balance - pay, lines[0][0], discount)
    for index, (code, quantity, unit) in enumerate(lines):
        line = SL.sale_line(sale, code, quantity, quantity * unit, line_discounts[index], TIER, index, len(lines),
                            list_version, rules_version)
        term.seq += 1
        term.journal[term.seq] = (R.STATUS_COMMITTED, line.encode(term.record_mac))
    term.record(R.KIND_DEBIT, card_no, counter, pay, balance - pay, uid=UID, time_s=HOUR, item=lines[0][0],
                discount_cents=discount)
    return term.seq


def test_a_sale_priced_as_the_hub_prices_it_raises_nothing_and_a_different_one_is_alarmed(store_url, broker):
    async def scenario():
        hub = await start_hub(store_url, broker.host, broker.port)
        try:
            actor = hub.actor()
            await items.set_item(hub.storage, actor, MERCHANT_ICE, COLA, "Cola", 350, category=2)
            list_version, _before, _after = await items.set_item(hub.storage, actor, MERCHANT_ICE, CAKE, "Cake", 1200)
            rules_version = await discounts.set_tier(hub.storage, actor, TIER, sale_bp=1000, total_bp=500)
            card_no = (await desk_issued(hub, UID, 10000)).card_no
            term = await connect_booth(hub, broker.host, broker.port, BOOTH)
            # 2 Colas 7.00 - 0.70, a Cake 12.00 - 1.20; 5 % of 17.10: 0.85. To pay 19.00 - 2.75 = 16.25.
            lines = [(COLA, 2, 350), (CAKE, 1, 1200)]
            rules = await discounts.merchant_rules(hub.storage, MERCHANT_ICE, rules_version)
            want = pricing.price_basket(rules, TIER, [(c, 0, q, u) for c, q, u in lines])
            assert (want.pay_cents, want.line_discounts) == (1625, [70, 120])
            good = basket(term, card_no, 2, 10000, lines, list_version, rules_version, 1625, 275, [70, 120])
            # The same basket, 0.50 more off than the versions it names give: it stands, with an alarm.
            bad = basket(term, card_no, 3, 10000 - 1625, lines, list_version, rules_version, 1575, 325, [70, 120])
            term.upload()
            await asyncio.to_thread(term.wait_acked, bad)
            await hub.wait_until(lambda: hub.stats()["sales_repriced"] == 2)
            assert hub.stats()["repricing_differences"] == 1
            priced = [a for a in await hub.storage.alarms() if a.kind == "repricing"]
            card = await hub.storage.card(card_no)
            return (good, bad, priced, card.shadow_balance_cents, card.last_counter,
                    await hub.storage.account_balance(accounts.card_account(card_no)),
                    await audit.check(hub.storage))
        finally:
            await hub.stop()

    good, bad, alarms, balance, counter, ledger, report = run(scenario())
    assert (good, bad) == (3, 6)
    assert len(alarms) == 1 and alarms[0].kind == "repricing" and alarms[0].terminal_id == BOOTH
    assert alarms[0].detail == ("term-%d seq %d: terminal charged 1575 cents with 325 off, list 2 and rules 1 "
                                "give 1625 with 275 off" % (BOOTH, bad))
    assert balance == ledger == 10000 - 1625 - 1575 and counter == 3     # both sales stand; lines claim nothing
    # the auditor prices both again and finds the difference told by its alarm
    assert report.ok and report.repriced == 2 and report.repriced_differently == [alarms[0].detail]
    assert "booth sales priced again: 2, differently from the terminal: 1" in "\n".join(report.lines())

