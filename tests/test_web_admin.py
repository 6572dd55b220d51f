"""The manager's and finance's pages in real headless Chromium: member tiers, consumption rules, booth staff with
the staff shift report (the booths' own totals against the hub's), booth sales by item and the discounts given,
the desk's day, liabilities and a Z report, tickets, passages and refusals, the card trace naming every record
kind, and the session rules on the login page; each page in both languages, each refused to an operator without
its privilege, each CSV downloaded. Every page is saved as a screenshot under test-artifacts/web/."""

from pathlib import Path

import pytest

from protocol import frames
from protocol import record as R
from protocol import staff as S

from parkcard.services import discounts, items, operators, shifts, tickets, tiers
from parkcard.services import park as park_settings
from parkcard.services.privileges import Actor
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, desk_issued
from test_booth_reports import COLA, GOLD
from test_booth_reports import _records as booth_records
from test_hub_records import DAY_S, UID
from test_hub_staff import BOOTH as SHIFT_BOOTH
from test_hub_staff import ShiftBooth, staff_card
from test_web_browser import (PASSWORD, _sales, audit_actions, chromium, in_chinese, log_in, page,  # noqa: F401
                              park, send, shot)

pytestmark = [pytest.mark.browser, pytest.mark.broker]

DAY = "2026-07-01"          # DAY_S's date: the park runs on UTC in these tests


@pytest.fixture
def manager(park):
    """A manager's account, `man` (the park's day: configuration, members, reports)."""
    park.call(operators.create_operator(park.hub.storage, Actor("setup"), "man", PASSWORD, ["manager"]))
    return "man"


def flash(page):
    """The page's flash message."""
    return page.inner_text("p.flash[role=status]")


def downloaded(page, link):
    """The lines of the file the link downloads."""
    with page.expect_download() as downloading:
        page.click(link)
    return Path(downloading.value.path()).read_text().splitlines()


def test_tiers_show_bonus_and_discounts_change_for_an_admin_and_are_refused_to_a_cashier(page, park):
    log_in(page, "ada")
    page.click("header nav a[href='/tiers']")
    assert page.inner_text("h1") == "Member tiers"
    before = len(park.call(tiers.list_tiers(park.hub.storage, Actor("check"))))
    assert page.locator("#tiers tbody tr").count() == before
    send(page, "#tier-change", code="1", bonus_bps="250")
    assert "Tier 1" in flash(page) and "is changed" in flash(page)
    assert page.inner_text('#tiers tr[data-tier="1"] td:nth-child(3)') == "250"
    send(page, "#tier-discount", tier="1", sale_bp="500", total_bp="")
    assert "Tier 1 is changed: discount rules version 1." == flash(page) and page.url.endswith("/tiers")
    assert page.inner_text('#tiers tr[data-tier="1"] td:nth-child(5)') == "500"
    send(page, "#tier-add", code="9", name="Platinum", bonus_bps="1000")
    assert "Tier 9 (Platinum) is added." == flash(page)
    send(page, "#tier-change", code="12", bonus_bps="5")
    assert "no tier has code 12" in page.inner_text("p.flash.error")
    shot(page, "tiers")
    in_chinese(page)
    assert page.inner_text("h1") == "会员等级"
    shot(page, "tiers-zh")
    assert ("ada", "tier.set") in audit_actions(park) and ("ada", "tier.add") in audit_actions(park)
    page.click("#logout")
    log_in(page, "cas")
    assert "/tiers" not in page.inner_html("header nav")
    page.goto("/tiers")                         # a cashier reads the tiers (park.read) but may not change them
    csrf = page.eval_on_selector("input[name=csrf]", "e => e.value")
    refused = page.request.post("/tiers/change", form={"csrf": csrf, "code": "1", "bonus_bps": "9999"})
    assert "无权执行此操作" in refused.text()         # the flash of the page the refusal leads back to
    page.goto("/tiers")
    assert page.inner_text('#tiers tr[data-tier="1"] td:nth-child(3)') == "250"


