"""The live fleet: every terminal's state over Server-Sent Events, and lock / unlock / de-authorise."""

import time
from collections import Counter

from fastapi import APIRouter, Depends, Path, Request

from protocol import frames

from parkcard import bounds
from parkcard.ingest import fleet as fleet_rules
from parkcard.domain import fleet_alerts
from parkcard.services import monitoring, terminals
from parkcard.services import park as park_settings
from parkcard.services.privileges import ServiceError
from parkcard.web import i18n
from parkcard.web.pages import (N_, WORDS, back, changed_back, gettext, operator, park_of, refusal_page,
                                refused_text, render, session_form, state)
from parkcard.web.streams import live_events

router = APIRouter()
# A terminal that falls silent turns offline without a frame (parkcard.ingest.fleet.SILENT_OFFLINE_S): the
# stream re-reads at least this often so that a silent terminal is shown offline in time.
FLEET_REFRESH_S = 5.0
# What the command log calls each command an operator can decide (protocol/frames.py CMD_*).
COMMAND_NAMES = {frames.CMD_LOCK: N_("lock"), frames.CMD_DEAUTHORISE: N_("de-authorise"),
                 frames.CMD_REPORT_STATUS: N_("report status")}
TerminalId = Path(ge=bounds.TERMINAL_ID.low, le=bounds.TERMINAL_ID.high)
ACTIONS = {"lock": (terminals.lock, N_("Terminal %(id)d is locked: it forgets its card keys."),
                    N_("Terminal %(id)d was locked already.")),
           "unlock": (terminals.unlock, N_("Terminal %(id)d is unlocked: an admin card tap authorises it again."),
                      N_("Terminal %(id)d was not locked.")),
           "deauthorise": (terminals.deauthorise,
                           N_("Terminal %(id)d is de-authorised until the next admin card tap."),
                           N_("Terminal %(id)d was not authorised."))}


# What the live page calls each alert (parkcard.domain.fleet_alerts.ALERTS).
ALERT_LABELS = {fleet_alerts.OFFLINE_OPEN: N_("offline while the park is open"),
                fleet_alerts.LAGGING: N_("queue lagging"), fleet_alerts.SEQ_GAP: N_("records missing (sequence gap)"),
                fleet_alerts.CONFLICT: N_("conflicting records"), fleet_alerts.CLOCK_SKEW: N_("clock is wrong"),
                fleet_alerts.REBOOT_LOOP: N_("rebooting over and over")}


def role_word(role, translate):
    """A terminal's role as the page's language calls it (pos: a booth)."""
    return translate(WORDS[role]) if role in WORDS else role


def terminal_view(row, alarms, park, now_s, translate, alerts=()):
    """What the fleet page shows of one terminal: every cell as text for people (JSON for the stream)."""
    online = fleet_rules.online(row, now_s)
    return {
        "id": row.id, "name": row.name,
        "role": role_word(frames.ROLE_NAMES.get(row.role, str(row.role)), translate),
        "online": online, "state": translate(N_("online")) if online else translate(N_("offline")),
        "last_seen": park.when(row.last_seen) or translate(N_("never")),
        "firmware": row.firmware or "", "queue": "" if row.queue_depth is None else str(row.queue_depth),
        "oldest": "" if row.oldest_unsynced_age_s is None else "%d s" % row.oldest_unsynced_age_s,
        # 0: not measured (a terminal on CPython has no gc.mem_free)
        "heap": "%d B" % row.free_heap if row.free_heap else "",
        "versions": "" if row.status_config_version is None and row.status_blacklist_version is None else
                    "%s / %s" % ("" if row.status_config_version is None else row.status_config_version,
                                 "" if row.status_blacklist_version is None else row.status_blacklist_version),
        "alarms": str(alarms.get(row.id, 0)),
        "locked": translate(N_("locked")) if row.locked else "",
        "authorised": translate(N_("yes")) if row.authorised else translate(N_("no")),
        "alerts": ", ".join(translate(ALERT_LABELS[a]) for a in alerts),
    }


async def fleet_views(request, session):
    """[terminal_view] of the whole fleet, read as the operator (privilege fleet.read, in the services)."""
    store = state(request).store
    rows = await terminals.fleet(store, session.actor)
    raised = await monitoring.alarms(store, session.actor)
    alarms = Counter(a.terminal_id for a in raised)
    park = await park_of(request, session)
    translate = i18n.translations(session.locale).gettext
    now = time.time()
    alerts = await monitoring.fleet_alerts(store, session.actor, now, park.zone, rows, raised)
    return [terminal_view(r, alarms, park, now, translate, alerts.get(r.id, ())) for r in rows], park


