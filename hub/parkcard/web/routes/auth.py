"""Login, logout and the operator's language; the home page sends an operator to their first page."""

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from parkcard.services import operators, park
from parkcard.services.errors import code_of
from parkcard.services.privileges import ServiceError
from parkcard.web import i18n
from parkcard.web.pages import (NAV, SEE_OTHER, FormRefused, back, gettext, locale_of, login_form, operator,
                                refused_text, render, session_form, state)
from parkcard.web.sessions import (LOGIN_CSRF_COOKIE, LOGIN_FAILURES_PER_USER_MAX, LOGIN_WINDOW_S, SESSION_COOKIE,
                                   new_token, token_digest)

router = APIRouter()
NEXT_MAX = 200
LANG_COOKIE_S = 365 * 86400


def set_cookie(request, response, name, value, max_age=None):
    """A cookie the page's scripts cannot read, sent only to this site (and only over TLS when it is on)."""
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="strict",
                        secure=state(request).secure)


def _next(path):
    """A page of this app to go to after the login (never another site)."""
    if path and path.startswith("/") and not path.startswith("//") and len(path) <= NEXT_MAX:
        return path
    return "/"


def duration_text(request, seconds):
    """A session limit for people: whole hours as hours, else minutes."""
    if seconds % 3600 == 0:
        return gettext(request, None, "%(n)d h") % {"n": seconds // 3600}
    return gettext(request, None, "%(n)d min") % {"n": seconds // 60}


async def _login_page(request, status=200, error=None, username=""):
    """The login form with a fresh double-submit CSRF token, and the park's session rules."""
    nonce = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()
    limits = await park.session_limits(state(request).store)
    response = render(request, "login.html", status=status, login_csrf=nonce, error=error, username=username,
                      next=_next(request.query_params.get("next")), idle=duration_text(request, limits.idle_s),
                      longest=duration_text(request, limits.max_s), failures=LOGIN_FAILURES_PER_USER_MAX,
                      window=LOGIN_WINDOW_S // 60)
    set_cookie(request, response, LOGIN_CSRF_COOKIE, nonce)
    return response


@router.get("/login")
async def login_page(request: Request):
    """The login form."""
    return await _login_page(request)


@router.post("/login")
async def login(request: Request):
    """Check the user name and password (operators.authenticate), within the login rate limits."""
    web = state(request)
    try:
        form = await login_form(request)
    except FormRefused:
        return await _login_page(request, 403, gettext(
            request, None, "The login form had expired: it is shown again, log in once more."))
    username = form.get("username", "").strip().lower()
    address = request.client.host if request.client else "?"
    wait_s = web.limiter.wait_s(username, address)
    if wait_s:
        return await _login_page(request, 429, gettext(
            request, None, "Too many failed logins for this user name or from this address: "
                           "try again in %(s)d seconds.") % {"s": wait_s}, username)
    try:
        actor = await operators.authenticate(web.store, username, form.get("password", ""), web.hub.api_told)
    except ServiceError as exc:
        web.limiter.failed(username, address)
        wrong = gettext(request, None, "Wrong user name or password: check both and try again.")
        told = wrong if code_of(exc) == "wrong_login" else refused_text(request, None, exc)
        return await _login_page(request, 401, told, username)
    web.limiter.succeeded(username)
    web.sessions.set_limits(await park.session_limits(web.store))
    session = web.sessions.start(actor, locale_of(request))
    await web.sessions.keep(web.store, session)
    response = RedirectResponse(_next(form.get("next")), status_code=SEE_OTHER)
    set_cookie(request, response, SESSION_COOKIE, session.token, web.sessions.max_s)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, session=Depends(operator)):
    """End the session (its token is forgotten: the cookie is worth nothing from now on)."""
    await session_form(request, session)
    web = state(request)
    await web.sessions.revoke(web.store, session.token)
    response = RedirectResponse("/login", status_code=SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/language")
async def language(request: Request, session=Depends(operator)):
    """Show the pages in another language (English, 简体中文) from now on."""
    form = await session_form(request, session)
    chosen = form.get("locale")
    if chosen in i18n.LANGUAGES:
        session.locale = chosen
        await state(request).store.set_web_session_locale(token_digest(session.token), chosen)
    response = back(_next(form.get("next")))
    set_cookie(request, response, "lang", session.locale, LANG_COOKIE_S)
    return response


@router.get("/")
async def home(request: Request, session=Depends(operator)):
    """The operator's first page of the menu."""
    for path, _label, privilege in NAV:
        if privilege in session.actor.privileges:
            return RedirectResponse(path, status_code=SEE_OTHER)
    return render(request, "refused.html", session, status=403, message=gettext(
        request, session, "Your account has no page here: ask an admin for a role."))
