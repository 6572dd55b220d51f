"""What every page shares: the web app's state, the operator's session, CSRF checks, rendering, flash messages.

A route asks for `operator` (the logged-in Session; a visitor without one is
sent to /login), reads a form with `form_of` (refused without the session's
CSRF token) and calls one service as `session.actor`: the service checks the
privilege and audits, the route only shows the answer. A refusal of the
service (ServiceError) is shown as it is worded, on the page or as a flash.
"""

import datetime
import urllib.parse
import zoneinfo
from pathlib import Path

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from protocol import card

from parkcard.domain.explained import Cents, Explained
from parkcard.money import format_cents, parse_amount
from parkcard.services import privileges as P
from parkcard.services.privileges import NotAllowed, ServiceError
from parkcard.web import i18n
from parkcard.web.sessions import LOGIN_CSRF_COOKIE, SESSION_COOKIE, LoginLimiter, Sessions, same_token

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
FORM_BYTES_MAX = 16 * 1024      # no form of this app is longer
SEE_OTHER = 303
# Open live streams the hub serves at once; one more is refused (counted), the browser retries.
LIVE_STREAMS_MAX = 200

def N_(text):
    """Mark text as a message to translate where it is shown (the catalogs' extraction finds it)."""
    return text


# The menu: (path, label, the privilege its page's service requires). An entry shows only to an operator
# holding the privilege; the page's service checks it again either way.
NAV = (
    ("/fleet", N_("Live fleet"), P.FLEET_READ),
    ("/desk", N_("Front desk"), P.CARD_ISSUE),
    ("/members", N_("Members"), P.MEMBERS),
    ("/merchants", N_("Merchants"), P.MERCHANTS_READ),
    ("/prices", N_("Price lists"), P.MERCHANTS_READ),
    ("/discounts", N_("Discounts"), P.MERCHANTS_READ),
    ("/tiers", N_("Member tiers"), P.TIERS),
    ("/rules", N_("Consumption rules"), P.TIERS),
    ("/staff", N_("Booth staff"), P.REPORTS),
    ("/tickets", N_("Ticket products"), P.CARD_QUERY),
    ("/occupancy", N_("Gate occupancy"), P.OCCUPANCY),
    ("/credits", N_("Pending credits"), P.CREDITS_READ),
    ("/blacklist", N_("Blacklist"), P.BLACKLIST_READ),
    ("/alarms", N_("Alarms"), P.FLEET_READ),
    ("/quarantine", N_("Quarantine"), P.FLEET_READ),
    ("/trace", N_("Card trace"), P.CARD_QUERY),
    ("/settlement", N_("Settlement"), P.SETTLEMENT_READ),
    ("/reports", N_("Reports"), P.REPORTS),
    ("/audit", N_("Audit log"), P.AUDIT),
    ("/operators", N_("Operators"), P.OPERATORS),
    ("/apikeys", N_("API keys"), P.PARK_ADMIN),
)


# What a page calls each role (parkcard.services.privileges.ROLES).
ROLE_NAMES = {P.CASHIER: N_("cashier"), P.FINANCE: N_("finance"), P.TECHNICIAN: N_("technician"),
              P.MANAGER: N_("manager"), P.ADMIN: N_("admin"), P.MERCHANT: N_("merchant")}


# What a page calls the lifecycle words it shows (a record's status, a card's, a desk operation's kind and state,
# a terminal's role); a word not here is shown as it is.
WORDS = {"applied": N_("applied"), "voided": N_("voided"), "uncertain": N_("uncertain"),
         "quarantined": N_("quarantined"), "active": N_("active"), "blacklisted": N_("blacklisted"),
         "returned": N_("returned"), "wiped": N_("wiped"), "pending": N_("pending"), "posted": N_("posted"),
         "failed": N_("failed"), "issue": N_("issue"), "top_up": N_("top-up"), "staff_card": N_("staff card"),
         "refund": N_("refund"), "return": N_("return"), "replace": N_("replacement"), "pos": N_("booth"),
         "ride": N_("ride"), "gate": N_("gate"), "desk": N_("desk")}


class LoginRequired(Exception):
    """The request has no live session: the visitor is sent to the login page."""


class FormRefused(Exception):
    """A form came without the CSRF token of its session (or was too long): refused, nothing done."""


class WebState:
    """The web app of one hub: its sessions, login limits and templates."""

    def __init__(self, hub, secure, time_zone=None):
        self.hub = hub
        self.secure = secure            # served over TLS: cookies are Secure
        self.time_zone = time_zone      # an IANA zone every page shows times in; None: the park's, read per page
        self.live_streams = 0           # open Server-Sent Event streams (at most LIVE_STREAMS_MAX)
        self.live_streams_refused = 0
        self.sessions = Sessions()
        self.limiter = LoginLimiter()
        self.templates = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                            extensions=["jinja2.ext.i18n"], undefined=jinja2.StrictUndefined)

    @property
    def store(self):
        """The hub's store."""
        return self.hub.storage