def test_consumption_rules_are_set_in_the_currency_and_cleared_by_a_manager_only(page, park, manager):
    log_in(page, manager)
    page.click("header nav a[href='/rules']")
    assert "No rules" in page.inner_text("#rules")
    page.select_option("#rule-set select[name=scope]", "category")
    page.check("#rule-set input[name=type_visitor]")
    send(page, "#rule-set", ident="3", tx_cap_cents="12.50", daily_cap_cents="80", tiers="0,1", member_tier="1")
    assert "Consumption rules version 1" in flash(page)
    row = page.inner_text('#rules tr[data-rule="category-3"]')
    assert "CNY 12.50" in row and "CNY 80.00" in row and "visitor cards" in row and "0,1" in row
    page.select_option("#rule-set select[name=scope]", "merchant")
    send(page, "#rule-set", ident="99", tx_cap_cents="", daily_cap_cents="", tiers="", member_tier="")
    assert "there is no merchant 99" in page.inner_text("p.flash.error")
    send(page, "#rule-set", ident=str(MERCHANT_ICE), tx_cap_cents="1.2.3")
    assert "the cap per sale" in page.inner_text("p.flash.error")
    shot(page, "rules")
    in_chinese(page)
    assert page.inner_text("h1") == "消费规则"
    shot(page, "rules-zh")
    page.click('#rules tr[data-rule="category-3"] button')
    assert flash(page) == "消费规则第 2 版：该规则已删除。"
    assert page.locator('#rules tr[data-rule="category-3"]').count() == 0
    page.click("#logout")
    log_in(page, "fin")                         # finance reads the rules but may not change them
    page.goto("/rules")
    csrf = page.eval_on_selector("input[name=csrf]", "e => e.value")
    refused = page.request.post("/rules", form={"csrf": csrf, "scope": "category", "ident": "3", "tx_cap_cents": "5"})
    assert "无权执行此操作" in refused.text()
    page.goto("/rules")
    assert page.locator('#rules tr[data-rule="category-3"]').count() == 0


def _shifts(park):
    """Mei's two shifts at booth 5 on DAY: the first reconciles, the second's terminal counted 3 sales for 12.00
    where the hub holds 1 for 2.00; a reversal in the first. Returns (visitor card, staff card)."""
    hub = park.hub
    park.call(hub.register_terminal(SHIFT_BOOTH, MERCHANT_ICE, frames.ROLE_POS, "booth 5"))
    member, _ = park.call(staff_card(hub))
    visitor = park.call(desk_issued(hub, UID, 10000, time_s=DAY_S)).card_no
    booth = ShiftBooth(hub, member.card_no)
    park.call(booth.upload(booth.opening(), booth.sale(visitor, 2, 1000, 9000), booth.sale(visitor, 3, 500, 8500)))
    park.call(booth.upload(booth.reversal(visitor, 4, 3, 500, 9000), booth.closing(S.ShiftTotals(2, 1500, 1, 500))))
    park.call(booth.upload(booth.opening(), booth.sale(visitor, 5, 200, 8800), booth.closing(S.ShiftTotals(3, 1200))))
    return visitor, member.card_no


