"""/api/v1 routes: each is one call of parkcard.services as the request's API key (no rule, no SQL here)."""

import time

from fastapi import APIRouter, Depends, Path, Query, Request

from protocol.record import KIND_LOCK as _KIND_LOCK

from parkcard import bounds
from parkcard.api import models as m
from parkcard.api.app import REFUSALS, api_actor, idempotency_key, once
from parkcard.domain import accounts
from parkcard.services import blacklist, credits, merchants, monitoring, park, settlement, terminals

router = APIRouter(responses=REFUSALS)
open_router = APIRouter()      # what needs no API key
TerminalId = Path(ge=bounds.TERMINAL_ID.low, le=bounds.TERMINAL_ID.high)
MerchantId = Path(ge=bounds.MERCHANT_ID.low, le=bounds.MERCHANT_ID.high)
ATTEMPTS_SHOWN = 3


def _store(request):
    return request.app.state.hub.storage


@open_router.get("/health", response_model=m.Health, tags=["hub"])
async def health(request: Request):
    """The hub answers (no API key needed)."""
    hub = request.app.state.hub
    return m.Health(status="ok", broker_connected=hub.link.connected.is_set(),
                    storage_available=hub.storage_down_since is None)


@router.get("/park", response_model=m.Park, tags=["park"])
async def park_settings(request: Request, actor=Depends(api_actor)):
    """The park's currency (every amount of this API is in it)."""
    return m.Park(currency=await park.currency(_store(request), actor))


@router.get("/terminals", response_model=list[m.Terminal], tags=["fleet"])
async def terminal_list(request: Request, actor=Depends(api_actor)):
    """The fleet: online, last seen, versions, backlog, heap, lock state (scope fleet:read)."""
    now = time.time()
    return [m.Terminal.of(t, now) for t in await terminals.fleet(_store(request), actor)]


@router.get("/terminals/{terminal_id}", response_model=m.Terminal, tags=["fleet"])
async def terminal_one(request: Request, terminal_id: int = TerminalId, actor=Depends(api_actor)):
    """One terminal (scope fleet:read)."""
    return m.Terminal.of(await terminals.one(_store(request), actor, terminal_id), time.time())


def _control(name, service, doc):
    """A POST /terminals/{id}/<name> running `service(hub, actor, terminal_id)` (lock, unlock, deauthorise, push the
    configuration) once per Idempotency-Key."""
    async def control(request: Request, terminal_id: int = TerminalId, actor=Depends(api_actor),
                      key: str = Depends(idempotency_key)):
        async def produce():
            changed = await service(request.app.state.hub, actor, terminal_id)
            return m.Changed(changed=changed).model_dump(mode="json")
        return await once(request, actor, key, produce)
    control.__doc__ = doc
    router.add_api_route("/terminals/{terminal_id}/%s" % name, control, methods=["POST"], response_model=m.Changed,
                         tags=["fleet"], name="terminal_" + name)


_control("lock", lambda hub, actor, tid: terminals.lock(hub.storage, actor, tid),
         "Lock a terminal: it forgets its card keys (scope terminals:control).")
_control("unlock", lambda hub, actor, tid: terminals.unlock(hub.storage, actor, tid),
         "Let a locked terminal be authorised again by an admin card (scope terminals:control).")
_control("deauthorise", lambda hub, actor, tid: terminals.deauthorise(hub.storage, actor, tid),
         "De-authorise a terminal until the next admin card tap (scope terminals:control).")
_control("config", lambda hub, actor, tid: terminals.push_config(hub.storage, actor, tid, hub.downlink.config),
         "Send a terminal its configuration now; changed is false when the hub could not publish it (the terminal "
         "gets it at its next sync either way) (scope terminals:control).")


@router.get("/merchants", response_model=list[m.Merchant], tags=["merchants"])
async def merchant_list(request: Request, actor=Depends(api_actor)):
    """Every merchant with its commission and terminals (scope merchants:read)."""
    return [m.Merchant(id=i, park_id=p, name=n, commission_bps=bps, terminal_ids=tids)
            for i, p, n, bps, tids in await merchants.listing(_store(request), actor)]


@router.post("/merchants", response_model=m.Changed, tags=["merchants"])
async def merchant_add(request: Request, body: m.MerchantNew, actor=Depends(api_actor),
                       key: str = Depends(idempotency_key)):
    """Create a merchant; changed false when it exists with these very values (scope merchants:write)."""
    async def produce():
        return m.Changed(changed=await merchants.add(_store(request), actor, body.id, body.name, body.commission_bps,
                                                     body.park_id)).model_dump(mode="json")
    return await once(request, actor, key, produce)


@router.post("/merchants/{merchant_id}", response_model=m.MerchantChanged, tags=["merchants"])
async def merchant_set(request: Request, body: m.MerchantChange, merchant_id: int = MerchantId,
                       actor=Depends(api_actor), key: str = Depends(idempotency_key)):
    """Change a merchant's name or commission (scope merchants:write)."""
    async def produce():
        before, after = await merchants.change(_store(request), actor, merchant_id, body.name, body.commission_bps)
        return m.MerchantChanged(changed=before != after, name=after[0],
                                 commission_bps=after[1]).model_dump(mode="json")
    return await once(request, actor, key, produce)


