"""/api/v1 routes of a card's trace, credit cancellation, the finance reports and gate occupancy: each one call
of parkcard.services as the request's API key (no rule, no SQL here)."""

from fastapi import APIRouter, Depends, Path, Query, Request

from parkcard import bounds
from parkcard.api import models as m
from parkcard.api.app import REFUSALS, api_actor, idempotency_key, once
from parkcard.services import credits, occupancy, park, reports, trace

router = APIRouter(responses=REFUSALS)
CardNo = Path(ge=bounds.CARD_NO.low, le=bounds.CARD_NO.high)
CreditNo = Path(ge=1, le=2 ** 31 - 1)
EPOCH_MAX = 2 ** 40
OFFSET_S_MAX = 14 * 3600


def _store(request):
    return request.app.state.hub.storage


def _money(cents, currency):
    return m.Money(cents=cents, currency=currency)


@router.get("/cards/{card_no}/trace", response_model=list[m.CardUse], tags=["cards"])
async def card_trace(request: Request, card_no: int = CardNo, limit: int = Query(100, ge=1, le=trace.TRACE_MAX),
                     actor=Depends(api_actor)):
    """Where and when a card was used, newest first (scope cards:read)."""
    store = _store(request)
    currency = await park.currency(store, actor)
    return [m.CardUse.of(u, currency) for u in await trace.card_trace(store, actor, card_no, limit)]


@router.post("/cards/{card_no}/credits/{credit_no}/cancel", response_model=m.CreditCancelled, tags=["credits"])
async def credit_cancel(request: Request, card_no: int = CardNo, credit_no: int = CreditNo, actor=Depends(api_actor),
                        key: str = Depends(idempotency_key)):
    """Cancel a credit no terminal holds yet: its value goes back to its source (scope credits:write). The same
    Idempotency-Key again returns the first answer."""
    async def produce():
        store = _store(request)
        cents = await credits.cancel_credit(store, actor, card_no, credit_no)
        return m.CreditCancelled(card_no=card_no, credit_no=credit_no,
                                 amount=_money(cents, await park.currency(store, actor))).model_dump(mode="json")
    return await once(request, actor, key, produce)


@router.get("/reports/sales-by-terminal", response_model=list[m.TerminalSales], tags=["reports"])
async def sales_by_terminal(request: Request, start: int = Query(ge=0, le=EPOCH_MAX),
                            end: int = Query(ge=0, le=EPOCH_MAX), actor=Depends(api_actor)):
    """Each terminal's applied sales and refunds with time in [start, end), UTC epoch seconds (scope reports:read)."""
    store = _store(request)
    currency = await park.currency(store, actor)
    return [m.TerminalSales(terminal_id=r.terminal_id, terminal_name=r.terminal_name, merchant_id=r.merchant_id,
                            merchant_name=r.merchant_name, sales=_money(r.sales_cents, currency),
                            refunds=_money(r.refunds_cents, currency), records=r.records)
            for r in await reports.sales_by_terminal(store, actor, start, end)]


@router.get("/reports/top-ups", response_model=list[m.TopUpDay], tags=["reports"])
async def top_ups(request: Request, start: int = Query(ge=0, le=EPOCH_MAX), end: int = Query(ge=0, le=EPOCH_MAX),
                  offset_s: int = Query(0, ge=-OFFSET_S_MAX, le=OFFSET_S_MAX), actor=Depends(api_actor)):
    """Top-ups and issues per day in [start, end), days shifted by the park's UTC offset_s (scope reports:read)."""
    store = _store(request)
    currency = await park.currency(store, actor)
    return [m.TopUpDay(day=r.day, loaded=_money(r.loaded_cents, currency), bonus=_money(r.bonus_cents, currency),
                       records=r.records) for r in await reports.top_ups_by_day(store, actor, start, end, offset_s)]


@router.get("/reports/liabilities", response_model=m.Liabilities, tags=["reports"])
async def liabilities(request: Request, actor=Depends(api_actor)):
    """What the park owes now: card funds, holds, deposits, pending credits, merchants (scope reports:read)."""
    store = _store(request)
    currency = await park.currency(store, actor)
    owed = await reports.liabilities(store, actor)
    return m.Liabilities(cards=_money(owed.cards_cents, currency), holds=_money(owed.holds_cents, currency),
                         deposits=_money(owed.deposits_cents, currency),
                         pending_credits=_money(owed.pending_credits_cents, currency),
                         merchants=_money(owed.merchants_cents, currency))


@router.get("/occupancy", response_model=m.Occupancy, tags=["gates"])
async def occupancy_now(request: Request, actor=Depends(api_actor)):
    """Who is inside now, per area (scope gates:read)."""
    now = await occupancy.occupancy(_store(request), actor)
    return m.Occupancy(total=now.total, areas=now.areas)
