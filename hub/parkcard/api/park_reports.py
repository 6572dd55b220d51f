"""/api/v1 routes of the park's tiers, consumption rules and booth staff, and of the reports the manager's and
finance's pages show: booth sales, discounts, staff shifts reconciled, the desks' day, tickets and gate passages.
Each is one call of parkcard.services as the request's API key (no rule, no SQL here)."""

from fastapi import APIRouter, Depends, Path, Query, Request

from parkcard.api import models as m
from parkcard.api.app import REFUSALS, api_actor, idempotency_key, once
from parkcard.api.reports import EPOCH_MAX, OFFSET_S_MAX
from parkcard.domain.sales_report import BY
from parkcard.domain.spend_rules import RuleError, card_type_names, card_types_mask, tier_numbers, tiers_mask
from parkcard.services import discounts, occupancy, park, reports, spend_rules, staff, staff_reports, tickets, tiers
from parkcard.services.errors import Refusal

router = APIRouter(responses=REFUSALS)
DAY_MAX = 2 ** 20               # park days from the epoch: far beyond any park
SalesBy = Query("merchant", pattern="^(%s)$" % "|".join(BY))
DeskBy = Query("operator", pattern="^(%s)$" % "|".join(reports.DESK_GROUPS))


def _store(request):
    return request.app.state.hub.storage


async def _money_of(store, actor):
    """money(cents): an amount in the park's currency."""
    currency = await park.currency(store, actor)
    return lambda cents: m.Money(cents=cents, currency=currency)


@router.get("/tiers", response_model=list[m.Tier], tags=["park"])
async def tier_list(request: Request, actor=Depends(api_actor)):
    """The park's member tiers with their bonus and the discounts of the rules in force (any key)."""
    store = _store(request)
    version, rules = await discounts.rules(store, actor)
    return [m.Tier(code=t.code, name=t.name, bonus_bps=t.bonus_bps,
                   bonus_steps=[[s.min_cash_cents, s.bonus_cents] for s in t.steps],
                   sale_discount_bp=rules.sale_bp[t.code], total_discount_bp=rules.total_bp[t.code],
                   discount_rules_version=version) for t in await tiers.list_tiers(store, actor)]


@router.post("/tiers/{code}/discounts", response_model=m.TierDiscountsChanged, tags=["park"])
async def tier_discounts_set(request: Request, body: m.TierDiscountsSet, code: int = Path(ge=0, le=15),
                             actor=Depends(api_actor), key: str = Depends(idempotency_key)):
    """Set a tier's discount rates: a new version of the discount rules, pushed to the booths (scope
    rules:write)."""
    async def produce():
        version = await discounts.set_tier(_store(request), actor, code, body.sale_discount_bp, body.total_discount_bp)
        return m.TierDiscountsChanged(discount_rules_version=version).model_dump(mode="json")
    return await once(request, actor, key, produce)


@router.get("/rules", response_model=m.SpendRules, tags=["park"])
async def rule_list(request: Request, actor=Depends(api_actor)):
    """The consumption rules in force per terminal category and merchant (any key)."""
    store = _store(request)
    money = await _money_of(store, actor)
    version, rows = await spend_rules.listing(store, actor)
    return m.SpendRules(version=version, rules=[_rule(scope, ident, r, money) for scope, ident, r in rows])


def _rule(scope, ident, r, money):
    """A consumption rule as the API shows it."""
    return m.SpendRule(scope=scope, id=ident, tx_cap=money(r.tx_cap_cents), daily_cap=money(r.daily_cap_cents),
                       card_types=card_type_names(r.card_types), tiers=tier_numbers(r.tiers),
                       offline_limit=money(r.offline_cents), member_tier=r.member_tier)


@router.post("/rules", response_model=m.SpendRuleChanged, tags=["park"])
async def rule_set(request: Request, body: m.SpendRuleSet, actor=Depends(api_actor),
                   key: str = Depends(idempotency_key)):
    """Set a terminal category's or merchant's consumption rule: a new version its terminals get with their next
    config (scope rules:write)."""
    async def produce():
        store = _store(request)
        try:
            types = None if body.card_types is None else card_types_mask(body.card_types)
            tier_bits = None if body.tiers is None else tiers_mask(body.tiers)
        except RuleError as exc:
            raise Refusal("out_of_range", "%(problem)s: nothing changed", problem=exc) from None
        version, rule = await spend_rules.set_rule(
            store, actor, body.scope, body.id, tx_cap_cents=body.tx_cap_cents, daily_cap_cents=body.daily_cap_cents,
            card_types=types, tiers=tier_bits, offline_cents=body.offline_cents, member_tier=body.member_tier)
        money = await _money_of(store, actor)
        return m.SpendRuleChanged(version=version, rule=_rule(body.scope, body.id, rule, money)).model_dump(
            mode="json")
    return await once(request, actor, key, produce)


@router.delete("/rules/{scope}/{ident}", response_model=m.SpendRuleChanged, tags=["park"])
async def rule_clear(request: Request, scope: str = Path(pattern="^(category|merchant)$"),
                     ident: int = Path(ge=0, le=2 ** 31 - 1), actor=Depends(api_actor)):
    """Remove a category's or merchant's consumption rule: its terminals go back to the park's caps (scope
    rules:write; a rule already removed is refused as rule_not_found)."""
    return m.SpendRuleChanged(version=await spend_rules.clear_rule(_store(request), actor, scope, ident))


