"""The operator web app in real headless Chromium (Debian's chromium driven by Playwright): login, wrong
password, login rate limit, CSRF refusals, session fixation, roles refused in the services, the live fleet
updating as a terminal connects and goes away, terminal actions audited, the sales chart, a merchant login
seeing its own sales only, alarms, quarantine and the card trace, price lists, discounts, ticket products, live
gate occupancy, pending credits granted once per form, and both languages. Every page is saved as a screenshot
under test-artifacts/web/."""

import time
from pathlib import Path

import pytest

from protocol import frames
from protocol import record as R

from parkcard.services import credits, operators, settlement
from parkcard.services import park as park_service, tickets
from parkcard.services.privileges import Actor
from parkcard.web.pages import LIVE_STREAMS_MAX
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, MERCHANT_PARK, ScriptedTerminal, desk_issued
from web_kit import CHROMIUM, CHROMIUM_ARGS, HubThread

pytestmark = [pytest.mark.browser, pytest.mark.broker]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "web"
PASSWORD = "correct horse battery"
BOOTH = 7
UID = b"\x04\x01\x02\x03"
WAIT_MS = 15_000
# (login, roles, merchant) of the park's operators in these tests
OPERATORS = (("ada", ["admin"], None), ("cas", ["cashier"], None), ("tec", ["technician"], None),
             ("fin", ["finance"], None), ("ice", ["merchant"], MERCHANT_ICE), ("desk", ["merchant"], MERCHANT_PARK))


# Module scope: the browser tests live in this module, and Playwright's sync API keeps an event loop of its
# own in this thread while it runs, which asyncio.run() in later modules' tests must not meet.
@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for the browser tests."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (%s): run ./setup.sh" % CHROMIUM)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def park(tmp_path, broker):
    """A hub serving its web app, with an operator per role (PASSWORD each)."""
    hub = HubThread(str(tmp_path / "hub.db"), broker).start()
    for name, roles, merchant_id in OPERATORS:
        hub.call(operators.create_operator(hub.hub.storage, Actor("setup"), name, PASSWORD, roles,
                                           merchant_id=merchant_id))
    yield hub
    hub.stop()


@pytest.fixture
def page(chromium, park):
    """A fresh browser context (no cookies) on the park's web app."""
    context = chromium.new_context(base_url=park.url, locale="en-GB")
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    yield tab
    context.close()