def state(request):
    """The WebState of the request's app."""
    return request.app.state.web


async def session_of(request):
    """The request's live Session (in memory, or kept in the store before a restart), or None."""
    from parkcard.services import operators, park
    web = state(request)
    web.sessions.set_limits(await park.session_limits(web.store))
    return await web.sessions.find(web.store, request.cookies.get(SESSION_COOKIE),
                                   lambda name: operators.session_actor(web.store, name, web.hub.api_told))


async def operator(request: Request):
    """The logged-in operator's Session (a dependency); LoginRequired otherwise."""
    session = await session_of(request)
    if session is None:
        raise LoginRequired()
    return session


async def form_of(request, expected_csrf):
    """The posted form as {name: value}, after its CSRF token matched expected_csrf; FormRefused otherwise."""
    body = await request.body()
    if len(body) > FORM_BYTES_MAX:
        raise FormRefused()
    form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                                     keep_blank_values=True).items()}
    if not same_token(form.get("csrf"), expected_csrf):
        raise FormRefused()
    return form


async def session_form(request, session):
    """The posted form of a logged-in operator (its session's CSRF token)."""
    return await form_of(request, session.csrf)


async def login_form(request):
    """The posted login form (the login cookie's CSRF token)."""
    return await form_of(request, request.cookies.get(LOGIN_CSRF_COOKIE))


def locale_of(request, session=None):
    """The page's language: the session's, else the `lang` cookie's, else the browser's."""
    if session is not None:
        return session.locale
    chosen = request.cookies.get("lang")
    return chosen if chosen in i18n.LANGUAGES else i18n.negotiate(request.headers.get("accept-language"))


class Park:
    """What pages show every amount and time with: the park's currency and time zone."""

    def __init__(self, currency, time_zone):
        self.currency = currency
        self.zone = zoneinfo.ZoneInfo(time_zone)

    def money(self, cents):
        """An amount for people, in the park's currency."""
        return format_cents(int(cents), self.currency)

    def when(self, epoch_s):
        """A UTC epoch time as the park's local date and time ("" for none)."""
        if epoch_s is None:
            return ""
        return datetime.datetime.fromtimestamp(epoch_s, self.zone).strftime("%Y-%m-%d %H:%M:%S")

    def day(self, epoch_s):
        """The park's local date of an epoch time."""
        return datetime.datetime.fromtimestamp(epoch_s, self.zone).strftime("%Y-%m-%d")

    def hour(self, epoch_s):
        """The park's local hour of an epoch time ("14:00")."""
        return datetime.datetime.fromtimestamp(epoch_s, self.zone).strftime("%H:00")

    def date_start(self, text, label):
        """Epoch seconds of a YYYY-MM-DD date's local midnight; ServiceError naming label otherwise."""
        try:
            day = datetime.date.fromisoformat((text or "").strip())
        except ValueError:
            raise ServiceError("%(label)s must be a date like 2026-07-01, not %(text)r", label=label, text=text) from None
        return int(datetime.datetime.combine(day, datetime.time(), self.zone).timestamp())

    def day_bounds(self, text, label, now_s):
        """(date, start_s, end_s) of the park's day YYYY-MM-DD (today's when text is empty), midnight to midnight."""
        date = (text or "").strip() or self.day(now_s)
        start_s = self.date_start(date, label)
        following = datetime.date.fromisoformat(date) + datetime.timedelta(days=1)
        return date, start_s, self.date_start(following.isoformat(), label)


async def zone_shown(web, actor):
    """The IANA time zone the pages show times in: the one the server was given, else the park's as stored now (a
    `parkcard park timezone` change shows at the next page)."""
    from parkcard.services import park
    return web.time_zone or await park.time_zone(web.store, actor)


async def park_of(request, session):
    """The park's currency (read as the operator: every role holds park.read) and time zone."""
    from parkcard.services import park
    web = state(request)
    currency = await park.currency(web.store, session.actor)
    request.state.currency = currency       # the amounts of this request's refusals are said in it (worded())
    return Park(currency, await zone_shown(web, session.actor))


def render(request, template, session=None, status=200, park=None, **context):
    """The page `template` in the operator's language, with the menu their privileges show."""
    web = state(request)
    locale = locale_of(request, session)
    translations = i18n.translations(locale)
    env = web.templates
    # Rendering is synchronous on the one loop: no other page can render between install and render.
    env.install_gettext_translations(translations, newstyle=True)
    held = session.actor.privileges if session is not None else frozenset()
    flash = None
    if session is not None:     # shown once: the next page has none
        flash, session.flash = session.flash, None
    page = env.get_template(template).render(
        request=request, session=session, park=park, flash=flash, lang=i18n.HTML_LANG.get(locale, "en"),
        locale=locale, languages=i18n.LANGUAGES, csrf=session.csrf if session is not None else "",
        role_names=ROLE_NAMES, word=lambda value: translations.gettext(WORDS[value]) if value in WORDS else value,
        nav=[(path, label) for path, label, privilege in NAV if privilege in held],
        here=request.url.path, language_next=page_again(request), **context)
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


