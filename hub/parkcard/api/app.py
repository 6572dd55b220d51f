"""The FastAPI application over a running Hub: authentication, idempotency, stable error codes, /metrics.

A request is authenticated by `Authorization: Bearer <key>`: the key becomes
the services' Actor (parkcard.services.apikeys.ApiKeyActor, audited as
`api:<name>`), whose privilege hook checks its scopes; a route never checks a
scope itself. Refusals leave as {"error": {"code", "message"}} with the code
the service gave (parkcard.services.errors).

Every POST takes an `Idempotency-Key` (1 to 64 printable characters, per API
key): the first response is stored with the SHA-256 of the request (method,
path, body), and the same key again returns that response and does nothing;
the same key with another request is refused (422 idempotency_key_reused).
The response is stored in a transaction right after the change's own, one
POST of a key at a time (an asyncio lock: one hub process owns the database):
the services' changes do not take a caller's row into their transaction. A
hub that stops between the two leaves the key unused, and its retry runs the
service again, which answers "nothing changed" for what the first run did
(a lock of a locked terminal, a blacklisted card, a merchant that exists, a
closed period): done once either way.
"""

import asyncio
import contextlib
import hashlib
import json
import time

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from parkcard.api import metrics as M
from parkcard.services import apikeys, monitoring
from parkcard.services.errors import code_of
from parkcard.services.privileges import ServiceError

API_PREFIX = "/api/v1"
IDEMPOTENCY_KEY_MAX = 64

# HTTP status by stable code; every other code of a refusal is 422.
STATUS = {"unauthenticated": 401, "scope_missing": 403, "terminal_not_registered": 404, "merchant_not_found": 404,
          "settlement_not_found": 404, "webhook_not_found": 404,
          "z_report_not_found": 404, "not_found": 404, "method_not_allowed": 405,
          "merchant_exists": 409, "period_overlaps": 409}
# What a route may answer besides success, for the OpenAPI document.
REFUSALS = {status: {"model": None, "description": text} for status, text in (
    (401, "no API key, or an unknown or revoked one"), (403, "the API key lacks the scope"),
    (404, "no such terminal, merchant, settlement, webhook or Z report"), (409, "it exists, or overlaps what exists"),
    (422, "the request is invalid or the service refused it"))}

_bearer = HTTPBearer(auto_error=False, description="an API key from `parkcard apikey create`")


def error_response(code, message, status=None):
    """A refusal as JSON with its stable code."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status or STATUS.get(code, 422))


def create_app(hub, secure=False, time_zone=None):
    """The FastAPI application serving /api/v1, /metrics and the operator web app for this running hub.

    secure: served over TLS (the web app's cookies are then Secure); time_zone: the zone every page shows times in; None: the park's
    own as stored, read for each page.
    """
    from parkcard.api import desk, models, park_reports, reports, z_reports
    from parkcard.api.routes import open_router, router

    for refusal in REFUSALS.values():
        refusal["model"] = models.ErrorBody
    app = FastAPI(title="ParkCard hub API", version="1", openapi_url=API_PREFIX + "/openapi.json",
                  docs_url=API_PREFIX + "/docs", redoc_url=None,
                  description="The park's fleet, merchants, blacklist, alarms and settlements for third parties. "
                              "Authenticate with `Authorization: Bearer <key>` (`parkcard apikey create`). Money "
                              "is integer cents with the currency; times are UTC epoch seconds.")
    app.state.hub = hub
    app.state.idempotency_locks = {}
    app.include_router(open_router, prefix=API_PREFIX)
    app.include_router(router, prefix=API_PREFIX)
    app.include_router(reports.router, prefix=API_PREFIX)
    app.include_router(park_reports.router, prefix=API_PREFIX)
    app.include_router(desk.router, prefix=API_PREFIX)
    app.include_router(z_reports.router, prefix=API_PREFIX)

    @app.exception_handler(ServiceError)
    async def refused(_request, exc):
        return error_response(code_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request, exc):
        where = "; ".join("%s: %s" % (".".join(str(p) for p in e.get("loc", ())), e.get("msg")) for e in exc.errors())
        return error_response("invalid_request", "the request is not valid: %s" % where[:500])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, exc):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        return error_response(code, str(exc.detail), exc.status_code)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(actor=Depends(api_actor)):
        gauges = await monitoring.fleet_gauges(hub.storage, actor, time.time())
        return Response(hub.metrics.text(hub.stats(), gauges), media_type=M.CONTENT_TYPE)

    from parkcard.web.app import install
    install(app, hub, secure, time_zone)
    return app


async def api_actor(request: Request, credentials: HTTPAuthorizationCredentials = Depends(_bearer)):
    """The ApiKeyActor of the request's bearer key (raises the service's unauthenticated refusal)."""
    hub = request.app.state.hub
    return await apikeys.authenticate(hub.storage, credentials.credentials if credentials else None, hub.api_told)


async def idempotency_key(idempotency_key: str = Header(
        alias="Idempotency-Key", min_length=1, max_length=IDEMPOTENCY_KEY_MAX, pattern=r"^[\x21-\x7e]+$",
        description="made by the caller, reused on every retry of the same request")):
    """The request's Idempotency-Key header."""
    return idempotency_key


async def once(request, actor, key, produce):
    """Answer a POST with the Idempotency-Key's first response, or run produce() (a JSON-able result) once."""
    hub = request.app.state.hub
    digest = hashlib.sha256(b"%s %s\n" % (request.method.encode(), request.url.path.encode())
                            + await request.body()).digest()
    async with key_lock(request, actor, key):
        stored = await hub.storage.idempotent_response(actor.key.id, key)
        if stored is None:
            try:
                status, body = 200, await produce()
            except ServiceError as exc:     # a refusal is the first response too
                code = code_of(exc)
                status, body = STATUS.get(code, 422), {"error": {"code": code, "message": str(exc)}}
            stored = await hub.storage.keep_idempotent_response(actor.key.id, key, digest, status,
                                                                json.dumps(body))
        elif stored.request_sha256 != digest:
            return error_response("idempotency_key_reused", "Idempotency-Key %r was used for another request: "
                                  "use a new key for a new request" % key)
        else:
            return Response(stored.body, stored.status, media_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
    return Response(stored.body, stored.status, media_type="application/json")


@contextlib.asynccontextmanager
async def key_lock(request, actor, key):
    """One POST of an API key's Idempotency-Key at a time; the lock lives while requests hold it (a count), so
    memory is what is in flight."""
    locks = request.app.state.idempotency_locks
    held = locks.setdefault((actor.key.id, key), [asyncio.Lock(), 0])
    held[1] += 1
    try:
        async with held[0]:
            yield
    finally:
        held[1] -= 1
        if not held[1]:
            del locks[(actor.key.id, key)]