def shot(page, name):
    """Save the page as test-artifacts/web/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / ("%s.png" % name)), full_page=True)


def log_in(page, user, password=PASSWORD):
    """Fill and send the login form; return the response of the POST."""
    if "/login" not in page.url:
        page.goto("/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as posted:
        page.click("#login button")
    page.wait_for_load_state()
    return posted.value


def audit_actions(park):
    """[(actor, action)] of the audit log."""
    return [(e["actor"], e["action"]) for e in park.hub.storage.oplog.entries()]


def test_login_wrong_password_logout_and_every_page_needs_a_login(page, park):
    page.goto("/fleet")
    assert page.url.endswith("/login?next=/fleet")
    assert log_in(page, "ada", "not the password").status == 401
    assert "Wrong user name or password" in page.inner_text("#login-error")
    shot(page, "login-refused")
    assert log_in(page, "ada").status == 303
    assert page.url.endswith("/fleet")          # back where the login was asked for
    for path, heading in (("/fleet", "Live fleet"), ("/merchants", "Merchants"), ("/blacklist", "Blacklist"),
                          ("/settlement", "Settlement"), ("/audit", "Audit log"), ("/operators", "Operator accounts"),
                          ("/desk", "Front desk"), ("/fleet/%d" % DESK_ID, "Terminal %d" % DESK_ID)):
        page.goto(path)
        assert page.inner_text("h1").startswith(heading)
        shot(page, "admin" + path.replace("/", "-"))
    page.click("#logout")
    page.wait_for_url("**/login")
    for path in ("/fleet", "/settlement", "/operators", "/fleet/events"):
        response = page.request.get(path, max_redirects=0)
        assert response.status == 303 and "/login" in response.headers["location"]


def test_no_page_or_action_of_the_app_answers_without_a_login(page):
    from parkcard.web.app import PAGE_ROUTERS
    open_paths = {"/login"}
    checked = 0
    for router in PAGE_ROUTERS:
        for route in router.routes:
            path = route.path.replace("{terminal_id}", str(DESK_ID)).replace("{merchant_id}", "2").replace(
                "{card_no}", "100123").replace("{username}", "ada").replace("{action}", "lock")
            if path in open_paths:
                continue
            for method in route.methods:
                response = page.request.fetch(path, method=method, max_redirects=0, form={"csrf": "x"}
                                              if method == "POST" else None)
                assert response.status == 303 and "/login" in response.headers["location"], (method, path)
                checked += 1
    assert checked >= 20


def test_a_technician_cannot_make_an_admin_the_service_refuses(page, park):
    log_in(page, "tec")
    page.goto("/fleet")
    csrf = page.eval_on_selector("input[name=csrf]", "e => e.value")
    refused = page.request.post("/operators", form={"csrf": csrf, "username": "mallory", "password": PASSWORD,
                                                    "role_admin": "1"})
    assert "may not do this" in refused.text()
    names = [o.username for o in park.call(operators.list_operators(park.hub.storage, Actor("check")))]
    assert "mallory" not in names


def test_logins_are_limited_per_user_even_with_the_right_password(page):
    for _ in range(5):
        assert log_in(page, "cas", "wrong password %d" % _).status == 401
    refused = log_in(page, "cas")
    assert refused.status == 429
    assert "Too many failed logins" in page.inner_text("#login-error")
    shot(page, "login-rate-limited")
    assert log_in(page, "fin").status == 303     # another user from the same address still may


def test_a_form_without_its_sessions_csrf_token_is_refused_and_nothing_is_done(page, park):
    log_in(page, "ada")
    forged = page.request.post("/blacklist", form={"csrf": "forged", "card_no": "100123", "force": "1"},
                               max_redirects=0)
    assert forged.status == 403 and "security token" in forged.text()
    page.goto("/blacklist")
    page.fill("#blacklist-add input[name=card_no]", "100124")
    page.check("#blacklist-add input[name=force]")
    page.eval_on_selector("#blacklist-add input[name=csrf]", "e => e.value = 'tampered'")
    page.click("#blacklist-add button")
    assert "security token" in page.inner_text("#refused")
    shot(page, "csrf-refused")
    assert park.call(park.hub.storage.blacklist_entries()) == []
    # the login form too: a POST without the login page's cookie token
    assert page.request.post("/login", form={"csrf": "x", "username": "ada", "password": PASSWORD},
                             max_redirects=0).status == 403
    # with the token, the same form works, and the service audits it under the operator's name
    page.goto("/blacklist")
    page.fill("#blacklist-add input[name=card_no]", "100125")
    page.check("#blacklist-add input[name=force]")
    page.click("#blacklist-add button")
    assert "Card 100125 is blacklisted." in page.inner_text(".flash")
    assert ("ada", "blacklist.add") in audit_actions(park)


def test_a_session_token_planted_before_the_login_is_not_the_session_after_it(page, park):
    page.context.add_cookies([{"name": "parkcard_session", "value": "planted-by-someone", "url": park.url}])
    log_in(page, "ada")
    cookie = {c["name"]: c for c in page.context.cookies()}["parkcard_session"]
    assert cookie["value"] != "planted-by-someone"
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_a_cashier_is_refused_technician_and_finance_pages_by_the_services(page):
    log_in(page, "cas")
    assert "Live fleet" not in page.inner_text("header nav")
    for path in ("/fleet", "/fleet/%d" % DESK_ID, "/settlement", "/operators"):
        response = page.goto(path)
        assert response.status == 403, path
        assert "may not do this" in page.inner_text("#refused")
    shot(page, "cashier-refused")
    action = page.request.post("/fleet/%d/lock" % DESK_ID, form={"csrf": "none"}, max_redirects=0)
    assert action.status == 403


def test_the_live_fleet_shows_a_terminal_connect_and_go_away_without_a_reload(page, park):
    log_in(page, "tec")
    page.goto("/fleet")
    page.wait_for_selector("#live[data-state=live]")
    page.evaluate("window.notReloaded = true")
    key = park.call(park.hub.register_terminal(BOOTH, MERCHANT_ICE, frames.ROLE_POS, "ice booth"))
    row = 'tr[data-terminal="%d"]' % BOOTH
    page.wait_for_selector(row)
    assert page.inner_text(row + " .state") == "offline"
    booth = ScriptedTerminal(park.broker.host, park.broker.port, BOOTH, key).connect()
    try:
        booth.status(boot=1, online=1, firmware=b"1.2.3", queue_depth=4, oldest_unsynced_age_s=9, free_heap=51200,
                     uptime_s=5)
        page.wait_for_selector(row + ".online")
        cells = page.inner_text(row)
        assert "1.2.3" in cells and "51200 B" in cells and "9 s" in cells
        shot(page, "fleet-live-online")
        booth.status(boot=1, online=0)      # what the broker publishes as the terminal's last will
        page.wait_for_selector(row + ".offline")
        shot(page, "fleet-live-offline")
        booth.status(boot=2, online=1, firmware=b"1.2.4", uptime_s=1)      # back, after a reboot
        page.wait_for_selector(row + ".online")
        assert "1.2.4" in page.inner_text(row)
    finally:
        booth.close()
    assert page.evaluate("window.notReloaded") is True


def test_live_streams_are_bounded_and_a_refused_one_is_counted(page, park):
    page.goto("/login?next=/blacklist")     # a page with no stream of its own
    log_in(page, "tec")
    web = park.api.app.state.web
    assert web.live_streams == 0
    web.live_streams = LIVE_STREAMS_MAX
    refused = page.request.get("/fleet/events")
    assert refused.status == 503 and "Too many live pages" in refused.text()
    assert web.live_streams_refused == 1
    web.live_streams = 0


def test_a_technician_locks_a_terminal_and_the_service_audits_it(page, park):
    log_in(page, "tec")
    page.goto("/fleet/%d" % DESK_ID)
    page.click("#lock")
    assert "is locked" in page.inner_text(".flash")
    assert page.inner_text("#locked") == "locked"
    page.click("#lock")
    assert "was locked already" in page.inner_text(".flash")
    assert page.inner_text("#commands tbody tr td:nth-child(1)") == "lock"
    assert page.inner_text("#commands tbody tr td:nth-child(2)") == "tec"
    shot(page, "terminal-locked")
    assert audit_actions(park).count(("tec", "terminal.lock")) == 1


def test_the_audit_logs_verification_is_said_in_the_pages_language(page, park):
    log_in(page, "ada")
    page.goto("/audit")
    verdict = page.inner_text("#verdict")
    assert verdict.startswith("audit log OK: ") and "matches the database's anchor" in verdict
    in_chinese(page)
    assert page.inner_text("#verdict").startswith("审计日志完好：共 ")
    assert "与数据库的锚点一致" in page.inner_text("#verdict")


def test_a_technician_sends_a_terminal_its_configuration_now_and_the_service_audits_it(page, park):
    key = park.call(park.hub.register_terminal(BOOTH, MERCHANT_ICE, frames.ROLE_POS, "ice booth"))
    booth = ScriptedTerminal(park.broker.host, park.broker.port, BOOTH, key).connect()
    try:
        log_in(page, "tec")
        page.goto("/fleet/%d" % BOOTH)
        configs = len([f for f in booth.down if f.type == frames.T_CONFIG])
        page.click("#config")
        assert page.inner_text(".flash") == "Terminal %d is sent its configuration now." % BOOTH
        booth.wait(lambda t: len([f for f in t.down if f.type == frames.T_CONFIG]) == configs + 1)
    finally:
        booth.close()
    csrf = page.get_attribute("form[action$='/config'] input[name=csrf]", "value")
    refused = page.request.post("/fleet/4242/config", form={"csrf": csrf})     # a terminal nobody registered
    assert 'class="flash error"' in refused.text() and "terminal 4242 is not registered" in refused.text()
    assert [e["details"] for e in park.hub.storage.oplog.entries() if e["action"] == "terminal.config_push"] == [
        {"terminal_id": BOOTH, "sent": True}]
    page.click("#logout")
    log_in(page, "fin")                         # finance holds no terminals.manage
    assert page.request.post("/fleet/%d/config" % BOOTH, form={"csrf": "none"}, max_redirects=0).status == 403


def _sales(park):
    """An issued card and two sales at the ice-cream booth today (1250 and 999 cents); the card's number."""
    hub = park.hub
    key = park.call(hub.register_terminal(BOOTH, MERCHANT_ICE, frames.ROLE_POS, "ice booth"))
    issued = park.call(desk_issued(hub, UID, 10000))
    mac = R.record_mac_for(key)
    now = int(time.time())
    entries = [(R.STATUS_COMMITTED, R.Record(R.KIND_DEBIT, BOOTH, seq, now, issued.card_no, UID, seq + 1, amount,
                                             balance).encode(mac))
               for seq, amount, balance in ((1, 1250, 8750), (2, 999, 7751))]
    park.call(hub.ingest.apply_local(BOOTH, entries))
    return issued.card_no