@router.get("/blacklist", response_model=list[m.BlacklistEntry], tags=["blacklist"])
async def blacklist_list(request: Request, actor=Depends(api_actor)):
    """The cards on the blacklist, with the taps seen since (scope blacklist:read)."""
    return [m.BlacklistEntry(card_no=e.card_no, reason=e.reason, since_version=e.added_version, attempts=seen,
                             last_attempts=[m.Attempt(time=a.time_s, terminal_id=a.terminal_id,
                                                      locked=a.kind == _KIND_LOCK) for a in last])
            for e, seen, last in await blacklist.entries(_store(request), actor, ATTEMPTS_SHOWN)]


@router.post("/blacklist", response_model=m.BlacklistChange, tags=["blacklist"])
async def blacklist_add(request: Request, body: m.BlacklistAdd, actor=Depends(api_actor),
                        key: str = Depends(idempotency_key)):
    """Blacklist a card; every online terminal gets it at once (scope blacklist:write)."""
    async def produce():
        version = await blacklist.add(_store(request), actor, body.card_no, body.reason, body.force)
        return m.BlacklistChange(changed=version is not None, version=version).model_dump(mode="json")
    return await once(request, actor, key, produce)


@router.delete("/blacklist/{card_no}", response_model=m.BlacklistChange, tags=["blacklist"])
async def blacklist_remove(request: Request, card_no: int = Path(ge=0, le=2 ** 63 - 1),
                           reason: str = Query("removed through the API", min_length=1, max_length=200),
                           actor=Depends(api_actor)):
    """Take a card off the blacklist (idempotent by nature: changed false when it was not listed)."""
    version = await blacklist.remove(_store(request), actor, card_no, reason)
    return m.BlacklistChange(changed=version is not None, version=version)


@router.get("/alarms", response_model=list[m.Alarm], tags=["fleet"])
async def alarm_list(request: Request, actor=Depends(api_actor)):
    """Alarms raised by ingest: clones, chain breaks, conflicts, storage outages (scope fleet:read)."""
    return [m.Alarm(id=a.id, kind=a.kind, card_no=a.card_no, terminal_id=a.terminal_id, seq=a.seq, detail=a.detail,
                    at=int(a.at)) for a in await monitoring.alarms(_store(request), actor)]


@router.get("/quarantine", response_model=m.QuarantineSummary, tags=["fleet"])
async def quarantine_summary(request: Request, actor=Depends(api_actor)):
    """What ingest refused, counted by reason (scope fleet:read)."""
    by_reason, newest = await monitoring.quarantine_summary(_store(request), actor)
    return m.QuarantineSummary(total=sum(by_reason.values()), by_reason=by_reason,
                               newest_at=None if newest is None else int(newest))


@router.get("/settlements", response_model=list[m.Settlement], tags=["settlement"])
async def settlement_list(request: Request, actor=Depends(api_actor)):
    """Every closed settlement (scope settlement:read)."""
    return [m.Settlement.of(s) for s in await settlement.listing(_store(request), actor)]


@router.get("/settlements/{settlement_id}", response_model=m.Settlement, tags=["settlement"])
async def settlement_one(request: Request, settlement_id: int = Path(ge=1, le=2 ** 63 - 1),
                         actor=Depends(api_actor)):
    """One closed settlement (scope settlement:read)."""
    return m.Settlement.of(await settlement.one(_store(request), actor, settlement_id))


@router.post("/settlements", response_model=list[m.SettlementClosed], tags=["settlement"])
async def settlement_close(request: Request, body: m.SettlementClose, actor=Depends(api_actor),
                           key: str = Depends(idempotency_key)):
    """Close [period_start, period_end) for the merchants given or all, all or none (scope settlement:close)."""
    async def produce():
        closed = await settlement.close_period(_store(request), actor, body.merchant_ids, body.period_start,
                                               body.period_end)
        return [m.SettlementClosed(newly_closed=new, settlement=m.Settlement.of(s)).model_dump(mode="json")
                for s, new in closed]
    return await once(request, actor, key, produce)



CardNo = Path(ge=bounds.CARD_NO.low, le=bounds.CARD_NO.high)


@router.post("/cards/{card_no}/credits", response_model=m.Credit, tags=["credits"])
async def credit_grant(request: Request, body: m.CreditNew, card_no: int = CardNo, actor=Depends(api_actor),
                       key: str = Depends(idempotency_key)):
    """Credit a card paid for through this API: it lands at the card's next tap on any terminal (scope
    credits:write). The same Idempotency-Key again returns the first answer: one payment, one credit."""
    async def produce():
        store = _store(request)
        # The key is the grant's id too: sent again after a hub stopped before keeping its answer, one credit.
        credit = await credits.grant_credit(store, actor, card_no, body.amount_cents, body.reason,
                                            source=accounts.API_PAYMENTS, grant_id="api%d-%s" % (actor.key.id, key))
        return m.Credit.of(credit, await park.currency(store, actor)).model_dump(mode="json")
    return await once(request, actor, key, produce)


@router.get("/cards/{card_no}/credits", response_model=list[m.Credit], tags=["credits"])
async def credit_list(request: Request, card_no: int = CardNo, actor=Depends(api_actor)):
    """A card's pending credits, delivered and cancelled ones included (scope credits:read)."""
    store = _store(request)
    currency = await park.currency(store, actor)
    return [m.Credit.of(c, currency) for c in await credits.pending_credits(store, actor, card_no)]
