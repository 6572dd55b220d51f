"""A cashier's day at the front desk page in real headless Chromium over a simulated park: no shift refuses the
desk's operations, a shift opened with its float, a card issued in a tier shown by its name, the shift closed with
the counted cash and its printable Z report; a card reported lost, found, lost again and replaced by a manager with
the hold shown; members registered, found, changed; a pending credit sent again after the hub forgot the form's
answer is granted once. Wrong inputs are told in the services' words. Screenshots under test-artifacts/web/."""

import pytest

from sim.cards import card_balance
from sim.mifare import MifareClassic1K

from parkcard.money import format_cents
from parkcard.services import park as park_service
from parkcard.services import operators, shifts
from parkcard.services.privileges import Actor
from parkcard_devkit.park_sim import DESK_TERMINAL_ID
from test_web_browser import PASSWORD, chromium, log_in, shot  # noqa: F401 - the module's browser fixture
from test_web_desk import BLANK_UID, act, desk_records, tab
from web_kit import ParkThread

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.slow]

NEW_UID = bytes.fromhex("04d35c0000a002")


@pytest.fixture
def park(tmp_path, request):
    """A simulated park whose desk has no open shift, serving its web app; a cashier and a manager login.

    Its booths: as many as the test's parameter says (indirect), none without one."""
    park = ParkThread(tmp_path / "park", terminals=getattr(request, "param", 0)).start()
    sim = park.sim
    park.call(shifts.close_shift(sim.hub.storage, sim.hub.actor("sim-cashier"), DESK_TERMINAL_ID,
                                 sim.shift.float_cents))
    for name, roles in (("cas", ["cashier"]), ("man", ["manager"])):
        park.call(operators.create_operator(park.hub.storage, Actor("setup"), name, PASSWORD, roles))
    yield park
    park.stop()


def sent(page, form_id, **fields):
    """Fill a form of the page by its id, send it and return the flash shown on the page it leads to."""
    for name, value in fields.items():
        page.fill("#%s [name=%s]" % (form_id, name), value)
    page.click("#%s button" % form_id)
    page.wait_for_selector("p.flash")
    return page.inner_text("p.flash")


def issued_in_a_shift(park, opened_by, cash_cents):
    """A card issued at the desk with cash_cents, in a shift opened_by opens with no float; its DeskDone."""
    sim = park.sim
    card = park.call(sim.new_card(BLANK_UID))
    park.call(shifts.open_shift(sim.hub.storage, sim.hub.actor(opened_by), DESK_TERMINAL_ID, 0))
    return park.call(sim.at_desk(card, park.hub.desk(DESK_TERMINAL_ID).issue("issue-" + opened_by, cash_cents)))


def test_a_cashiers_shift_from_float_to_z_report(chromium, park):  # noqa: F811
    blank = MifareClassic1K(BLANK_UID)
    context, page = tab(chromium, park)
    log_in(page, "cas")
    page.goto("/desk")
    assert "You have no open shift at desk %d" % DESK_TERMINAL_ID in page.inner_text("#desk-shift")
    park.on_loop(park.sim.put_on_desk, blank)
    page.click("#desk-read")
    act(page, "stock")      # card stock takes no money: no shift needed
    page.click("#desk-read")
    refused = act(page, "issue", load="100", deposit="20")      # every money operation belongs to a shift
    assert 'has no open shift: open one with "Open a shift" on this page' in refused
    assert "parkcard shift" not in refused
    shot(page, "desk-no-shift")
    assert "not an amount in CNY" in sent(page, "shift-open", float="12,5x")
    assert "is open at desk %d with a float of CNY 200.00" % DESK_TERMINAL_ID in sent(page, "shift-open",
                                                                                      float="200")
    assert "cash expected in the drawer CNY 200.00" in page.inner_text("#desk-shift")
    page.click("#desk-read")
    page.select_option("#action-issue [name=tier]", label="gold")
    assert "now holds CNY 110.00" in act(page, "issue", load="100", deposit="20")     # gold: 10 % bonus
    assert "now holds CNY 165.00" in act(page, "top_up", amount="50")
    page.click("#desk-read")
    facts = page.inner_text("#desk-card dl")
    assert "gold" in facts and "Tier\n2" not in facts     # the tier's name, not its code
    assert "cash expected in the drawer CNY 370.00" in page.inner_text("#desk-shift")
    assert "not an amount in CNY" in sent(page, "shift-close", counted="lots")
    closed = sent(page, "shift-close", counted="369")
    assert "Shift 2 is closed: Z report 2" in closed and "CNY -1.00" in closed     # the park's first: its set-up
    assert page.url.endswith("/desk/z/2")
    assert page.inner_text("#z-expected") == "CNY 370.00" and page.inner_text("#z-counted") == "CNY 369.00"
    assert page.inner_text("#z-difference") == "CNY -1.00"
    assert page.locator("#z-print").is_visible()
    shot(page, "desk-z-report")
    page.emulate_media(media="print")       # printed: the report alone, no menu, no buttons
    assert not page.locator("header.top").is_visible() and not page.locator("#z-print").is_visible()
    assert not page.locator("p.flash").is_visible() and page.locator("#z-report").is_visible()
    page.emulate_media(media="screen")
    assert page.goto("/desk/z/99").status == 404 and "no Z report 99" in page.inner_text("#refused")
    page.goto("/desk")
    assert "You have no open shift" in page.inner_text("#desk-shift")
    context.close()


