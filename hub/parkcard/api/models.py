"""The JSON shapes of /api/v1: money as integer cents with the currency, times as UTC epoch seconds."""

from typing import Optional

from pydantic import BaseModel, Field

from protocol import frames

from parkcard import bounds
from parkcard.ingest import fleet


class ErrorDetail(BaseModel):
    """What went wrong: a stable code to act on, a message for a person."""

    code: str = Field(examples=["terminal_not_registered"])
    message: str


class ErrorBody(BaseModel):
    """Every refusal: {"error": {"code": ..., "message": ...}}."""

    error: ErrorDetail


class Money(BaseModel):
    """An amount in minor units (cents) of an ISO 4217 currency."""

    cents: int
    currency: str = Field(examples=["CNY"])


class Health(BaseModel):
    """The hub answers; whether its broker session is up and its store can be written."""

    status: str = Field(examples=["ok"])
    broker_connected: bool
    storage_available: bool


class Park(BaseModel):
    """The park's settings a third party needs."""

    currency: str


class Terminal(BaseModel):
    """A registered terminal: the hub's decisions and what it last reported."""

    id: int
    name: str
    role: str
    merchant_id: int
    online: bool
    last_seen: Optional[int] = Field(description="UTC epoch seconds of its last frame")
    firmware: Optional[str]
    config_version: int = Field(description="the configuration version the hub wants it to hold")
    reported_config_version: Optional[int]
    reported_blacklist_version: Optional[int]
    backlog_records: Optional[int] = Field(description="records it reported not yet acknowledged")
    oldest_unsynced_age_s: Optional[int]
    free_heap_bytes: Optional[int]
    uptime_s: Optional[int]
    acked_seq: int
    locked: bool
    authorised: bool
    reported_authorised: Optional[bool]

    @classmethod
    def of(cls, t, now_s):
        """From a parkcard.store.rows.Terminal."""
        return cls(id=t.id, name=t.name, role=frames.ROLE_NAMES.get(t.role, str(t.role)), merchant_id=t.merchant_id,
                   online=fleet.online(t, now_s), last_seen=_epoch(t.last_seen), firmware=t.firmware,
                   config_version=t.config_version, reported_config_version=t.status_config_version,
                   reported_blacklist_version=t.status_blacklist_version, backlog_records=t.queue_depth,
                   oldest_unsynced_age_s=t.oldest_unsynced_age_s, free_heap_bytes=t.free_heap or None,
                   uptime_s=t.uptime_s, acked_seq=t.acked_upto, locked=bool(t.locked),
                   authorised=bool(t.authorised),
                   reported_authorised=None if t.status_authorised is None else bool(t.status_authorised))


class Changed(BaseModel):
    """Whether the request changed anything (False: it was so already; nothing was audited)."""

    changed: bool


class Merchant(BaseModel):
    """A booth owner, its commission and its terminals."""

    id: int
    park_id: int
    name: str
    commission_bps: int
    terminal_ids: list[int]


class MerchantNew(BaseModel):
    """A merchant to create."""

    id: int = Field(ge=bounds.MERCHANT_ID.low, le=bounds.MERCHANT_ID.high)
    name: str = Field(min_length=1, max_length=bounds.NAME_LENGTH_MAX)
    commission_bps: int = Field(ge=bounds.COMMISSION_BPS.low, le=bounds.COMMISSION_BPS.high)
    park_id: int = Field(default=1, ge=bounds.PARK_ID.low, le=bounds.PARK_ID.high)


class MerchantChange(BaseModel):
    """What to change of a merchant (at least one)."""

    name: Optional[str] = Field(default=None, min_length=1, max_length=bounds.NAME_LENGTH_MAX)
    commission_bps: Optional[int] = Field(default=None, ge=bounds.COMMISSION_BPS.low, le=bounds.COMMISSION_BPS.high)


class MerchantChanged(BaseModel):
    """A merchant after a change, and whether anything changed."""

    changed: bool
    name: str
    commission_bps: int


class Attempt(BaseModel):
    """A tap of a blacklisted card."""

    time: int
    terminal_id: int
    locked: bool


class BlacklistEntry(BaseModel):
    """A card on the blacklist now, with the taps seen since."""

    card_no: int
    reason: str
    since_version: int
    attempts: int
    last_attempts: list[Attempt]


class BlacklistAdd(BaseModel):
    """A card to blacklist; force: also one this park never issued."""

    card_no: int = Field(ge=bounds.CARD_NO.low, le=bounds.CARD_NO.high)
    reason: str = Field(min_length=1, max_length=200)
    force: bool = False


class BlacklistChange(BaseModel):
    """The blacklist version a change took (None: nothing changed)."""

    changed: bool
    version: Optional[int]


