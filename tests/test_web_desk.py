"""The front desk page in real headless Chromium over a simulated park: a cashier reads a blank card on the desk
terminal's virtual reader, stocks it, issues it and tops it up through the real desk path (MQTT, desk firmware,
card, ledger); a form sent again is one operation; a wrong amount and a card taken away are told; finance
cannot reach the page; every page of the menu fits a phone. Screenshots under test-artifacts/web/."""

import pytest

from protocol import desk as D
from protocol import record as R
from sim.cards import card_balance
from sim.mifare import MifareClassic1K

from parkcard.services import operators, shifts
from parkcard.services.privileges import Actor
from parkcard_devkit.park_sim import DESK_TERMINAL_ID
from test_web_browser import PASSWORD, chromium, log_in, shot  # noqa: F401 - the module's browser fixture
from web_kit import ParkThread

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.slow]

BLANK_UID = bytes.fromhex("04d35c0000a001")
WAIT_MS = 30_000
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def park(tmp_path):
    """A simulated park with its desk terminal, serving its web app; a cashier and a finance login."""
    park = ParkThread(tmp_path / "park").start()
    for name, roles in (("cas", ["cashier"]), ("fin", ["finance"]), ("ada", ["admin"])):
        park.call(operators.create_operator(park.hub.storage, Actor("setup"), name, PASSWORD, roles))
    # The cashier works in her own shift: the simulated day's first one is closed, hers opened.
    (now,) = park.call(shifts.open_shifts(park.hub.storage, Actor("setup")))
    park.call(shifts.close_shift(park.hub.storage, Actor("setup"), DESK_TERMINAL_ID, now.figures.cash_expected_cents))
    park.call(shifts.open_shift(park.hub.storage, Actor("cas", roles=("cashier",)), DESK_TERMINAL_ID, 0))
    yield park
    park.stop()


def tab(chromium, park, **options):  # noqa: F811 - chromium is the fixture
    context = chromium.new_context(base_url=park.url, locale="en-GB", **options)
    context.set_default_timeout(WAIT_MS)
    return context, context.new_page()


def act(page, action, **fields):
    """Fill the form of a desk action and send it; return the outcome shown."""
    for name, value in fields.items():
        page.fill("#action-%s [name=%s]" % (action, name), value)
    page.click("#action-%s button" % action)
    page.wait_for_selector("#desk-outcome")
    return page.inner_text("#desk-outcome")


def desk_records(park):
    return [R.Record.decode(bytes(r.raw)) for r in park.call(park.hub.storage.records(D.DESK_SOURCE_ID))]


def test_a_cashier_stocks_issues_and_tops_up_the_card_on_the_desk(chromium, park):  # noqa: F811
    blank = MifareClassic1K(BLANK_UID)
    context, page = tab(chromium, park)
    log_in(page, "cas")
    page.goto("/desk")
    assert page.inner_text("h1") == "Front desk"
    park.on_loop(park.sim.put_on_desk, blank)
    page.click("#desk-read")
    assert "A blank card" in page.inner_text("#desk-card")
    assert page.input_value("#action-stock [name=uid]") == BLANK_UID.hex()      # read off the card
    assert "is card stock now" in act(page, "stock")
    page.click("#desk-read")
    assert "A stock card" in page.inner_text("#desk-card")
    issued = act(page, "issue", load="100", deposit="20")
    assert "Issued: card" in issued and "now holds CNY 100.00" in issued
    shot(page, "desk-issued")
    # A wrong amount: the service's words, nothing done, the form keeps its operation id for the retry.
    op_before = page.input_value("#action-top_up [name=op]")
    assert "not an amount in CNY" in act(page, "top_up", amount="12.345")
    assert page.input_value("#action-top_up [name=op]") == op_before
    shot(page, "desk-wrong-amount")
    form = {name: page.input_value("#action-top_up [name=%s]" % name) for name in ("csrf", "op", "desk")}
    topped = act(page, "top_up", amount="50")
    assert "Topped up: card" in topped and "now holds CNY 150.00" in topped
    again = page.request.post("/desk/top-up", form={**form, "amount": "50"})     # a double click, a reload
    assert "now holds CNY 150.00" in again.text()
    assert card_balance(park.sim.park_keys, blank).balance_cents == 15000
    assert [(r.kind, r.amount_cents) for r in desk_records(park)] == [(R.KIND_ISSUE, 10000), (R.KIND_TOPUP, 5000)]
    page.click("#desk-read")
    assert page.inner_text("#card-cash") == "CNY 150.00"
    assert "top-up" in page.inner_text("#card-history")
    shot(page, "desk-card")
    # The card taken away: the service says so, and nothing is charged.
    park.on_loop(park.sim.take_from_desk, blank)
    gone = act(page, "top_up", amount="10")
    assert "did not answer" in gone and "is the card on it" in gone
    assert card_balance(park.sim.park_keys, blank).balance_cents == 15000
    context.close()
    # On a phone: the same page, nothing wider than the screen.
    context, page = tab(chromium, park, viewport=PHONE)
    log_in(page, "cas")
    page.goto("/desk")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "desk-phone")
    context.close()