def test_staff_shifts_reconcile_the_booths_totals_with_the_hubs_and_the_trace_names_every_kind(page, park, manager):
    visitor, staff_no = _shifts(park)
    log_in(page, manager)
    page.click("header nav a[href='/staff']")
    send(page, "#staff-add", name="Lan")
    assert "(Lan) is added" in flash(page)
    assert "Lan" in page.inner_text("#staff") and "Mei" in page.inner_text("#staff")
    page.goto("/staff?day=%s" % DAY)
    assert "Mei" in page.inner_text("#by-staff") and "CNY 12.00" in page.inner_text("#by-staff")   # 17.00 - 5.00
    bars = page.locator("#staff-chart svg rect.bar title")          # a bar per staff member with sales
    assert [bars.nth(i).text_content() for i in range(bars.count())] == ["Mei net sales: CNY 12.00"]
    first = page.inner_text('#shifts tr[data-shift="%d-1"]' % SHIFT_BOOTH)
    second = page.inner_text('#shifts tr[data-shift="%d-6"]' % SHIFT_BOOTH)
    assert first.rstrip().endswith("equal")
    assert "3 / CNY 12.00" in second and "1 / CNY 2.00" in second and second.rstrip().endswith("different")
    shot(page, "staff")
    lines = downloaded(page, "#shifts-csv")
    assert lines[0].startswith("terminal,opened_seq,staff_card,name")
    assert lines[2].startswith("%d,6,%d,Mei," % (SHIFT_BOOTH, staff_no))
    assert lines[2].endswith(",1,200,0,0,3,1200,0,0,different")
    send(page, "#require-shift", terminal=str(SHIFT_BOOTH))     # a booth's setting: a technician's or admin's
    assert "may not do this (terminals.manage)" in page.inner_text("p.flash.error")
    in_chinese(page)
    page.goto("/staff?day=%s" % DAY)
    assert page.inner_text("h1") == "营业员" and "不一致" in page.inner_text("#shifts")
    shot(page, "staff-zh")
    page.goto("/trace?card=%d" % visitor)
    assert "商户冲正" in page.inner_text("#trace")
    page.goto("/trace?card=%d" % staff_no)
    assert "营业员当班" in page.inner_text("#trace")
    page.select_option("select[name=locale]", "en")
    page.wait_for_selector("html[lang=en]")
    page.goto("/trace?card=%d" % staff_no)
    kinds = page.locator("#trace td[data-kind]")
    assert {kinds.nth(i).inner_text() for i in range(kinds.count())} >= {"staff shift at a booth"}
    assert not any(kinds.nth(i).inner_text().isdigit() for i in range(kinds.count()))
    page.goto("/trace?card=%d" % visitor)
    assert "sale reversed by the booth" in page.inner_text("#trace")
    shot(page, "trace-kinds")
    page.click("#logout")
    log_in(page, "tec")                         # a technician holds no reports.view
    assert page.goto("/staff").status == 403 and "may not" in page.inner_text("#refused")
    assert page.request.get("/staff/shifts.csv?day=%s" % DAY).status == 403


def test_booth_sales_by_terminal_and_item_with_a_chart_and_csv_and_a_merchant_sees_its_own(page, park):
    _sales(park)
    log_in(page, "fin")
    page.goto("/reports")
    page.click("#report-links a[href='/reports/sales']")
    assert page.inner_text("h1") == "Booth sales"
    page.select_option("#sales-period select[name=by]", "terminal")
    page.click("#sales-period button")
    assert page.locator("#sales-chart svg rect.bar").count() == 1
    assert "CNY 22.49" in page.inner_text("#sales")
    shot(page, "sales-report")
    lines = downloaded(page, "#sales-csv")
    assert lines[0].startswith("key,name,sales,quantity,currency") and ",22.49," in lines[1]
    assert downloaded(page, "#discounts-csv")[0].startswith("tier,sales,currency,discount")
    page.goto("/reports/sales?by=nonsense")
    assert "Choose how to group the sales" in page.inner_text("#refused")
    page.goto("/reports/sales?from=2026-13-01")
    assert "must be a date" in page.inner_text("#refused")
    in_chinese(page)
    page.goto("/reports/sales?by=merchant")
    assert page.inner_text("h1") == "商户销售"
    shot(page, "sales-report-zh")
    page.click("#logout")
    log_in(page, "desk")                        # the park desk's merchant login: not the ice-cream booth's sales
    page.goto("/reports/sales?by=merchant")
    assert "CNY 22.49" not in page.inner_text("#sales")
    page.click("#logout")
    log_in(page, "tec")
    assert page.goto("/reports/sales").status == 403