class Alarm(BaseModel):
    """An alarm raised by ingest."""

    id: int
    kind: str
    card_no: Optional[int]
    terminal_id: Optional[int]
    seq: Optional[int]
    detail: str
    at: int


class QuarantineSummary(BaseModel):
    """What ingest refused, counted by reason."""

    total: int
    by_reason: dict[str, int]
    newest_at: Optional[int]


class Settlement(BaseModel):
    """A closed settlement of a merchant's period [period_start, period_end)."""

    id: int
    merchant_id: int
    merchant_name: str
    period_start: int
    period_end: int
    closed_at: int
    sales: Money
    refunds: Money
    commission: Money
    payout: Money
    records: int
    late_records: int
    discounts: Money            # taken off list prices by the sales
    park_discounts: Money       # the park's part of them, included in the payout

    @classmethod
    def of(cls, s):
        """From a parkcard.store.rows.Settlement."""
        money = {name: Money(cents=getattr(s, name + "_cents"), currency=s.currency)
                 for name in ("sales", "refunds", "commission", "payout", "discounts", "park_discounts")}
        return cls(id=s.id, merchant_id=s.merchant_id, merchant_name=s.merchant_name, period_start=s.period_start,
                   period_end=s.period_end, closed_at=int(s.closed_at), records=s.records,
                   late_records=s.late_records, **money)


class SettlementClose(BaseModel):
    """A period to close, for some merchants or (merchant_ids null) every merchant."""

    merchant_ids: Optional[list[int]] = None
    period_start: int = Field(ge=0, le=2 ** 40, description="UTC epoch seconds, included")
    period_end: int = Field(ge=0, le=2 ** 40, description="UTC epoch seconds, excluded; not in the future")


class SettlementClosed(BaseModel):
    """A settlement and whether this request closed it (False: it was closed already)."""

    newly_closed: bool
    settlement: Settlement


def _epoch(ts):
    """Whole UTC epoch seconds, None as None."""
    return None if ts is None else int(ts)


class CreditNew(BaseModel):
    """Value to land on a card at its next tap on any terminal, paid to the park through this API."""

    amount_cents: int = Field(ge=bounds.CREDIT_CENTS.low, le=bounds.CREDIT_CENTS.high)
    reason: str = Field(min_length=1, max_length=200)


class Credit(BaseModel):
    """A pending credit of a card: granted, sent (a terminal holds it), delivered (on the card) or cancelled."""

    card_no: int
    credit_no: int
    amount: Money
    reason: str
    state: str
    granted_by: str
    granted_at: int
    delivered_terminal: Optional[int]
    delivered_seq: Optional[int]

    @classmethod
    def of(cls, c, currency):
        """From a parkcard.store.rows.PendingCredit."""
        return cls(card_no=c.card_no, credit_no=c.credit_no, amount=Money(cents=c.amount_cents, currency=currency),
                   reason=c.reason, state=c.state, granted_by=c.granted_by, granted_at=int(c.granted_at),
                   delivered_terminal=c.delivered_terminal, delivered_seq=c.delivered_seq)


class CardUse(BaseModel):
    """Where and when a card was used: one of its records."""

    time: int = Field(description="UTC epoch seconds, by the terminal's clock")
    terminal_id: int
    terminal_name: Optional[str]
    merchant_id: Optional[int]
    seq: int
    kind: int = Field(description="the record kind (SPEC.md §4.1)")
    amount: Money
    balance_after: Optional[Money]
    status: str

    @classmethod
    def of(cls, u, currency):
        """From a parkcard.store.rows.CardUse."""
        return cls(time=u.time_s, terminal_id=u.terminal_id, terminal_name=u.terminal_name,
                   merchant_id=u.merchant_id, seq=u.seq, kind=u.kind,
                   amount=Money(cents=u.amount_cents, currency=currency),
                   balance_after=None if u.balance_after_cents is None else Money(cents=u.balance_after_cents,
                                                                                 currency=currency),
                   status=u.status)


class CreditCancelled(BaseModel):
    """A cancelled credit: its value went back to its source."""

    card_no: int
    credit_no: int
    amount: Money


class TerminalSales(BaseModel):
    """One terminal's applied sales and refunds in a period."""

    terminal_id: int
    terminal_name: str
    merchant_id: int
    merchant_name: str
    sales: Money
    refunds: Money
    records: int


class TopUpDay(BaseModel):
    """Top-ups and issues of one day of the park (days from the epoch in the park's time zone)."""

    day: int
    loaded: Money = Field(description="the value put on cards, bonus included")
    bonus: Money
    records: int


class Liabilities(BaseModel):
    """What the park owes now, from the ledger's balances."""

    cards: Money = Field(description="customer funds on cards, bonus included")
    holds: Money = Field(description="replaced cards' balances held for their late offline debits")
    deposits: Money
    pending_credits: Money
    merchants: Money = Field(description="owed to merchants: their sales less commission, as the ledger holds it")