@pytest.mark.parametrize("park", [1], indirect=True)
def test_a_card_lost_found_lost_again_and_replaced_by_a_manager_with_its_hold_shown(chromium, park):  # noqa: F811
    sim = park.sim
    park.call(park_service.set_offline_rules(sim.hub.storage, sim.hub.actor("test:manager"), 86400, 1500))
    issued = issued_in_a_shift(park, "man", 8000)
    context, page = tab(chromium, park)
    log_in(page, "cas")
    page.goto("/desk")
    assert page.locator("#action-replace").count() == 0         # a cashier does not replace cards
    assert page.locator("#action-lost").count() == 1
    context.close()
    context, page = tab(chromium, park)
    log_in(page, "man")
    page.goto("/desk")
    assert "was never issued here" in act(page, "lost", card_no="999999")
    assert "by its number or by its member" in act(page, "lost")
    lost = act(page, "lost", card_no=str(issued.card_no), reason="lost at the lake")
    assert "Card %d is reported lost and blacklisted" % issued.card_no in lost
    assert issued.card_no in park.call(park.hub.storage.blacklist_cards())
    assert "is no longer reported lost" in act(page, "found", card_no=str(issued.card_no))
    assert issued.card_no not in park.call(park.hub.storage.blacklist_cards())
    assert "is found: nothing changed" in act(page, "found", card_no=str(issued.card_no))
    booth = sim.terminals[0]
    park.on_loop(booth.relay.cut)     # offline at the report: it may still hold the lost card's debits
    park.call(sim.wait_for(lambda: not booth.terminal.client.connected, 30, "the booth stayed connected"))
    act(page, "lost", card_no=str(issued.card_no), reason="stolen")
    new = park.call(sim.new_card(NEW_UID))
    park.on_loop(sim.put_on_desk, new)
    assert "was never issued here" in act(page, "replace", lost_card_no="999999")
    replaced = act(page, "replace", lost_card_no=str(issued.card_no))
    row = park.call(park.hub.storage.replacement(old_card_no=issued.card_no))
    assert 0 < row.hold_cents < 8000 and row.moved_cents + row.hold_cents == 8000      # a daily cap or more
    moved, hold = format_cents(row.moved_cents, "CNY"), format_cents(row.hold_cents, "CNY")
    assert "replaces card %d and holds %s; %s is held for the lost card's late offline debits" % (
        issued.card_no, moved, hold) in replaced
    assert card_balance(sim.park_keys, new).balance_cents == row.moved_cents
    page.click("#desk-read")
    assert "replaces card %d: %s moved, %s held, released by" % (issued.card_no, moved, hold) in page.inner_text(
        "#card-replacement")
    shot(page, "desk-replaced")
    assert "was replaced already" in act(page, "replace", lost_card_no=str(issued.card_no))
    context.close()