@router.get("/staff", response_model=list[m.StaffMember], tags=["merchants"])
async def staff_list(request: Request, actor=Depends(api_actor)):
    """Every booth staff member and their staff card (scope merchants:read)."""
    return [m.StaffMember(id=s.id, merchant_id=s.merchant_id, name=s.name, card_no=s.card_no)
            for s in await staff.listing(_store(request), actor)]


def _totals(t, money):
    """A shift's ShiftTotals as the API shows them."""
    return m.ShiftTotals(sales=t.sales, sales_amount=money(t.sales_cents), reversals=t.reversals,
                         reversals_amount=money(t.reversals_cents))


@router.get("/reports/staff-shifts", response_model=list[m.StaffShift], tags=["reports"])
async def staff_shifts(request: Request, start: int = Query(ge=0, le=EPOCH_MAX), end: int = Query(ge=0, le=EPOCH_MAX),
                       actor=Depends(api_actor)):
    """The booths' staff shifts opened in [start, end): the hub's totals against the terminal's own, reconciled
    (scope reports:read)."""
    store = _store(request)
    money = await _money_of(store, actor)
    named = await staff_reports.sales_by_shift(store, actor, start, end)
    result = await staff_reports.reconcile(store, actor, start, end)
    differing = {(d.terminal_id, d.open_seq) for d in result.differences}
    return [m.StaffShift(terminal_id=s.terminal_id, open_seq=s.open_seq, staff_card_no=s.staff_no, staff_name=name,
                         opened=s.opened_s, closed=s.closed_s, hub=_totals(s.hub, money),
                         terminal=_totals(s.terminal, money) if s.terminal else None,
                         result="not_closed" if s.terminal is None else
                         "different" if (s.terminal_id, s.open_seq) in differing else "equal")
            for name, s in named]


@router.get("/reports/sales", response_model=list[m.SalesGroup], tags=["reports"])
async def booth_sales(request: Request, start: int = Query(ge=0, le=EPOCH_MAX), end: int = Query(ge=0, le=EPOCH_MAX),
                      by: str = SalesBy, offset_s: int = Query(0, ge=-OFFSET_S_MAX, le=OFFSET_S_MAX),
                      actor=Depends(api_actor)):
    """Booth sales in [start, end) grouped by merchant, terminal, item, category or day (days shifted by the park's
    UTC offset_s); best sellers first for items (scope reports:read)."""
    store = _store(request)
    money = await _money_of(store, actor)
    return [m.SalesGroup(key=int(r.key), name=str(r.name), sales=r.sales, quantity=r.quantity,
                         list_amount=money(r.list_cents), discount=money(r.discount_cents), paid=money(r.paid_cents),
                         refunds=money(r.refunds_cents))
            for r in await reports.booth_sales(store, actor, by, start, end, offset_s)]


@router.get("/reports/discounts", response_model=list[m.TierDiscounts], tags=["reports"])
async def discounts_given(request: Request, start: int = Query(ge=0, le=EPOCH_MAX),
                          end: int = Query(ge=0, le=EPOCH_MAX), actor=Depends(api_actor)):
    """The discounts booth sales in [start, end) gave, by card tier, and who bore them (scope reports:read)."""
    store = _store(request)
    money = await _money_of(store, actor)
    return [m.TierDiscounts(tier=r.tier, sales=r.sales, discount=money(r.discount_cents), park_bore=money(r.park_cents),
                            merchants_bore=money(r.merchant_cents))
            for r in await reports.discounts_given(store, actor, start, end)]


@router.get("/reports/desk", response_model=list[m.DeskLine], tags=["reports"])
async def desk_day(request: Request, day: int = Query(ge=0, le=DAY_MAX), by: str = DeskBy,
                   actor=Depends(api_actor)):
    """The desk operations posted on park day `day` (days since 1970-01-01; from the park's daily reset on its clock
    to the next), per operator or desk (scope reports:read)."""
    store = _store(request)
    money = await _money_of(store, actor)
    return [m.DeskLine(group=str(x.group), kind=x.kind, count=x.count, amount=money(x.amount_cents),
                       bonus=money(x.bonus_cents), deposits=money(x.deposit_cents))
            for x in (await reports.desk_day(store, actor, day, by))[1]]


@router.get("/reports/tickets", response_model=list[m.TicketProductReport], tags=["reports"])
async def ticket_report(request: Request, actor=Depends(api_actor)):
    """Tickets sold and used by product, and the entries left on the count cards sold (scope reports:read)."""
    store = _store(request)
    money = await _money_of(store, actor)
    return [m.TicketProductReport(product_id=x.product_id, name=x.name, sold=x.sold,
                                  revenue=money(x.revenue_cents), entries_made=x.entered,
                                  entries_left=x.entries_left, unlimited=x.unlimited)
            for x in await tickets.report(store, actor)]


@router.get("/reports/passages", response_model=m.GateDay, tags=["gates"])
async def gate_day(request: Request, day: int = Query(ge=0, le=DAY_MAX), actor=Depends(api_actor)):
    """A park day's passages per gate and hour and its refusals by reason (scope gates:read)."""
    got = await occupancy.day_report(_store(request), actor, day)
    return m.GateDay(day=got.day, start=got.start_s, end=got.end_s,
                     hours=[m.GateHour(gate=g, hour=h, entries=e, exits=x, refusals=r)
                            for g, h, e, x, r in got.per_hour],
                     refusals=dict(got.refusals))