def test_a_cashier_refunds_part_of_the_cash_then_takes_the_card_back(chromium, park):  # noqa: F811
    blank = MifareClassic1K(BLANK_UID)
    context, page = tab(chromium, park)
    log_in(page, "cas")
    page.goto("/desk")
    park.on_loop(park.sim.put_on_desk, blank)
    page.click("#desk-read")
    act(page, "stock")
    page.click("#desk-read")
    act(page, "issue", load="100", deposit="20")
    assert "not an amount in CNY" in act(page, "refund", amount="-3")
    assert "over the refundable" in act(page, "refund", amount="500")
    refunded = act(page, "refund", amount="30")
    assert "Refunded: pay the holder CNY 30.00" in refunded and "now holds CNY 70.00" in refunded
    assert card_balance(park.sim.park_keys, blank).balance_cents == 7000
    shot(page, "desk-refunded")
    returned = act(page, "return_card")
    assert "is returned: pay the holder CNY 90.00" in returned       # the cash left and the deposit
    assert card_balance(park.sim.park_keys, blank).balance_cents == 0
    assert [r.kind for r in desk_records(park)] == [R.KIND_ISSUE, R.KIND_PAYOUT, R.KIND_CASHOUT]
    assert "was returned" in act(page, "top_up", amount="10")      # a returned card takes no money
    shot(page, "desk-returned")
    context.close()


def test_finance_cannot_reach_the_desk_page(chromium, park):  # noqa: F811
    context, page = tab(chromium, park)
    log_in(page, "fin")
    response = page.goto("/desk")
    assert response.status == 403 and "may not do this" in page.inner_text("main")
    assert page.locator("nav a[href='/desk']").count() == 0
    csrf = page.eval_on_selector("input[name=csrf]", "e => e.value")
    refused = page.request.post("/desk/top-up", form={"csrf": csrf, "op": "o-1", "desk": str(DESK_TERMINAL_ID),
                                                      "amount": "5"})
    assert refused.status == 403 and "may not do this" in refused.text()       # the services refuse
    assert desk_records(park) == []
    context.close()


def test_every_page_of_the_menu_fits_a_phone_screen(chromium, park):  # noqa: F811
    from parkcard.web.pages import NAV
    context, page = tab(chromium, park, viewport=PHONE)
    log_in(page, "ada")
    for path, _label, _privilege in NAV:
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (path, width)      # wide tables scroll inside their own box
    shot(page, "phone-last-page")
    context.close()


def test_an_operation_left_pending_is_shown_and_its_retry_finishes_it_once(chromium, park):  # noqa: F811
    sim = park.sim
    card = park.call(sim.new_card(BLANK_UID))
    issued = park.call(sim.at_desk(card, park.hub.desk(DESK_TERMINAL_ID).issue("issue-for-pending", 5000)))
    real_order = park.hub.desk_link.order

    async def cut_before_write(desk_id, op, *args, **kwargs):
        if op == D.OP_WRITE:
            sim.desk.relay.cut()        # the desk's network goes once the operation is kept
        return await real_order(desk_id, op, *args, **kwargs)

    context, page = tab(chromium, park)
    log_in(page, "cas")
    page.goto("/desk")
    park.on_loop(sim.put_on_desk, card)
    park.on_loop(setattr, park.hub.desk_link, "order", cut_before_write)
    said = act(page, "top_up", amount="20")
    assert "is pending" in said
    assert "Put the card back on the desk and retry" in page.inner_text("#desk-pending")
    shot(page, "desk-pending")
    op_id = page.input_value("#desk-pending [name=op]")
    assert park.call(park.hub.storage.desk_operation(op_id)).state == "pending"
    park.on_loop(setattr, park.hub.desk_link, "order", real_order)
    park.on_loop(sim.desk.relay.restore)
    park.call(sim.wait_for(lambda: sim.desk.terminal.client.connected, 30, "the desk did not reconnect"))
    page.click("#desk-retry")
    page.wait_for_selector("#desk-outcome.ok")
    assert "now holds CNY 70.00" in page.inner_text("#desk-outcome")
    assert card_balance(sim.park_keys, card).balance_cents == 7000
    top_ups = [r for r in desk_records(park) if r.kind == R.KIND_TOPUP]
    assert [(r.card_no, r.amount_cents) for r in top_ups] == [(issued.card_no, 2000)]
    context.close()