class Occupancy(BaseModel):
    """Who is inside now, per area (area 0: the gates of the whole park)."""

    total: int
    areas: dict[int, int]


class DeskTopUp(BaseModel):
    """Cash paid at the desk for the card lying on it (its tier's bonus is added)."""

    cash_cents: int = Field(ge=1, le=bounds.CREDIT_CENTS.high)       # at most what a card can hold


class DeskIssue(BaseModel):
    """The stock card on the desk issued with a first load and a deposit."""

    cash_cents: int = Field(ge=0, le=bounds.CREDIT_CENTS.high)
    deposit_cents: int = Field(0, ge=0, le=25500)
    tier: int = Field(0, ge=0, le=15)


class DeskStock(BaseModel):
    """The blank card on the desk, by its UID, made card stock."""

    uid: str = Field(min_length=8, max_length=14, pattern=r"^[0-9a-fA-F]+$", examples=["04a1b2c3d4e5f6"])


class DeskDone(BaseModel):
    """What a desk operation did: its operation id (the Idempotency-Key), the card and its balance after."""

    op_id: str
    card_no: Optional[int]
    uid: str
    amount: Money
    bonus: Money
    balance: Money
    record_seq: Optional[int]

    @classmethod
    def of(cls, done, currency):
        """From parkcard.services.desk's DeskDone (or Stocked)."""
        return cls(op_id=done.op_id, card_no=done.card_no, uid=bytes(done.uid).hex(),
                   amount=Money(cents=done.amount_cents, currency=currency),
                   bonus=Money(cents=done.bonus_cents, currency=currency),
                   balance=Money(cents=done.balance_cents, currency=currency), record_seq=done.record_seq)


class DeskReplace(BaseModel):
    """The lost card the stock card on the desk replaces (it must be reported lost first)."""

    lost_card_no: int = Field(ge=bounds.CARD_NO.low, le=bounds.CARD_NO.high)


class DeskReplaced(DeskDone):
    """A replacement done: the new card with the lost card's balance less the hold, and when the hold is released."""

    lost_card_no: int
    hold: Money = Field(description="kept for the lost card's late offline debits; what is left lands on the new "
                                    "card as a pending credit")
    release_at: int = Field(description="UTC epoch seconds: the hold is released by then at the latest")


class LossNew(BaseModel):
    """Why a card is reported lost (挂失): it is blacklisted at once."""

    reason: str = Field("lost", min_length=1, max_length=200, examples=["stolen"])


class FoundNew(BaseModel):
    """Why a lost card is un-reported (解挂): it serves again."""

    reason: str = Field("found by its holder", min_length=1, max_length=200)


class CardLoss(BaseModel):
    """A card reported lost: its state (lost, found, replaced), why and when, and the blacklist version it took."""

    card_no: int
    state: str = Field(examples=["lost"], description="lost, found or replaced")
    reason: str
    reported_by: str
    reported_at: int
    blacklist_version: int

    @classmethod
    def of(cls, loss):
        """From a parkcard.store.rows.CardLoss."""
        return cls(card_no=loss.card_no, state=loss.state, reason=loss.reason, reported_by=loss.reported_by,
                   reported_at=int(loss.reported_at), blacklist_version=loss.blacklist_version)


class CardOnDesk(BaseModel):
    """The card lying on a desk terminal: blank, stock, or a park card with what it holds."""

    uid: str
    kind: str = Field(examples=["park_card"], description="blank, stock or park_card")
    card_no: Optional[int]
    cash: Optional[Money]
    deposit: Optional[Money]
    tier: Optional[int]
    status: Optional[str] = Field(description="as the hub knows the card; null when it does not")

    @classmethod
    def of(cls, card, currency):
        """From parkcard.services.desk.query.OnDesk."""
        money = (lambda cents: None if cents is None else Money(cents=cents, currency=currency))
        return cls(uid=card.uid.hex(), kind=card.kind, card_no=card.card_no, cash=money(card.cash_cents),
                   deposit=money(card.deposit_cents), tier=card.tier, status=card.status)


class WebhookNew(BaseModel):
    """A receiver for the park's events, the types it wants, and optionally the secret that signs them."""

    url: str = Field(min_length=1, max_length=500, examples=["https://tickets.example.com/parkcard"])
    events: list[str] = Field(min_length=1, max_length=3, examples=[["sale", "top_up"]])
    secret: Optional[str] = Field(None, min_length=16, max_length=200)


class WebhookAdded(BaseModel):
    """A webhook registered: its id and its signing secret (shown once)."""

    id: int
    secret: str


class Webhook(BaseModel):
    """An active webhook (never its secret) and its deliveries by state."""

    id: int
    url: str
    events: list[str]
    created_by: str
    created_at: int
    delivered: int
    due: int
    given_up: int


