"""The operator web app on the hub's FastAPI application: its pages beside /api/v1, its files under /static."""

from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from parkcard.web.pages import STATIC, SEE_OTHER, FormRefused, LoginRequired, WebState, gettext, render, session_of
from parkcard.web.routes import (apikeys, audit, auth, blacklist, booth_reports, credits, desk, desk_reports,
                                 discounts, fleet, gate_reports, members, merchants, monitoring, occupancy, operators,
                                 prices, reports, rules, settlement, staff, tickets, tiers)

PAGE_ROUTERS = (auth.router, fleet.router, desk.router, members.router, merchants.router, prices.router,
                discounts.router, tiers.router, rules.router, staff.router, tickets.router, occupancy.router,
                credits.router, blacklist.router, monitoring.router, settlement.router, reports.router,
                booth_reports.router, desk_reports.router, gate_reports.router, audit.router, operators.router,
                apikeys.router)


def install(app, hub, secure, time_zone):
    """Serve the web app from app (the API's application): routes outside the OpenAPI document."""
    app.state.web = WebState(hub, secure, time_zone)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in PAGE_ROUTERS:
        app.include_router(router, include_in_schema=False)

    @app.exception_handler(LoginRequired)
    async def login_required(request, _exc):
        where = request.url.path if request.method == "GET" and not request.url.path.endswith("/events") else "/"
        return RedirectResponse("/login?next=%s" % where, status_code=SEE_OTHER)

    @app.exception_handler(FormRefused)
    async def form_refused(request, _exc):
        session = await session_of(request)
        return render(request, "refused.html", session, status=403, message=gettext(
            request, session, "The form was refused: it did not carry this page's security token, so nothing was "
                              "done. Reload the page and try again."))