def test_the_desks_day_liabilities_and_a_z_report_and_a_cashier_sees_only_her_own_z(page, park):
    card_no = _sales(park)
    hub = park.hub
    park.call(shifts.close_shift(hub.storage, Actor("desk-fixture"), DESK_ID, 10000))
    log_in(page, "fin")
    page.goto("/reports/desk")
    assert "issue" in page.inner_text("#desk-lines") and "CNY 100.00" in page.inner_text("#desk-lines")
    assert "CNY 77.51" in page.inner_text("#liabilities")
    assert downloaded(page, "#desk-csv")[0] == "day,group,kind,count,amount_cents,bonus_cents,deposit_cents"
    assert downloaded(page, "#liabilities-csv")[0] == "liability,amount_cents"
    send(page, "#z-report-form", z="1")
    assert "Z report 1: shift 1 at desk %d" % DESK_ID in page.inner_text("#z-heading")
    assert "CNY 100.00" in page.inner_text("#z-report")
    shot(page, "desk-report")
    send(page, "#z-report-form", z="7")
    assert "there is no Z report 7" in page.inner_text("#z-error")
    send(page, "#z-report-form", z="99999999999999999999")      # past what the store holds: said, not failed
    assert "a Z report number must be a whole number from 1 to 2147483647" in page.inner_text("#z-error")
    assert page.goto("/desk/z/99999999999999999999").status == 404
    in_chinese(page)
    page.goto("/reports/desk?z=1")
    assert page.inner_text("h1") == "前台与Z报表"
    shot(page, "desk-report-zh")
    page.click("#logout")
    log_in(page, "cas")                         # no reports.view: the desk's report is refused
    assert page.goto("/reports/desk").status == 403
    assert card_no


def test_tickets_passages_and_refusals_show_to_whom_each_part_is_allowed(page, park, manager):
    park.call(tickets.add_product(park.hub.storage, Actor("setup"), "Day pass", "day", price_cents=15000,
                                  valid_days=1))
    log_in(page, manager)
    page.goto("/reports/gates")
    assert "Day pass" in page.inner_text("#ticket-products")
    assert page.locator("#passages-chart svg").count() == 1 and "No refusals" in page.inner_text("#refusals")
    assert downloaded(page, "#tickets-csv")[1].startswith("1,Day pass,0,0,")
    assert downloaded(page, "#passages-csv") == ["gate,hour,entries,exits,refusals"]
    assert downloaded(page, "#refusals-csv") == ["reason,refusals"]
    shot(page, "gates-report")
    in_chinese(page)
    assert page.inner_text("h1") == "门票与闸机"
    shot(page, "gates-report-zh")
    page.click("#logout")
    log_in(page, "fin")                         # finance reads the tickets, not the passages (occupancy.read)
    page.goto("/reports/gates")
    assert "Day pass" in page.inner_text("#ticket-products")
    assert "无权执行此操作" in page.inner_text("#passages-refused")
    page.click("#logout")
    log_in(page, "ice")
    assert page.goto("/reports/gates").status == 403


def test_the_login_page_states_the_parks_session_limits_and_the_cookie_lasts_as_long(page, park):
    park.call(park_settings.set_session_limits(park.hub.storage, Actor("setup"), idle_s=1800, max_s=36000))
    page.goto("/login")
    rules = page.inner_text("#session-rules")
    assert "after 30 min without use, and 10 h after its login at the latest" in rules
    assert "5 failed logins" in rules
    shot(page, "login")
    answer = log_in(page, "ada")
    assert "Max-Age=36000" in answer.header_value("set-cookie")
    assert page.url.endswith("/fleet")