def test_the_settlement_chart_shows_sales_per_merchant_and_a_merchant_login_its_own_only(page, park):
    _sales(park)
    log_in(page, "fin")
    page.goto("/settlement")
    bars = page.locator("#sales-chart svg rect.bar")
    assert bars.count() == 1
    assert "Ice cream" in bars.first.text_content() and "Ice cream" in page.inner_text("#sales-chart figcaption")
    assert "CNY 22.49" in page.inner_text("#sales-totals")
    box = bars.first.bounding_box()
    assert box["height"] > 10 and box["width"] > 1      # drawn, not only in the markup
    shot(page, "settlement-chart")
    page.click("#logout")
    log_in(page, "desk")                # the park desk's merchant login: not the ice-cream booth's sales
    page.goto("/settlement")
    assert page.locator("#sales-chart svg rect.bar").count() == 0
    assert "No sales in these days." in page.inner_text("#sales-chart")
    assert page.goto("/fleet").status == 403
    page.click("#logout")
    log_in(page, "ice")
    page.goto("/settlement")
    assert "CNY 22.49" in page.inner_text("#sales-totals")
    shot(page, "settlement-merchant")


def test_an_operator_reads_the_pages_in_chinese(page):
    log_in(page, "ada")
    page.goto("/fleet")
    page.select_option("select[name=locale]", "zh_Hans")
    page.wait_for_selector("html[lang=zh-Hans]")
    assert page.inner_text("h1") == "终端实时状态"
    assert "财务结算" in page.inner_text("header nav")
    shot(page, "fleet-zh")
    page.goto("/settlement")
    assert "每日各商户销售额" in page.inner_text("main")
    shot(page, "settlement-zh")


