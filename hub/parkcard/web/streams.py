"""Live pages over Server-Sent Events: a page's view as JSON each time the hub commits a change.

A stream reads its view as the operator (the service refuses before the stream
starts), is bounded in number (LIVE_STREAMS_MAX, a refused one is counted),
re-reads at least every `refresh_s` (what goes stale without a commit, such as
a silent terminal), at most every PUSH_INTERVAL_S_MIN whatever woke it, and
ends when its session does.
"""

import asyncio
import json

from fastapi.responses import StreamingResponse

from parkcard.services.privileges import ServiceError
from parkcard.web.pages import LIVE_STREAMS_MAX, gettext, refused_text, render, state

# A busy hub commits many batches a second: a stream reads at most this often, whatever woke it, so that
# many open pages cost the ingest loop a bounded number of reads.
PUSH_INTERVAL_S_MIN = 0.5


async def live_events(request, session, event, read, refresh_s):
    """The event stream of `await read()` (JSON-able) named event; the service's refusal page if read refuses."""
    web = state(request)
    seen = web.hub.changes.version      # before the read: a change committed during it wakes the stream
    try:
        first = await read()            # refused here, before the stream starts
    except ServiceError as exc:
        return render(request, "refused.html", session, status=403, message=refused_text(request, session, exc))
    if web.live_streams >= LIVE_STREAMS_MAX:
        web.live_streams_refused += 1
        return render(request, "refused.html", session, status=503, message=gettext(
            request, session, "Too many live pages are open: close some, this one retries by itself."))
    token = session.token

    async def stream():
        web.live_streams += 1       # counted while the generator runs: its finally always follows
        nonlocal seen
        try:
            yield "retry: 2000\nevent: %s\ndata: %s\n\n" % (event, json.dumps(first))
            while web.sessions.get(token) is session:       # logged out: the stream ends
                seen = await web.hub.changes.wait(seen, refresh_s)
                try:
                    fresh = await read()
                except ServiceError:
                    return
                yield "event: %s\ndata: %s\n\n" % (event, json.dumps(fresh))
                await asyncio.sleep(PUSH_INTERVAL_S_MIN)     # changes meanwhile wake the next read at once
        finally:
            web.live_streams -= 1

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
