"""The front desk page's staff cards and member tiers, and the list of Z reports, in real headless Chromium over a
simulated park: a manager issues a booth staff member's staff card through the desk terminal and the card panel
shows the staff card read back; a member's new tier shows as pending on the card read and its button writes it;
Z reports are listed by day and desk (a cashier's own, every one for a manager), linked, as CSV, on a phone too;
a page refused for want of a privilege says so in the page's language, and the desk's words (a card's status, its
desk operations) are translated, as is a desk's refusal (a refund over the card's cash) with the rule's reason in it.
Screenshots under test-artifacts/web/."""

import pytest

from protocol import card as C

from parkcard.services import members, operators, shifts, staff
from parkcard.services.privileges import Actor
from parkcard_devkit.park_sim import DESK_TERMINAL_ID
from test_web_browser import PASSWORD, chromium, log_in, shot  # noqa: F401 - the module's browser fixture
from test_web_desk import PHONE, act, tab
from test_web_desk_day import park  # noqa: F401 - the park whose desk has no open shift; cashier cas, manager man

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.slow]

STAFF_UID = bytes.fromhex("04d35c0000b001")
MEMBER_UID = bytes.fromhex("04d35c0000b002")
SETUP = Actor("setup")


def card_info(park_keys, virtual):
    """The CardInfo a virtual card's own info block holds."""
    return C.CardInfo.decode(bytes(virtual.blocks[C.INFO_BLOCK]), C.CardKeys(park_keys, virtual.uid))


def test_a_manager_issues_a_staff_card_at_the_desk_and_the_panel_shows_it_read(chromium, park):  # noqa: F811
    sim = park.sim
    mei = park.call(staff.add(sim.hub.storage, SETUP, "Mei", 2))
    card = park.call(sim.new_card(STAFF_UID))
    park.call(shifts.open_shift(sim.hub.storage, sim.hub.actor("man"), DESK_TERMINAL_ID, 0))
    context, page = tab(chromium, park)
    log_in(page, "man")
    page.goto("/staff")         # from the staff list to the desk, the member chosen
    assert "not issued yet" in page.inner_text("#staff tr[data-staff='%d']" % mei.id)
    page.click("#staff tr[data-staff='%d'] a.issue-staff-card" % mei.id)
    assert page.input_value("#action-staff_card select[name=staff]") == str(mei.id)
    park.on_loop(sim.put_on_desk, card)
    page.click("#desk-read")
    assert "A stock card" in page.inner_text("#desk-card")
    assert page.inner_text("#action-staff_card select[name=staff]") == "%d Mei · merchant 2" % mei.id
    said = act(page, "staff_card")
    assert "is issued to staff member %d" % mei.id in said
    (issued,) = park.call(staff.listing(sim.hub.storage, SETUP))
    assert issued.card_no is not None and "Staff card %d" % issued.card_no in said
    panel = page.inner_text("#desk-card")       # read back after the answer: the card as it now is
    assert "Staff card %d" % issued.card_no in panel and "Mei" in page.inner_text("#card-staff")
    info = card_info(sim.park_keys, card)
    assert info.flags & C.FLAG_STAFF and info.card_no == issued.card_no
    shot(page, "desk-staff-card")
    page.click("#desk-read")        # read again: a staff card is read, not refused as no visitor card
    assert "Staff card %d" % issued.card_no in page.inner_text("#desk-card")
    assert "Every staff member holds a staff card" in page.inner_text("#action-staff_card")
    page.goto("/staff")
    assert str(issued.card_no) in page.inner_text("#staff tr[data-staff='%d']" % mei.id)
    assert page.locator("a.issue-staff-card").count() == 0
    context.close()
    context, page = tab(chromium, park)     # a cashier serves cards, but staff are the manager's
    log_in(page, "cas")
    page.goto("/desk")
    assert page.locator("#action-staff_card").count() == 0
    context.close()


def test_a_members_new_tier_shows_as_pending_on_the_card_read_and_written_from_the_panel(chromium, park):  # noqa: F811
    sim = park.sim
    store = sim.hub.storage
    member = park.call(members.register(store, SETUP, "Li Wei", "+86 138-0000-1234"))
    card = park.call(sim.new_card(MEMBER_UID))
    park.call(shifts.open_shift(store, sim.hub.actor("cas"), DESK_TERMINAL_ID, 0))
    issued = park.call(sim.at_desk(card, sim.hub.desk(DESK_TERMINAL_ID, sim.hub.actor("cas")).issue(
        "tier-issue", 5000, member_no=member.member_no)))
    context, page = tab(chromium, park)
    log_in(page, "cas")
    page.goto("/desk")
    park.on_loop(sim.put_on_desk, card)
    page.click("#desk-read")
    assert page.locator("#card-tier-pending").count() == 0         # the card holds its member's tier
    park.call(members.set_tier(store, SETUP, member.member_no, "gold"))
    page.click("#desk-read")
    assert page.inner_text("#card-tier") == "standard"
    assert "gold, not yet on the card" in page.inner_text("#card-tier-pending")
    shot(page, "desk-tier-pending")
    page.click("#card-tier-pending button")
    page.wait_for_selector("#desk-outcome")
    assert "Card %d carries its member's tier now" % issued.card_no in page.inner_text("#desk-outcome")
    assert card_info(sim.park_keys, card).tier == C.TIER_GOLD
    assert page.inner_text("#card-tier") == "gold" and page.locator("#card-tier-pending").count() == 0
    assert park.call(members.tiers_pending(store, SETUP)) == {}
    context.close()