def test_members_are_registered_found_and_changed(chromium, park):  # noqa: F811
    context, page = tab(chromium, park)
    log_in(page, "cas")
    page.goto("/members")
    assert page.inner_text("h1") == "Members"
    form = "member-register form"
    assert "is not a phone number" in sent(page, form, name="Li Wei", phone="call me")
    assert "is member 1001 now" in sent(page, form, name="Li Wei", phone="+86 138 0000 1234")
    assert page.inner_text("#member-phone") == "+8613800001234"
    assert "nothing was added" in sent(page, form, name="Wang", phone="+86-138-0000-1234")     # the same phone
    sent(page, form, name="Wang Fang", phone="13900001111")
    page.goto("/members?by=phone&q=%2B86 138-0000-1234")
    assert "Member 1001: Li Wei" in page.inner_text("#member h2")
    assert "details are changed" in sent(page, "member-details", name="Li Wei-Ming", note="season pass")
    assert "Member 1001: Li Wei-Ming" in page.inner_text("#member h2")
    assert "is member 1002's" in sent(page, "member-details", phone="13900001111")      # another member's phone
    page.select_option("#member-tier-form [name=tier]", label="gold")
    page.click("#member-tier-form button")
    page.wait_for_selector("p.flash")
    assert "tier is changed" in page.inner_text("p.flash") and page.inner_text("#member-tier") == "gold"
    shot(page, "members")
    page.goto("/members?by=card_no&q=4242")
    assert "no member has card 4242" in page.inner_text("#member-refused")
    page.goto("/members?by=member_no&q=abc")
    assert "must be a whole number" in page.inner_text("#member-refused")
    assert "Wang Fang" in page.inner_text("#members")
    with page.expect_navigation():
        page.select_option("select[name=locale]", "zh_Hans")        # the operator's language: 简体中文
    page.goto("/members?by=member_no&q=1001")
    assert page.inner_text("h1") == "会员" and "会员 1001：Li Wei-Ming" in page.inner_text("#member h2")
    page.goto("/desk")
    assert "班次" in page.inner_text("#desk-shift") and page.inner_text("#shift-open button") == "开班"
    shot(page, "desk-zh")
    context.close()


def test_a_credit_form_sent_again_after_the_hub_forgot_its_answer_grants_once(chromium, park):  # noqa: F811
    issued = issued_in_a_shift(park, "cas", 1000)
    context, page = tab(chromium, park)
    log_in(page, "cas")
    page.goto("/desk")
    assert "not an amount in CNY" in act(page, "credit", card_no=str(issued.card_no), amount="1.001", reason="x")
    form = {name: page.input_value("#action-credit [name=%s]" % name) for name in ("csrf", "op", "desk")}
    fields = {**form, "card_no": str(issued.card_no), "amount": "15", "reason": "paid at the desk"}
    first = page.request.post("/desk/credit", form=fields)
    assert "Credit 1 of CNY 15.00 is granted to card %d" % issued.card_no in first.text()
    for session in park.api.app.state.web.sessions._by_token.values():
        session.answers.clear()         # what a restarted hub knows of the form: nothing but its kept grant
    again = page.request.post("/desk/credit", form=fields)
    assert "Credit 1 of CNY 15.00 is granted" in again.text()
    page.goto("/credits")       # the credits page's own form: the same
    fields = {"csrf": form["csrf"], "once": page.input_value("input[name=once]"), "card_no": str(issued.card_no),
              "amount": "7", "reason": "paid by phone"}
    assert "Credit 2 of CNY 7.00" in page.request.post("/credits", form=fields).text()
    for session in park.api.app.state.web.sessions._by_token.values():
        session.answers.clear()
    assert "Credit 2 of CNY 7.00" in page.request.post("/credits", form=fields).text()
    credits = park.call(park.hub.storage.pending_credits(issued.card_no))
    assert [(c.credit_no, c.amount_cents) for c in credits] == [(1, 1500), (2, 700)]
    assert desk_records(park)       # the card's issue only: a credit is no record until its tap
    context.close()