@router.get("/fleet")
async def fleet_page(request: Request, session=Depends(operator)):
    """The fleet table, kept live by /fleet/events."""
    try:
        views, park = await fleet_views(request, session)
        hours = await park_settings.opening_hours(state(request).store, session.actor)
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    return render(request, "fleet.html", session, park=park, terminals=views,
                  hours=None if hours is None else tuple(_clock(m) for m in hours))


def _clock(minute):
    """Minutes after midnight as "HH:MM"."""
    return "%02d:%02d" % divmod(minute, 60)


def _minute(text, label):
    """"HH:MM" as minutes after midnight; ServiceError naming label otherwise."""
    try:
        hours, minutes = (int(part) for part in (text or "").strip().split(":"))
    except ValueError:
        raise ServiceError("%(label)s must be a time like 09:30, not %(text)r", label=label, text=text) from None
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ServiceError("%(label)s must be a time like 09:30, not %(text)r", label=label, text=text)
    return hours * 60 + minutes


@router.post("/fleet/opening-hours")
async def opening_hours_set(request: Request, session=Depends(operator)):
    """Set the park's opening hours, or clear them with both fields empty (privilege park.admin in the service)."""
    form = await session_form(request, session)
    try:
        if not (form.get("opens") or "").strip() and not (form.get("closes") or "").strip():
            opens = closes = None
        else:
            opens = _minute(form.get("opens"), gettext(request, session, "the opening time"))
            closes = _minute(form.get("closes"), gettext(request, session, "the closing time"))
        changed = await park_settings.set_opening_hours(state(request).store, session.actor, opens, closes)
    except ServiceError as exc:
        return back("/fleet", session, refused_text(request, session, exc), "error")
    said = (gettext(request, session, "The opening hours are saved.") if changed else
            gettext(request, session, "The opening hours were these already."))
    return back("/fleet", session, said)


@router.get("/fleet/events")
async def fleet_events(request: Request, session=Depends(operator)):
    """Server-Sent Events: the fleet as JSON each time the hub commits a change (and every FLEET_REFRESH_S)."""
    async def read():
        return (await fleet_views(request, session))[0]
    return await live_events(request, session, "fleet", read, FLEET_REFRESH_S)


@router.get("/fleet/{terminal_id}")
async def terminal_page(request: Request, terminal_id: int = TerminalId, session=Depends(operator)):
    """One terminal: what it reports, and its lock / unlock / de-authorise buttons."""
    store = state(request).store
    try:
        row = await terminals.one(store, session.actor, terminal_id)
        alarms = [a for a in await monitoring.alarms(store, session.actor) if a.terminal_id == terminal_id]
        commands = await terminals.commands(store, session.actor, terminal_id)
        park = await park_of(request, session)
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    view = terminal_view(row, Counter({terminal_id: len(alarms)}), park, time.time(),
                         i18n.translations(session.locale).gettext)
    return render(request, "terminal.html", session, park=park, t=view, alarms=alarms, commands=[
        (COMMAND_NAMES.get(c.command, str(c.command)), c.actor, c.sent_at) for c in commands])


@router.post("/fleet/{terminal_id}/config")
async def terminal_config_push(request: Request, terminal_id: int = TerminalId, session=Depends(operator)):
    """Send the terminal its configuration now through the hub's downlink (privilege and audit in the service)."""
    await session_form(request, session)
    web = state(request)
    return await changed_back(request, session, "/fleet/%d" % terminal_id,
                              lambda: terminals.push_config(web.store, session.actor, terminal_id,
                                                            web.hub.downlink.config),
                              N_("Terminal %(id)d is sent its configuration now."),
                              N_("Terminal %(id)d's configuration could not be sent now: it gets it at its next "
                                 "sync."), {"id": terminal_id})


@router.post("/fleet/{terminal_id}/{action}")
async def terminal_action(request: Request, action: str, terminal_id: int = TerminalId,
                          session=Depends(operator)):
    """Lock, unlock or de-authorise a terminal through its service (privilege and audit there)."""
    await session_form(request, session)
    if action not in ACTIONS:
        return render(request, "refused.html", session, status=404, message=gettext(
            request, session, "There is no such action."))
    service, done, unchanged = ACTIONS[action]
    return await changed_back(request, session, "/fleet/%d" % terminal_id,
                              lambda: service(state(request).store, session.actor, terminal_id), done, unchanged,
                              {"id": terminal_id})
