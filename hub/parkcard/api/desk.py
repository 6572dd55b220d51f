"""/api/v1 routes of the front desk and of webhooks: each one call of parkcard.services as the request's API key.

A desk operation's Idempotency-Key is its operation id (SPEC.md §5.9): the same key again is the same
operation, answered by the service itself, which resolves one left pending by reading the card, so a retry
after "pending" or "the card left" does what a cashier's retry does. One request of a key at a time.
"""

import hashlib

from fastapi import APIRouter, Depends, Path, Request

from parkcard import bounds
from parkcard.api import models as m
from parkcard.api.app import REFUSALS, api_actor, idempotency_key, key_lock, once
from parkcard.services import losses, park, webhooks
from parkcard.services.desk import operations, query, replacement

router = APIRouter(responses=REFUSALS)
DeskId = Path(ge=bounds.TERMINAL_ID.low, le=bounds.TERMINAL_ID.high)
CardNo = Path(ge=bounds.CARD_NO.low, le=bounds.CARD_NO.high)
WebhookId = Path(ge=1, le=2 ** 63 - 1)


def _hub(request):
    return request.app.state.hub


def desk_op_id(actor, key):
    """The desk operation id of an API key's Idempotency-Key: its own, never another caller's."""
    op_id = "api%d-%s" % (actor.key.id, key)
    if len(op_id) > operations.OP_ID_MAX:      # still one id per key, within what the desk keeps
        op_id = "api%d-%s" % (actor.key.id, hashlib.sha256(key.encode()).hexdigest()[:40])
    return op_id


@router.get("/desks/{desk_id}/card", response_model=m.CardOnDesk, tags=["desk"])
async def card_on_desk(request: Request, desk_id: int = DeskId, actor=Depends(api_actor)):
    """Read the card lying on desk terminal desk_id: blank, stock or a park card (scope cards:read or
    desk:operate)."""
    hub = _hub(request)
    card = await query.card_on_desk(hub.desk_path, actor, desk_id)
    return m.CardOnDesk.of(card, await park.currency(hub.storage, actor))


def _desk_operation(name, body_model, doc, operate):
    """The route POST /desks/{desk_id}/NAME of one desk operation, `await operate(desk_path, actor, op_id, desk_id,
    body)`, run under the request's Idempotency-Key and answered as DeskDone (doc: its OpenAPI description)."""
    async def route(request: Request, body: body_model, desk_id: int = DeskId, actor=Depends(api_actor),
                    key: str = Depends(idempotency_key)):
        hub = _hub(request)
        async with key_lock(request, actor, key):
            done = await operate(hub.desk_path, actor, desk_op_id(actor, key), desk_id, body)
        return m.DeskDone.of(done, await park.currency(hub.storage, actor))
    route.__name__ = route.__qualname__ = "desk_" + name.replace("-", "_")     # the OpenAPI operation's id
    route.__doc__ = doc
    return router.post("/desks/{desk_id}/" + name, response_model=m.DeskDone, tags=["desk"])(route)


desk_stock = _desk_operation(
    "stock", m.DeskStock, "Make the blank card on the desk card stock (scope desk:operate).",
    lambda path, actor, op_id, desk_id, body: operations.stock_card(path, actor, op_id, desk_id, body.uid))
desk_issue = _desk_operation(
    "issue", m.DeskIssue, "Issue the stock card on the desk with a first load and deposit (scope desk:operate).",
    lambda path, actor, op_id, desk_id, body: operations.issue(path, actor, op_id, desk_id, body.cash_cents,
                                                                tier=body.tier, deposit_cents=body.deposit_cents))
desk_top_up = _desk_operation(
    "top-up", m.DeskTopUp, "Top up the card on the desk with the cash paid, plus its tier's bonus (scope "
    "desk:operate).",
    lambda path, actor, op_id, desk_id, body: operations.top_up(path, actor, op_id, desk_id, body.cash_cents))


@router.post("/desks/{desk_id}/replace", response_model=m.DeskReplaced, tags=["desk"])
async def desk_replace(request: Request, body: m.DeskReplace, desk_id: int = DeskId, actor=Depends(api_actor),
                       key: str = Depends(idempotency_key)):
    """Issue the stock card on the desk as the replacement of a card reported lost (补卡): the lost card's balance
    less a hold for its late offline debits, the rest released later as a pending credit (scope desk:replace)."""
    hub = _hub(request)
    async with key_lock(request, actor, key):
        done = await replacement.replace(hub.desk_path, actor, desk_op_id(actor, key), desk_id, body.lost_card_no)
    row = await losses.replacement_of(hub.storage, actor, body.lost_card_no)
    currency = await park.currency(hub.storage, actor)
    return m.DeskReplaced(**m.DeskDone.of(done, currency).model_dump(), lost_card_no=body.lost_card_no,
                          hold=m.Money(cents=row.hold_cents, currency=currency), release_at=int(row.release_at_s))


@router.post("/cards/{card_no}/lost", response_model=m.CardLoss, tags=["desk"])
async def card_lost(request: Request, body: m.LossNew, card_no: int = CardNo, actor=Depends(api_actor),
                    key: str = Depends(idempotency_key)):
    """Report a card lost (挂失): blacklisted at once and pushed to every online terminal (scope cards:loss)."""
    async def produce():
        loss = await losses.report(_hub(request).storage, actor, body.reason, card_no=card_no)
        return m.CardLoss.of(loss).model_dump(mode="json")
    return await once(request, actor, key, produce)


@router.post("/cards/{card_no}/found", response_model=m.CardLoss, tags=["desk"])
async def card_found(request: Request, body: m.FoundNew, card_no: int = CardNo, actor=Depends(api_actor),
                     key: str = Depends(idempotency_key)):
    """Un-report a lost card that was not replaced (解挂): off the blacklist again (scope cards:loss)."""
    async def produce():
        store = _hub(request).storage
        await losses.unreport(store, actor, card_no, body.reason)
        return m.CardLoss.of(await losses.loss_of(store, actor, card_no)).model_dump(mode="json")
    return await once(request, actor, key, produce)


@router.get("/webhooks", response_model=list[m.Webhook], tags=["webhooks"])
async def webhook_list(request: Request, actor=Depends(api_actor)):
    """The active webhooks and their deliveries by state (scope webhooks:manage)."""
    return [m.Webhook(id=h.id, url=h.url, events=h.events.split(), created_by=h.created_by,
                      created_at=int(h.created_at), delivered=c.get("delivered", 0), due=c.get("due", 0),
                      given_up=c.get("given_up", 0)) for h, c in await webhooks.listing(_hub(request).storage, actor)]


@router.post("/webhooks", response_model=m.WebhookAdded, tags=["webhooks"])
async def webhook_add(request: Request, body: m.WebhookNew, actor=Depends(api_actor),
                      key: str = Depends(idempotency_key)):
    """Register a webhook; its events are POSTed as JSON signed in X-ParkCard-Signature (sha256=<hex HMAC-SHA256
    of the body>) (scope webhooks:manage)."""
    async def produce():
        webhook_id, secret = await webhooks.add(_hub(request).storage, actor, body.url, body.events, body.secret)
        return m.WebhookAdded(id=webhook_id, secret=secret).model_dump(mode="json")
    return await once(request, actor, key, produce)


@router.delete("/webhooks/{webhook_id}", response_model=m.Changed, tags=["webhooks"])
async def webhook_remove(request: Request, webhook_id: int = WebhookId, actor=Depends(api_actor)):
    """Stop a webhook (scope webhooks:manage)."""
    return m.Changed(changed=await webhooks.remove(_hub(request).storage, actor, webhook_id))