def test_an_admin_adds_an_operator_who_then_logs_in(page, park):
    log_in(page, "ada")
    page.goto("/operators")
    page.fill("#operator-add input[name=username]", "newtech")
    page.fill("#operator-add input[name=password]", PASSWORD)
    page.check("#operator-add input[name=role_technician]")
    page.click("#operator-add button")
    assert "Operator newtech is added." in page.inner_text(".flash")
    assert ("ada", "operator.create") in audit_actions(park)
    page.click("#logout")
    log_in(page, "newtech")
    assert page.url.endswith("/fleet")
    page.click("#logout")
    log_in(page, "ada")
    page.goto("/operators")
    page.click("tr[data-operator=newtech] form button")
    assert page.inner_text(".flash") == "Operator newtech is disabled."
    again = page.request.post("/operators/newtech/disable",      # a second tab's form, sent after the first
                              form={"csrf": page.get_attribute("tr[data-operator=newtech] input[name=csrf]", "value")})
    assert "Operator newtech was disabled already." in again.text()
    page.goto("/operators")
    page.click("tr[data-operator=newtech] form button")
    assert page.inner_text(".flash") == "Operator newtech is enabled."
    assert [a for a in audit_actions(park) if a[1] in ("operator.disable", "operator.enable")] == [
        ("ada", "operator.disable"), ("ada", "operator.enable")]


PHONE_WIDTH = 375
LAPTOP_WIDTH = 1280
# Everything an element may be inside of and stick out of the screen: a box that scrolls (a wide table) or clips.
STICKING_OUT = """(width) => [...document.querySelectorAll("body *")].filter(e => {
    const box = e.getBoundingClientRect();
    if (box.width === 0 || box.right <= width + 1) return false;
    for (let up = e.parentElement; up; up = up.parentElement) {
        if (["auto", "scroll", "hidden"].includes(getComputedStyle(up).overflowX)) return false;
    }
    return true;
}).map(e => e.tagName + (e.id ? "#" + e.id : ""))"""
# The tables wider than their scrolling box: on a laptop's screen every column shows without scrolling.
SCROLLED_TABLES = """() => [...document.querySelectorAll(".scroll")].filter(e => e.scrollWidth > e.clientWidth + 1)
    .map(e => (e.querySelector("table") || e).id)"""


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("width", [PHONE_WIDTH, LAPTOP_WIDTH])
def test_every_page_fits_a_phone_and_a_laptop_in_both_languages(chromium, park, language, width):
    context = chromium.new_context(base_url=park.url, viewport={"width": width, "height": 812}, locale="en-GB")
    context.set_default_timeout(WAIT_MS)
    screen = context.new_page()
    try:
        log_in(screen, "ada")
        if language == "zh":
            in_chinese(screen)
        paths = [a.get_attribute("href") for a in screen.locator("header nav a").all()]
        assert {"/desk", "/members", "/operators", "/apikeys", "/audit"} <= set(paths)
        for path in paths + ["/fleet/%d" % DESK_ID, "/reports/sales", "/reports/desk", "/reports/gates",
                             "/reports/z"]:
            assert screen.goto(path).status == 200, path
            # on a phone wide tables scroll inside their own box; the page itself never scrolls sideways
            assert screen.evaluate("document.documentElement.scrollWidth") <= width, path
            assert screen.evaluate(STICKING_OUT, width) == [], path
            if width == LAPTOP_WIDTH:
                assert screen.evaluate(SCROLLED_TABLES) == [], path
            shot(screen, "%s-%s%s" % ("phone" if width == PHONE_WIDTH else "laptop", language, path.replace("/", "-")))
    finally:
        context.close()