def page_again(request):
    """Where the language form brings the operator back to: this page with its query, or for a page a POST answered
    (which a GET cannot open again) the menu's section it belongs to."""
    path = request.url.path
    if request.method == "GET":
        return path + ("?" + request.url.query if request.url.query else "")
    return next((p for p, _label, _privilege in NAV if path == p or path.startswith(p + "/")), "/")


async def refusable_page(request, session, template, read, name="rows", **context):
    """The page of template with what `await read()` returns as `name` (and the park); the service's refusal page
    otherwise."""
    try:
        rows = await read()
        park = await park_of(request, session)
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    return render(request, template, session, park=park, **{name: rows}, **context)


async def refusable_csv(request, session, made):
    """The CSV file `await made()` returns as (text, filename); the service's refusal page otherwise."""
    try:
        text, filename = await made()
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    return csv_download(text, filename)


def refusal_page(request, session, exc, status=403):
    """The page of a service's refusal (ServiceError exc), worded by refused_text."""
    return render(request, "refused.html", session, status=status, message=refused_text(request, session, exc))


async def changed_back(request, session, to, change, done, unchanged, values):
    """Redirect to `to` saying done or unchanged (N_ marked, % values) as `await change()` is true or false; saying
    the service's refusal (ServiceError) as an error otherwise."""
    try:
        changed = await change()
    except ServiceError as exc:
        return back(to, session, refused_text(request, session, exc), "error")
    return back(to, session, gettext(request, session, done if changed else unchanged) % values)


def back(to, session=None, flash=None, kind="ok"):
    """Redirect after a POST (the browser GETs the page again), with a message for the next page."""
    if session is not None and flash is not None:
        session.flash = (kind, flash)
    return RedirectResponse(to, status_code=SEE_OTHER)


def csv_download(text, filename):
    """A CSV file the browser saves as filename (a report's rows, as the CLI's --csv writes them)."""
    return Response(text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="%s"' % filename, "Cache-Control": "no-store"})


def gettext(request, session, text):
    """text translated into the page's language (for flash messages made in a route)."""
    return i18n.translations(locale_of(request, session)).gettext(text)


def worded(request, session, sentence):
    """A Sentence (a service's refusal or verdict) in the page's language when its catalog has the message, its
    amounts in the park's currency once the request has read it (park_of)."""
    currency = getattr(request.state, "currency", None)
    money = None if currency is None else (lambda cents: format_cents(cents, currency))
    return sentence.worded(i18n.translations(locale_of(request, session)).gettext, money)


def refused_text(request, session, exc):
    """What a page says of a service's refusal, in the page's language when its catalog has the message."""
    if not isinstance(exc, NotAllowed):
        if isinstance(exc, Explained):
            return worded(request, session, exc)
        return str(exc)
    roles = [gettext(request, session, ROLE_NAMES.get(r, r)) for r in exc.roles]
    holders = [gettext(request, session, ROLE_NAMES.get(r, r)) for r in exc.holders]
    return gettext(request, session, "%(name)s (%(roles)s) may not do this (%(privilege)s): ask an operator with the "
                                     "role %(holders)s") % {
        "name": exc.name, "roles": ", ".join(roles) or gettext(request, session, "no role"),
        "privilege": exc.privilege, "holders": gettext(request, session, " or ").join(holders)}


def whole_number(form, name, label):
    """The form field name as an int; ServiceError naming label when it is not a whole number."""
    text = (form.get(name) or "").strip()
    try:
        return int(text)
    except ValueError:
        raise ServiceError("%(label)s must be a whole number, not %(text)r", label=label, text=text) from None


def amount(form, name, label, park):
    """The form field name, an amount in the park's currency, as integer cents; ServiceError naming label."""
    try:
        return parse_amount(form.get(name), park.currency)
    except ValueError as exc:
        raise ServiceError("%(label)s: %(problem)s", label=label, problem=exc) from None


def card_amount(form, name, label, park):
    """amount() of money that goes onto or off a card: at most what a card holds, said in the park's currency."""
    cents = amount(form, name, label, park)
    if cents > card.BALANCE_MAX_CENTS:
        raise ServiceError("%(label)s: at most %(most)s, the most a card holds, not %(cents)s", label=label,
                           most=Cents(card.BALANCE_MAX_CENTS), cents=Cents(cents))
    return cents


def optional_number(form, name, label):
    """The form field name as an int, or None when left empty."""
    return whole_number(form, name, label) if (form.get(name) or "").strip() else None