class Tier(BaseModel):
    """A member tier: its card code, its recharge bonus, and the discounts of the rules in force for it."""

    code: int
    name: str
    bonus_bps: int = Field(description="bonus in basis points of the cash a top-up pays")
    bonus_steps: list[list[int]] = Field(description="fixed bonuses: [[min cash cents, bonus cents], ...]")
    sale_discount_bp: int = Field(description="discount on every sale, basis points")
    total_discount_bp: int = Field(description="further discount on the total, basis points")
    discount_rules_version: int


class TierDiscountsSet(BaseModel):
    """A tier's discount rates to set, basis points (what is left out keeps its value)."""

    sale_discount_bp: Optional[int] = Field(None, ge=0, le=10000, description="on every sale")
    total_discount_bp: Optional[int] = Field(None, ge=0, le=10000, description="further, on the total")


class TierDiscountsChanged(BaseModel):
    """The discount rules' new version."""

    discount_rules_version: int


class SpendRule(BaseModel):
    """A consumption rule of a terminal category or a merchant (0: no cap; SPEC.md §5.10)."""

    scope: str = Field(examples=["category", "merchant"])
    id: int
    tx_cap: Money
    daily_cap: Money
    card_types: list[str] = Field(examples=[["visitor", "staff"]])
    tiers: list[int] = Field(description="the card tiers that may pay")
    offline_limit: Money
    member_tier: int = Field(description="the lowest tier that buys member-only items")


class SpendRuleSet(BaseModel):
    """A consumption rule to set for a terminal category (0..15) or a merchant: what is left out keeps its value."""

    scope: str = Field(pattern="^(category|merchant)$", examples=["category"])
    id: int = Field(ge=0, le=2 ** 31 - 1)
    tx_cap_cents: Optional[int] = Field(None, ge=0, le=2 ** 31 - 1, description="most one sale may take (0: none)")
    daily_cap_cents: Optional[int] = Field(None, ge=0, le=2 ** 31 - 1, description="most a card spends a day")
    card_types: Optional[list[str]] = Field(None, max_length=4, examples=[["visitor"]])
    tiers: Optional[list[int]] = Field(None, max_length=16, description="the card tiers that may pay")
    offline_cents: Optional[int] = Field(None, ge=0, le=2 ** 31 - 1)
    member_tier: Optional[int] = Field(None, ge=0, le=15)


class SpendRuleChanged(BaseModel):
    """The consumption rules' new version and the rule as it now stands (None: removed)."""

    version: int
    rule: Optional[SpendRule] = None


class SpendRules(BaseModel):
    """The consumption rules in force and their version."""

    version: int
    rules: list[SpendRule]


class StaffMember(BaseModel):
    """A booth's staff member and the staff card that opens their shifts."""

    id: int
    merchant_id: int
    name: str
    card_no: Optional[int]


class ShiftTotals(BaseModel):
    """Sales and reversals of a shift, counted and in money."""

    sales: int
    sales_amount: Money
    reversals: int
    reversals_amount: Money


class StaffShift(BaseModel):
    """A staff shift at a booth: the hub's totals against the terminal's own (None: not closed yet)."""

    terminal_id: int
    open_seq: int
    staff_card_no: int
    staff_name: str
    opened: int
    closed: Optional[int]
    hub: ShiftTotals
    terminal: Optional[ShiftTotals]
    result: str = Field(examples=["equal", "different", "not_closed"])


class SalesGroup(BaseModel):
    """One group of the booth sales report (by merchant, terminal, item, category or day)."""

    key: int
    name: str
    sales: int
    quantity: int
    list_amount: Money
    discount: Money
    paid: Money
    refunds: Money


class TierDiscounts(BaseModel):
    """The discounts booth sales gave one tier's cards, and who bore them."""

    tier: int
    sales: int
    discount: Money
    park_bore: Money
    merchants_bore: Money


class DeskLine(BaseModel):
    """A kind of desk operation posted on a UTC day, per operator or desk."""

    group: str
    kind: str
    count: int
    amount: Money
    bonus: Money
    deposits: Money


class TicketProductReport(BaseModel):
    """A ticket product: sold, revenue, entries made and left."""

    product_id: int
    name: str
    sold: int
    revenue: Money
    entries_made: int
    entries_left: int
    unlimited: int


class GateHour(BaseModel):
    """A gate's passages in one hour of a park day."""

    gate: int
    hour: int = Field(description="UTC epoch seconds of the hour's start")
    entries: int
    exits: int
    refusals: int


class GateDay(BaseModel):
    """A park day's passages by gate and hour and its refusals by reason, from its daily reset to the next."""

    day: int = Field(description="days since 1970-01-01 on the park's calendar")
    start: int
    end: int
    hours: list[GateHour]
    refusals: dict[str, int]