def _troubles(park, card_no):
    """What ingest flags and refuses: other bytes for the booth's seq 2 (a conflict alarm), a record of seq 3
    signed with a key not the booth's (quarantined)."""
    key = next(t.key for t in park.call(park.hub.storage.terminals()) if t.id == BOOTH)
    now = int(time.time())
    other = R.Record(R.KIND_DEBIT, BOOTH, 2, now, card_no, UID, 3, 500, 8250).encode(R.record_mac_for(key))
    forged = R.Record(R.KIND_DEBIT, BOOTH, 3, now, card_no, UID, 4, 100, 7651).encode(R.record_mac_for(bytes(16)))
    park.call(park.hub.ingest.apply_local(BOOTH, [(R.STATUS_COMMITTED, other), (R.STATUS_COMMITTED, forged)]))


def test_alarms_quarantine_and_the_card_trace_in_both_languages(page, park):
    card_no = _sales(park)
    _troubles(park, card_no)
    log_in(page, "tec")
    page.goto("/alarms")
    assert page.inner_text("h1") == "Alarms"
    alarms = page.inner_text("#alarms tbody")
    assert "conflict" in alarms and str(BOOTH) in alarms
    shot(page, "alarms")
    page.goto("/quarantine")
    assert page.locator("#quarantine tbody tr[data-quarantined]").count() == 1
    assert "bad_mac" in page.inner_text("#quarantine-reasons")
    shot(page, "quarantine")
    page.click("header nav a[href='/trace']")
    page.fill("#trace-card input[name=card]", str(card_no))
    page.click("#trace-card button")
    rows = page.locator("#trace tbody tr")
    assert rows.count() == 3                   # two sales at the booth, the issue at the desk
    assert "sale" in rows.nth(0).inner_text() and "CNY 9.99" in rows.nth(0).inner_text()
    assert "issued" in rows.nth(2).inner_text() and "CNY 100.00" in rows.nth(2).inner_text()
    shot(page, "trace")
    page.fill("#trace-card input[name=card]", "12x")
    page.click("#trace-card button")
    assert "must be a whole number" in page.inner_text("#trace-error")
    page.goto("/trace?card=%d" % (card_no + 1000))
    assert "not a card of this park" in page.inner_text("#trace-error")
    assert page.goto("/trace?card=99999999999999999999").status == 400     # past any card's 32 bits: in words
    assert "a card number is a whole number from 1 to 4294967295" in page.inner_text("#trace-error")
    in_chinese(page)
    page.goto("/trace?card=%d" % card_no)
    assert page.inner_text("h1") == "追踪分析" and "消费" in page.inner_text("#trace")
    shot(page, "trace-zh")
    page.goto("/alarms")
    assert page.inner_text("h1") == "告警"
    shot(page, "alarms-zh")
    page.goto("/quarantine")
    assert page.inner_text("h1") == "隔离区"
    shot(page, "quarantine-zh")


def test_a_merchant_login_is_refused_alarms_quarantine_and_the_card_trace(page, park):
    card_no = _sales(park)
    log_in(page, "ice")
    for path in ("/alarms", "/quarantine", "/trace", "/trace?card=%d" % card_no):
        response = page.goto(path)
        assert response.status == 403, path
        assert "may not" in page.inner_text("#refused")
    assert "Card trace" not in page.inner_text("header nav")


def send(page, form, **fields):
    """Fill the fields of the form (inputs by name, a select by its option) and send it."""
    for name, value in fields.items():
        if page.locator("%s select[name=%s]" % (form, name)).count():
            page.select_option("%s select[name=%s]" % (form, name), value)
        else:
            page.fill("%s input[name=%s]" % (form, name), value)
    page.click("%s button" % form)


def in_chinese(page):
    """Switch the operator's language to 简体中文 and wait for the page in it."""
    page.select_option("select[name=locale]", "zh_Hans")
    page.wait_for_selector("html[lang=zh-Hans]")


