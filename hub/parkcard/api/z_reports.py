"""/api/v1 routes of the cashiers' Z reports (scope reports:z): the list by park day and desk, and one report with
all its figures. Each is one call of parkcard.services.shifts as the request's API key (no rule, no SQL here).

A Z report names its cashier and the drawer's over/short, a person's figures: they need a scope of their own,
`reports:z`, not the park's totals of `reports:read`."""

from typing import Optional

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from parkcard import bounds
from parkcard.api.app import REFUSALS, api_actor
from parkcard.api.models import Money
from parkcard.api.park_reports import DAY_MAX, _money_of, _store
from parkcard.services import shifts

router = APIRouter(responses=REFUSALS)
ZNumber = Path(ge=1, le=shifts.Z_NO_MAX)


class MethodTotal(BaseModel):
    """How many loads a payment method took at the desk, and their amount."""

    method: str
    count: int
    amount: Money


class ZReportLine(BaseModel):
    """A closed cashier shift's Z report as the list shows it: who, where, when, and the drawer."""

    number: int
    shift: int
    desk_terminal_id: int
    opened_by: str
    closed_by: Optional[str]
    opened: float               # UTC epoch seconds
    closed: float
    cash_expected: Money
    cash_counted: Money
    difference: Money           # counted - expected: positive over, negative short


class ZReport(ZReportLine):
    """A Z report with every figure of the shift, as printed at its close."""

    drawer_float: Money         # counted into the drawer at the open
    issues: int
    issue_loads: list[MethodTotal]
    top_ups: list[MethodTotal]
    bonus_given: Money
    refunds: int
    refunds_paid: Money
    returns: int
    returns_paid: Money
    fees: Money
    bonus_back: Money
    deposits_in: Money
    deposits_out: Money
    tickets: int
    tickets_amount: Money
    credits: int
    credits_amount: Money
    replacements: int


def _line(stored, shift, z, money):
    """The list's fields of a Z report."""
    return dict(number=stored.z_no, shift=shift.shift_no, desk_terminal_id=shift.desk_terminal_id,
                opened_by=shift.opened_by, closed_by=shift.closed_by, opened=shift.opened_at,
                closed=stored.closed_at,
                cash_expected=money(z.cash_expected_cents), cash_counted=money(z.cash_counted_cents),
                difference=money(z.difference_cents))


def _totals(by_method, money):
    return [MethodTotal(method=method, count=t.count, amount=money(t.cents)) for method, t in by_method]


@router.get("/z-reports", response_model=list[ZReportLine], tags=["reports"])
async def z_report_list(request: Request, day: Optional[int] = Query(None, ge=0, le=DAY_MAX),
                        desk: Optional[int] = Query(None, ge=bounds.TERMINAL_ID.low, le=bounds.TERMINAL_ID.high),
                        limit: int = Query(shifts.Z_LISTED_MAX, ge=1, le=shifts.Z_LISTED_MAX),
                        actor=Depends(api_actor)):
    """The Z reports, newest first: of park day `day` (days since 1970-01-01, from the park's daily reset on its
    clock to the next) and of one desk terminal when given (scope reports:z)."""
    store = _store(request)
    money = await _money_of(store, actor)
    return [ZReportLine(**_line(stored, shift, z, money))
            for stored, shift, z in await shifts.z_reports(store, actor, day, desk, limit)]


@router.get("/z-reports/{number}", response_model=ZReport, tags=["reports"])
async def z_report_one(request: Request, number: int = ZNumber, actor=Depends(api_actor)):
    """Z report `number` with every figure, exactly as made at its shift's close (scope reports:z)."""
    store = _store(request)
    money = await _money_of(store, actor)
    stored, shift, z = await shifts.z_report(store, actor, number)
    return ZReport(**_line(stored, shift, z, money), drawer_float=money(z.float_cents), issues=z.issues,
                   issue_loads=_totals(z.issue_loads, money), top_ups=_totals(z.top_ups, money),
                   bonus_given=money(z.bonus_given_cents), refunds=z.refunds, refunds_paid=money(z.refunds_paid_cents),
                   returns=z.returns, returns_paid=money(z.returns_paid_cents), fees=money(z.fees_cents),
                   bonus_back=money(z.bonus_back_cents), deposits_in=money(z.deposits_in_cents),
                   deposits_out=money(z.deposits_out_cents), tickets=z.tickets,
                   tickets_amount=money(z.tickets_cents), credits=z.credits, credits_amount=money(z.credits_cents),
                   replacements=z.replacements)