def test_best_sellers_by_item_come_from_the_sale_lines_and_the_discounts_show_who_bore_them(page, park):
    hub = park.hub
    admin = hub.actor("setup")          # tells the running hub, as the CLI's notice does
    park.call(hub.register_terminal(SHIFT_BOOTH, MERCHANT_ICE, frames.ROLE_POS, "ice booth"))
    park.call(discounts.set_bearer(hub.storage, admin, MERCHANT_ICE, "merchant"))
    park.call(items.set_item(hub.storage, admin, MERCHANT_ICE, COLA, "Cola", 350, 2))
    card_no = park.call(desk_issued(hub, UID, 10000, time_s=DAY_S)).card_no
    ice, _toys = booth_records(card_no)
    mac = hub.registry.get(SHIFT_BOOTH).record_mac
    park.call(hub.ingest.apply_local(SHIFT_BOOTH, [(R.STATUS_COMMITTED, r.encode(mac)) for r in ice]))
    log_in(page, "fin")
    page.goto("/reports/sales?by=item&from=%s&to=2026-07-02" % DAY)
    cola = page.inner_text('#sales tr[data-key="%d"]' % COLA)
    assert cola.startswith("%d Cola" % COLA) and "\t2\t5\t" in cola and "CNY 15.75" in cola    # 2 sales, 5 cans
    assert page.locator("#sales tbody tr").first.get_attribute("data-key") == str(COLA)       # the best seller
    assert page.locator("#sales-chart svg rect.bar").count() == 3     # Cola paid and discounted, Cake paid
    given = page.inner_text('#discounts-given tr[data-tier="%d"]' % GOLD)
    assert "CNY 1.75" in given and given.rstrip().endswith("CNY 1.75")                       # the merchant bore it
    shot(page, "sales-by-item")


def test_an_admin_creates_an_api_key_shown_once_that_the_api_takes_until_it_is_revoked(page, park):
    log_in(page, "cas")
    assert page.goto("/apikeys").status == 403
    assert "API keys" not in page.inner_text("header nav")
    page.click("#logout")
    log_in(page, "ada")
    page.goto("/apikeys")
    assert page.get_attribute("#api-docs", "href") == park.url + "/api/v1/docs"
    assert "No API key yet." in page.inner_text("#apikeys")
    page.fill("#apikey-create input[name=name]", "ticketing")
    page.click("#apikey-create button")     # no scope ticked: refused in words, nothing made
    assert "no scope" in flash(page)
    assert "No API key yet." in page.inner_text("#apikeys")
    page.fill("#apikey-create input[name=name]", "ticketing")
    page.check("#apikey-create input[name='scope_fleet:read']")
    page.check("#apikey-create input[name='scope_reports:read']")
    page.click("#apikey-create button")
    said = flash(page)
    secret = said.split(": ")[1].split(". Copy")[0]
    assert secret.startswith("pk_") and "not shown again" in said
    assert "fleet:read, reports:read" in page.inner_text("tr[data-key=ticketing]")
    shot(page, "apikeys")
    page.reload()
    assert secret not in page.content()         # shown once: the hub keeps only its hash
    bearer = {"Authorization": "Bearer %s" % secret}
    assert page.request.get("/api/v1/terminals", headers=bearer).status == 200
    assert page.request.get("/api/v1/blacklist", headers=bearer).status == 403     # not among its scopes
    page.fill("#apikey-create input[name=name]", "ticketing")
    page.check("#apikey-create input[name='scope_fleet:read']")
    page.click("#apikey-create button")
    assert "ticketing" in flash(page) and page.locator("tr[data-key]").count() == 1
    page.click("tr[data-key=ticketing] form button")
    assert flash(page) == "API key ticketing is revoked."
    assert page.locator("tr[data-key=ticketing] form").count() == 0
    assert page.request.get("/api/v1/terminals", headers=bearer).status == 401
    in_chinese(page)
    assert "吊销" in page.inner_text("#apikeys") and "创建 API 密钥" in page.inner_text("main")
    shot(page, "apikeys-zh")
    assert [a for a in audit_actions(park) if a[1].startswith("apikey.")] == [("ada", "apikey.create"),
                                                                            ("ada", "apikey.revoke")]