def test_a_price_list_is_edited_version_by_version_in_both_languages(page, park):
    log_in(page, "ada")
    page.goto("/prices?merchant=%d" % MERCHANT_ICE)
    assert "no price list yet" in page.inner_text("#price-version")
    send(page, "#item-set", code="1", name="Cone", price="12.50")
    assert "Item 1 is added: price list version 1." in page.inner_text(".flash")
    send(page, "#item-set", code="1", price="13")
    assert "Item 1 is changed: price list version 2." in page.inner_text(".flash")
    assert "CNY 13.00" in page.inner_text('#items tr[data-item="1"]')
    assert "Cone" in page.inner_text('#items tr[data-item="1"]')     # an empty name keeps the name
    send(page, "#item-set", code="2", name="Half a cent", price="0.005")
    assert "not an amount in CNY" in page.inner_text(".flash.error")
    assert page.locator("#items tr[data-item]").count() == 1          # nothing changed
    send(page, "#item-set", code="7", name="Wafer")                   # a new item without its price
    assert page.inner_text(".flash.error") == \
        "merchant %d has no item 7 yet: give its --name and --price" % MERCHANT_ICE
    page.click("#free-amount button")
    assert "Keyed amounts are allowed: price list version 3." in page.inner_text(".flash")
    send(page, "#bearer", bearer="merchant")
    assert "borne by: merchant" in page.inner_text(".flash")
    shot(page, "prices")
    page.click("#versions a >> text=Version 1")
    assert "CNY 12.50" in page.inner_text('#items tr[data-item="1"]')
    assert page.locator("#items form").count() == 0               # an older version is read, not edited
    actions = audit_actions(park)
    assert actions.count(("ada", "item.set")) == 2 and ("ada", "discount.bearer") in actions
    version_shown = page.url
    in_chinese(page)            # the same page again, its query kept, in Chinese
    assert page.url == version_shown and "version=" in page.url
    page.goto("/prices?merchant=%d" % MERCHANT_ICE)
    assert page.inner_text("h1") == "价目表"
    send(page, "#item-set", code="7", name="Wafer")                   # the service's refusal, in the page's language
    assert page.inner_text(".flash.error") == "商户 %d 还没有商品 7：请给出其 --name 和 --price" % MERCHANT_ICE
    shot(page, "prices-zh")


def test_discount_rules_show_their_stacking_policy_and_change_by_version(page, park):
    log_in(page, "ada")
    page.goto("/discounts")
    assert "Stacking: multiplicative" in page.inner_text("#policy")
    send(page, "#tier-set", tier="1", sale_bp="500")
    assert "Tier 1 is changed: discount rules version 1." in page.inner_text(".flash")
    assert page.inner_text('#tiers tr[data-tier="1"]').split() == ["1", "500", "0"]
    send(page, "#override-set", tier="1", category="3", rate_bp="700")
    assert "version 2" in page.inner_text(".flash")
    send(page, "#override-set", tier="1", rate_bp="700")              # neither a category nor an item
    assert "name either --category N" in page.inner_text(".flash.error")
    assert "category 3" in page.inner_text("#overrides")
    assert "the park" in page.inner_text('#bearers tr[data-merchant="%d"]' % MERCHANT_ICE)
    shot(page, "discounts")
    page.click("#overrides button")
    assert "The override is removed: discount rules version 3." in page.inner_text(".flash")
    in_chinese(page)
    assert "叠加方式" in page.inner_text("#policy")
    shot(page, "discounts-zh")


def test_ticket_products_are_listed_to_a_cashier_and_added_by_a_manager_only(page, park):
    park.call(operators.create_operator(park.hub.storage, Actor("setup"), "man", PASSWORD, ["manager"]))
    log_in(page, "man")
    page.goto("/tickets")
    assert "No ticket products yet." in page.inner_text("#products")
    send(page, "#product-add", name="Day pass", price="120")
    assert "Ticket product 1 is added." in page.inner_text(".flash")
    send(page, "#product-add", name="Ten rides", type="count", valid_days="0", price="50")    # and no entries
    assert "a count card holds 1 to" in page.inner_text(".flash.error")
    row = page.inner_text('#products tr[data-product="1"]')
    assert "Day pass" in row and "day ticket" in row and "CNY 120.00" in row
    shot(page, "tickets")
    in_chinese(page)
    assert "日票" in page.inner_text("#products")
    shot(page, "tickets-zh")
    page.click("#logout")
    log_in(page, "cas")
    page.goto("/tickets")
    assert "Day pass" in page.inner_text("#products")
    send(page, "#product-add", name="Night pass", price="80")
    assert "无权执行此操作（tickets.manage）" in page.inner_text(".flash.error")     # the page is in Chinese
    assert [p.name for p in park.call(park.hub.storage.ticket_products())] == ["Day pass"]


def test_gate_occupancy_goes_up_live_without_a_reload_and_counts_by_hour(page, park):
    gate_id = 41
    key = park.call(park.hub.register_terminal(gate_id, MERCHANT_ICE, frames.ROLE_GATE, "north gate"))
    card_no = park.call(desk_issued(park.hub, UID, 1000)).card_no
    log_in(page, "tec")
    page.goto("/occupancy")
    page.wait_for_selector("#live[data-state=live]")
    assert page.inner_text("#occupancy-total") == "0"
    assert "No passages today." in page.inner_text("#hourly-chart")
    page.evaluate("window.notReloaded = true")
    gate = ScriptedTerminal(park.broker.host, park.broker.port, gate_id, key).connect()
    try:
        gate.record(R.KIND_ENTRY, card_no, 2, 0, 1000, item=1, discount_cents=R.passage_detail(0, 1, 0xFFFF))
        gate.upload()
        page.wait_for_selector("#occupancy-total >> text=1")
        assert page.inner_text('#areas tr[data-area="1"] .inside') == "1"
        assert page.evaluate("window.notReloaded") is True
    finally:
        gate.close()
    page.reload()
    assert page.locator("#hourly-chart svg rect.bar").count() == 1
    cells = page.locator("#passages tbody tr td")
    assert (cells.nth(0).inner_text(), cells.nth(2).inner_text(), cells.nth(3).inner_text()) == (str(gate_id), "1", "0")
    shot(page, "occupancy")
    in_chinese(page)
    assert page.inner_text("h1") == "闸机在园人数"
    shot(page, "occupancy-zh")