def test_z_reports_are_listed_by_day_and_desk_each_linked_and_as_csv(chromium, park):  # noqa: F811
    store = park.sim.hub.storage
    cashier = park.sim.hub.actor("cas")
    park.call(shifts.open_shift(store, cashier, DESK_TERMINAL_ID, 20000))
    z_no, _z = park.call(shifts.close_shift(store, cashier, DESK_TERMINAL_ID, 19950))      # 0.50 short
    context, page = tab(chromium, park)
    log_in(page, "cas")
    page.goto("/desk")
    page.click("#desk-z-list")
    rows = page.locator("#z-list tbody tr")
    assert rows.count() == 1        # her own: the park's set-up shift is another's
    assert rows.first.inner_text().split("\t")[:4] == [str(z_no), str(DESK_TERMINAL_ID), "2", "cas"]
    assert "CNY 200.00" in rows.first.inner_text() and "CNY -0.50" in rows.first.inner_text()
    assert page.locator("#report-links a").count() == 1    # the reports of reports.view are not hers
    page.click("#z-list a[href='/desk/z/%d']" % z_no)
    assert page.inner_text("#z-difference") == "CNY -0.50"
    context.close()
    context, page = tab(chromium, park)
    log_in(page, "man")
    page.goto("/reports/z")
    assert page.locator("#z-list tbody tr").count() == 2         # every cashier's for shifts.review
    assert page.locator("#z-list tbody tr").first.inner_text().startswith(str(z_no))
    page.fill("#z-filter [name=day]", "2001-01-01")
    page.click("#z-filter button")
    assert "No Z report" in page.inner_text("#z-list")
    page.fill("#z-filter [name=day]", "")
    page.fill("#z-filter [name=desk]", str(DESK_TERMINAL_ID))
    page.click("#z-filter button")
    assert page.locator("#z-list tbody tr").count() == 2
    shot(page, "z-reports")
    with page.expect_download() as got:
        page.click("#z-csv")
    lines = open(got.value.path(), encoding="utf-8").read().splitlines()
    assert lines[0] == ("z_report,shift,desk,opened_by,opened,closed_by,closed,expected_cents,counted_cents,"
                        "difference_cents")
    assert lines[1].startswith("%d,2,%d,cas," % (z_no, DESK_TERMINAL_ID)) and lines[1].endswith(",20000,19950,-50")
    bad = page.goto("/reports/z?day=yesterday")
    assert bad.status == 400 and "must be a date like 2026-07-01" in page.inner_text("main")
    bad = page.goto("/reports/z?desk=two")
    assert bad.status == 400 and "must be a whole number" in page.inner_text("main")
    context.close()
    context, page = tab(chromium, park, viewport=PHONE)
    log_in(page, "man")
    page.goto("/reports/z")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()


def test_a_refusal_and_the_desks_words_are_in_the_pages_language(chromium, park):  # noqa: F811
    sim = park.sim
    card = park.call(sim.new_card(MEMBER_UID))
    park.call(shifts.open_shift(sim.hub.storage, sim.hub.actor("cas"), DESK_TERMINAL_ID, 0))
    issued = park.call(sim.at_desk(card, sim.hub.desk(DESK_TERMINAL_ID, sim.hub.actor("cas")).issue(
        "words-issue", 5000)))
    context, page = tab(chromium, park)
    log_in(page, "cas")
    page.select_option("select[name=locale]", "zh_Hans")
    page.wait_for_selector("html[lang=zh-Hans]")
    refused = page.goto("/reports/desk")
    said = page.inner_text("main")
    assert refused.status == 403 and "cas（收银员）无权执行此操作（reports.view）" in said
    assert "财务 或 经理 或 管理员" in said and "may not" not in said
    page.goto("/desk")
    park.on_loop(sim.put_on_desk, card)
    page.click("#desk-read")
    panel = page.inner_text("#desk-card")
    assert "正常" in panel and "发卡 · CNY 50.00 · 已入账" in page.inner_text("#card-operations")
    assert "active" not in panel and "posted" not in panel
    shot(page, "desk-card-zh")
    # The desk's refusal, with the refund rule's refusal inside it, both in the page's language.
    said = act(page, "refund", amount="500")
    assert "卡 %d：CNY 500.00 超过可退的 CNY 50.00（赠送的 CNY 0.00 不予退还）：最多退 CNY 50.00" % issued.card_no in said
    assert "refundable" not in said
    shot(page, "desk-refund-refused-zh")
    # More than a card can hold is refused at the page, in the park's currency, before any card is written.
    said = act(page, "top_up", amount="99999999")
    assert "充值金额：最多 CNY 83,886.07（一张卡所能存的上限），不能是 CNY 99,999,999.00" in said
    # The language is switched on the page the refund's POST answered: it comes back as the desk, in English.
    page.select_option("select[name=locale]", "en")
    page.wait_for_selector("html[lang=en]")
    assert page.url.endswith("/desk")
    park.on_loop(sim.put_on_desk, card)
    page.click("#desk-read")
    said = act(page, "refund", amount="500")
    assert ("card %d: CNY 500.00 is over the refundable CNY 50.00 (bonus CNY 0.00 is never refunded): refund at "
            "most CNY 50.00" % issued.card_no) in said
    context.close()