def test_the_occupancy_page_counts_the_day_from_the_nightly_reset_not_from_midnight(page, park):
    # A zone where it is about noon now, and a reset half an hour ago: a passage of this morning before the reset
    # belongs to the park day before (SPEC.md §3.11), one after it to today.
    now = int(time.time())
    offset_h = 12 - time.gmtime(now).tm_hour
    park.call(park_service.set_time_zone(park.hub.storage, Actor("setup"), "Etc/GMT%+d" % -offset_h))
    local_s = (now + offset_h * 3600) % 86400
    gate_id = 41
    key = park.call(park.hub.register_terminal(gate_id, MERCHANT_ICE, frames.ROLE_GATE, "north gate"))
    day_pass = park.call(tickets.add_product(park.hub.storage, Actor("setup"), "Day pass", "day", area=1,
                                             valid_days=1, price_cents=12000))
    park.call(park.hub.configure_gate(gate_id, "entry", area=1, reset_s=local_s - 1800, products=[day_pass]))
    card_no = park.call(desk_issued(park.hub, UID, 1000)).card_no
    gate = ScriptedTerminal(park.broker.host, park.broker.port, gate_id, key).connect()
    try:
        for time_s in (now - 2700, now - 60):    # 45 minutes ago (after local midnight), and a minute ago
            gate.record(R.KIND_ENTRY, card_no, 2, 0, 1000, item=day_pass, time_s=time_s,
                        discount_cents=R.passage_detail(0, 1, 0xFFFF))
        gate.upload()
        gate.wait_acked(2)
    finally:
        gate.close()
    log_in(page, "tec")
    page.goto("/occupancy")
    rows = page.locator("#passages tbody tr")
    assert rows.count() == 1 and rows.nth(0).locator("td").nth(2).inner_text() == "1"
    reset_at = time.strftime("%Y-%m-%d %H:%M", time.gmtime(now - 1800))     # the page shows the hub's zone: UTC
    assert "Counted from the nightly reset at " + reset_at in page.inner_text("#since")


def test_a_credit_form_sent_twice_grants_once_and_a_credit_not_yet_sent_is_cancelled(page, park):
    card_no = park.call(desk_issued(park.hub, UID, 1000)).card_no
    # granted by an actor that tells no running hub: no terminal is sent it, so it can still be cancelled
    park.call(credits.grant_credit(park.hub.storage, Actor("setup"), card_no, 300, "waiting to be cancelled"))
    log_in(page, "cas")
    page.goto("/credits")
    assert "granted" in page.inner_text('#credits tr[data-credit="%d-1"] .state' % card_no)
    page.click('#credits tr[data-credit="%d-1"] button' % card_no)
    assert "Credit 1 of card %d is cancelled: CNY 3.00 goes back to its source." % card_no in page.inner_text(".flash")
    assert park.call(park.hub.storage.pending_credits(card_no))[0].state == "cancelled"
    form = {name: page.eval_on_selector("#credit-grant input[name=%s]" % name, "e => e.value")
            for name in ("csrf", "once")}
    send(page, "#credit-grant", card_no=str(card_no), amount="5.50", reason="ride closed in the rain")
    first = "Credit 2 of CNY 5.50 is granted to card %d" % card_no
    assert first in page.inner_text(".flash")
    again = page.request.post("/credits", form={**form, "card_no": str(card_no), "amount": "5.50",
                                                "reason": "ride closed in the rain"})
    assert first in again.text()        # the same form again: its first answer, nothing more granted
    granted = park.call(park.hub.storage.pending_credits(card_no))
    assert [(c.credit_no, c.amount_cents) for c in granted] == [(1, 300), (2, 550)]
    send(page, "#credit-grant", card_no=str(card_no), amount="5.505", reason="too fine")
    assert "not an amount in CNY" in page.inner_text(".flash.error")
    send(page, "#credit-grant", card_no="999999", amount="1", reason="no such card")
    assert "never issued here" in page.inner_text(".flash.error")
    shot(page, "credits")
    in_chinese(page)
    assert page.inner_text("h1") == "待领金额"
    shot(page, "credits-zh")
    actions = audit_actions(park)
    assert actions.count(("cas", "credit.grant")) == 1 and ("cas", "credit.cancel") in actions
    page.click("#logout")
    log_in(page, "fin")                  # finance reads the credits, grants none
    page.goto("/credits")
    assert page.locator("#credits tr[data-credit]").count() == 2
    send(page, "#credit-grant", card_no=str(card_no), amount="1", reason="finance tries")
    assert "无权执行此操作" in page.inner_text(".flash.error")


def test_reports_chart_takings_terminals_and_top_ups_and_settlements_download_as_csv(page, park):
    _sales(park)
    now = int(time.time())
    park.call(settlement.close_period(park.hub.storage, Actor("setup"), None, now - 86400, now + 1, now_s=now + 1))
    log_in(page, "fin")
    page.goto("/reports")
    assert page.locator("#takings-chart svg rect.bar").count() == 1
    assert "CNY 22.49" in page.inner_text("#by-merchant")
    assert "CNY 22.49" in page.inner_text('#by-terminal tr[data-terminal="%d"]' % BOOTH)
    assert page.locator("#terminals-chart svg rect.bar").count() == 1
    assert "CNY 100.00" in page.inner_text("#top-ups")       # the card issued with 100.00 on it
    liabilities = page.inner_text("#liabilities")
    assert "Funds on cards (bonus included)\tCNY 77.51" in liabilities
    owed = page.locator("#liabilities-chart svg rect.bar title")      # one bar stacked by what is owed
    assert [owed.nth(i).text_content() for i in range(owed.count())] == [
        "now Funds on cards (bonus included): CNY 77.51", "now Owed to merchants: CNY 20.25"]   # none drawn for 0
    shot(page, "reports")
    in_chinese(page)
    assert page.inner_text("h1") == "报表" and "各商户每日营业额" in page.inner_text("main")
    shot(page, "reports-zh")
    page.goto("/settlement")
    with page.expect_download() as downloading:
        page.click("#settlement-csv")
    lines = Path(downloading.value.path()).read_text().splitlines()
    assert lines[0].startswith("settlement,merchant_id,merchant,")
    assert len(lines) == 3 and any(",Ice cream," in line and ",22.49," in line for line in lines[1:])
    page.click("#logout")
    log_in(page, "ice")                 # a merchant: its own settlement only, and no park-wide reports
    csv = page.request.get("/settlement.csv").text().splitlines()
    assert len(csv) == 2 and ",Ice cream," in csv[1]
    assert page.goto("/reports").status == 403


def test_the_live_fleet_shows_alerts_offline_while_open_a_lagging_queue_and_a_sequence_gap(page, park):
    log_in(page, "ada")
    page.goto("/fleet")
    minute = time.gmtime().tm_hour * 60 + time.gmtime().tm_min       # the park's time zone here is UTC
    send(page, "#opening-hours-set", opens="%02d:%02d" % divmod((minute - 60) % 1440, 60),
         closes="%02d:%02d" % divmod((minute + 60) % 1440, 60))
    assert "The opening hours are saved." in page.inner_text(".flash")
    assert ("ada", "park.opening_hours") in audit_actions(park)
    page.wait_for_selector("#live[data-state=live]")
    page.evaluate("window.notReloaded = true")
    key = park.call(park.hub.register_terminal(BOOTH, MERCHANT_ICE, frames.ROLE_POS, "ice booth"))
    row = 'tr[data-terminal="%d"]' % BOOTH
    page.wait_for_selector(row + " .alerts >> text=offline while the park is open")
    booth = ScriptedTerminal(park.broker.host, park.broker.port, BOOTH, key).connect()
    try:
        # 600 records waiting after seq 700: the terminal holds 100 acknowledged, the hub acknowledged none
        booth.status(boot=1, online=1, firmware=b"1.2.3", queue_depth=600, oldest_unsynced_age_s=40, last_seq=700)
        page.wait_for_selector(row + ".online")
        alerts = page.inner_text(row + " .alerts")
        assert alerts == "queue lagging, records missing (sequence gap)"
        shot(page, "fleet-alerts")
        booth.status(boot=1, online=1, firmware=b"1.2.3", queue_depth=0, oldest_unsynced_age_s=0, last_seq=0,
                     uptime_s=60)
        page.wait_for_function("s => document.querySelector(s).textContent === ''", arg=row + " .alerts")
    finally:
        booth.close()
    assert page.evaluate("window.notReloaded") is True
    in_chinese(page)
    page.goto("/fleet")
    assert "乐园开放时间" in page.inner_text("#opening-hours")
    shot(page, "fleet-alerts-zh")
    page.click("#logout")
    log_in(page, "tec")                  # a technician reads the hours, sets none
    send(page, "#opening-hours-set", opens="", closes="")
    assert "无权执行此操作" in page.inner_text(".flash.error")
