"""What the store hands out: rows as small typed objects, and the names of stored states.

Rows are `typing.NamedTuple`s: read them by attribute (`terminal.acked_upto`);
they are still tuples, so unpacking works. Every backend returns these same
types. The names of stored states are parkcard.domain.lifecycle's enums; queries
pass them as parameters.
"""

from typing import NamedTuple, Optional

from parkcard.domain.tickets import ProductRule


class Terminal(NamedTuple):
    """A registered terminal: the hub's decisions and its last reported status."""

    id: int
    merchant_id: int
    role: int
    key: bytes
    name: str
    config_version: int
    fixed_price_cents: int
    category: int
    counter_up: int
    counter_down_reserved: int
    acked_upto: int
    authorised: int
    locked: int
    last_seen: Optional[float]
    online: int
    status_boot: Optional[int]
    status_counter: Optional[int]
    firmware: Optional[str]
    status_role: Optional[int]
    status_config_version: Optional[int]
    status_blacklist_version: Optional[int]
    queue_depth: Optional[int]
    oldest_unsynced_age_s: Optional[int]
    free_heap: Optional[int]
    uptime_s: Optional[int]
    last_seq: Optional[int]
    status_at: Optional[float]
    broker_password: Optional[str]
    status_authorised: Optional[int]
    clock_skew_s: Optional[int]         # the last status frame's time minus the hub's as it came
    boot_window_at: Optional[float]     # when the boot window began (domain.fleet_alerts.boot_window)
    boot_window_first: Optional[int]    # the boot counter it began with


class TerminalFlags(NamedTuple):
    """Whether a terminal is authorised and locked, as stored now."""

    authorised: int
    locked: int


class Merchant(NamedTuple):
    """A booth owner."""

    id: int
    park_id: int
    name: str
    commission_bps: int
    discount_bearer: str = "park"   # who bears its booth discounts: 'park' or 'merchant' (SPEC.md §7.5)


class MerchantListing(NamedTuple):
    """A merchant with the ids of its terminals."""

    id: int
    park_id: int
    name: str
    commission_bps: int
    terminal_ids: list


class Card(NamedTuple):
    """A visitor card as the hub knows it."""

    card_no: int
    uid: Optional[bytes]
    tier: int
    status: str
    deposit_cents: int
    shadow_balance_cents: int
    last_counter: Optional[int]


class CardBalance(NamedTuple):
    """A card's shadow balance beside its ledger sum and counter chain (ledger check)."""

    card_no: int
    shadow_balance_cents: int
    ledger_cents: int
    counters_known: int
    first_counter: Optional[int]
    last_counter: Optional[int]
    status: str


class AdminCard(NamedTuple):
    """An admin system card."""

    card_no: int
    uid: bytes
    desk: int
    issued_by: Optional[int]
    issued_at: float
    revoked_at: Optional[float]
    reason: Optional[str]
    state: str


class CardRequest(NamedTuple):
    """How an admin card issue asked for by the CLI ended (all None while it runs)."""

    finished_at: Optional[float]
    card_no: Optional[int]
    error: Optional[str]


class StartedCardRequest(NamedTuple):
    """An admin card issue claimed by the running hub."""

    id: int
    desk_terminal_id: int
    uid: bytes
    desk: bool
    actor: str


class CardWriteRequest(NamedTuple):
    """An admin card issue as stored, whatever its stage."""

    id: int
    desk_terminal_id: int
    started_at: Optional[float]
    cancelled_at: Optional[float]
    finished_at: Optional[float]
    card_no: Optional[int]
    error: Optional[str]


class PendingCommand(NamedTuple):
    """A command decided by an operator, for the running hub to send."""

    id: int
    terminal_id: int
    command: int
    actor: str


class TerminalCommand(NamedTuple):
    """A command decided by an operator, and when the hub sent it (None: not yet)."""

    id: int
    terminal_id: int
    command: int
    actor: str
    sent_at: Optional[float]


class BlacklistChange(NamedTuple):
    """One blacklist version."""

    version: int
    card_no: int
    action: str


class BlacklistEntry(NamedTuple):
    """A card on the blacklist now."""

    card_no: int
    reason: str
    added_version: int


class Attempt(NamedTuple):
    """A tap of a blacklisted card (lock or attempt record)."""

    time_s: int
    terminal_id: int
    kind: int


class Alarm(NamedTuple):
    """An alarm raised for an operator."""

    id: int
    kind: str
    card_no: Optional[int]
    terminal_id: Optional[int]
    seq: Optional[int]
    detail: str
    at: float


class Quarantined(NamedTuple):
    """A frame or record refused by ingest: a bounded prefix of it, its size and digest."""

    id: int
    topic: str
    terminal_id: Optional[int]
    reason: str
    detail: Optional[str]
    at: float
    size: int
    seq: Optional[int]
    raw: bytes
    sha256: Optional[bytes]


class Conflict(NamedTuple):
    """A record whose (terminal, seq) was taken by other bytes."""

    id: int
    terminal_id: int
    seq: int
    raw: bytes
    existing_raw: bytes


class CardUse(NamedTuple):
    """Where and when a card was used: one of its records, with its terminal's name and merchant."""

    time_s: int
    terminal_id: int
    terminal_name: Optional[str]
    merchant_id: Optional[int]
    seq: int
    kind: int
    amount_cents: int
    balance_after_cents: Optional[int]
    status: str


class StoredRecord(NamedTuple):
    """A record as stored (its decoded fields beside the raw bytes)."""

    id: int
    terminal_id: int
    seq: int
    kind: int
    card_no: int
    card_counter: int
    amount_cents: int
    status: str
    posted: bool
    raw: bytes


class Refund(NamedTuple):
    """A booth refund's claim on the sale it reverses."""

    terminal_id: int
    sale_seq: int
    refund_seq: int


class SeqRecord(NamedTuple):
    """A stored record as the ingest rules read it inside a write."""

    id: int
    raw: bytes
    status: str
    card_no: int
    counter: int


class CounterClaim(NamedTuple):
    """Which record a card counter belongs to."""

    terminal_id: int
    seq: int
    delta_cents: int
    balance_after_cents: int


class UncertainRecord(NamedTuple):
    """An unresolved uncertain record of a card."""

    id: int
    terminal_id: int
    seq: int
    raw: bytes
    counter: int


class AuditAnchor(NamedTuple):
    """The head of the operator audit log as the database knows it."""

    seq: int
    hash: str


class SettlementTotals(NamedTuple):
    """What a close of a period takes (or would take)."""

    sales_cents: int
    refunds_cents: int
    commission_cents: int
    payout_cents: int
    records: int
    late_records: int
    discounts_cents: int = 0        # taken off list prices by the sales (SPEC.md §7.3)
    park_discounts_cents: int = 0   # the park's part of them, in the payout (the merchant's discount bearer)


# Its totals are SettlementTotals' fields, in their order.
Settlement = NamedTuple("Settlement", [
    ("id", int), ("merchant_id", int), ("merchant_name", str), ("currency", str), ("period_start", int),
    ("period_end", int), *SettlementTotals.__annotations__.items(), ("closed_at", float)])
Settlement.__doc__ = "A closed settlement of a merchant's period."


class StoreCounts(NamedTuple):
    """How many rows the store holds of each kind (an operator's overview, and tests)."""

    records: int
    ledger_tx: int
    ledger_entries: int
    cards: int
    card_counters: int
    quarantine: int
    conflicts: int
    alarms: int
    blacklist: int
    blacklist_versions: int
    settlements: int
    settlement_records: int
    admin_cards: int
    terminals: int
    merchants: int
    parks: int
    refunds: int
    attempts: int
    terminal_commands: int
    card_write_requests: int


class ApiKey(NamedTuple):
    """A third party's API key: the SHA-256 of its secret (never the secret), its scopes, who made and revoked it."""

    id: int
    name: str
    secret_sha256: bytes
    scopes: str             # space-separated scope names (parkcard.services.privileges.SCOPES)
    created_at: float
    created_by: str
    revoked_at: Optional[float]
    revoked_by: Optional[str]


class Operator(NamedTuple):
    """An operator account: login name, roles, the Argon2id hash of its password, a merchant for a merchant login."""

    id: int
    username: str
    display_name: Optional[str]
    password_hash: str
    roles: str              # space-separated role names (parkcard.services.privileges.ROLES)
    merchant_id: Optional[int]
    active: int             # 0: disabled, may not log in (kept, so the audit log's names stay resolvable)
    created_at: float
    created_by: str
    password_changed_at: float
    last_login_at: Optional[float]


class IdempotentResponse(NamedTuple):
    """The first response to a POST with an Idempotency-Key, and the hash of the request it answered."""

    request_sha256: bytes
    status: int
    body: str               # the JSON body as sent


class SalesDay(NamedTuple):
    """One merchant's applied sales and refunds on one day (days counted from the epoch in the park's zone)."""

    day: int
    merchant_id: int
    merchant_name: str
    sales_cents: int
    refunds_cents: int
    records: int


class TerminalSales(NamedTuple):
    """One terminal's applied sales and refunds in a period."""

    terminal_id: int
    terminal_name: str
    merchant_id: int
    merchant_name: str
    sales_cents: int
    refunds_cents: int
    records: int


class BoothRecord(NamedTuple):
    """An applied booth sale or refund, or a sale line, in a period: what the sales reports add up."""

    terminal_id: int
    terminal_name: str
    merchant_id: int
    merchant_name: str
    kind: int
    seq: int
    status: str
    raw: bytes
    park_discount_cents: int    # what park:discounts paid the merchant for it (SPEC.md §7.5); 0 for a line
    card_tier: Optional[int]    # the hub's tier of the card now (None: a card the hub has no row of)


class TopUpDay(NamedTuple):
    """Top-ups and issues on one day (days from the epoch in the park's zone): value loaded, bonus given, how many."""

    day: int
    loaded_cents: int       # the value put on cards, bonus included
    bonus_cents: int        # the bonus part of it (the park's expense)
    records: int


class Liabilities(NamedTuple):
    """What the park owes now, by kind, from the ledger's balances (positive: owed)."""

    cards_cents: int            # customer funds on cards (bonus included)
    holds_cents: int            # replaced cards' balances held for their late offline debits
    deposits_cents: int         # card deposits held
    pending_credits_cents: int  # credits granted and not yet on a card
    merchants_cents: int        # owed to merchants: their sales less commission, as the ledger holds it


class PriceListVersion(NamedTuple):
    """One version of a merchant's price list: its entries exactly as terminals receive them (SPEC.md §7.1)."""

    merchant_id: int
    version: int
    free_amount: bool       # the merchant allows free amount lines
    entries: bytes          # count x 32 bytes, ascending by item code (protocol/price_list.py)
    created_at: float
    created_by: str


class DiscountRulesVersion(NamedTuple):
    """One version of the park's discount rules or consumption rules (JSON text: parkcard.services.discounts and
    parkcard.services.spend_rules read it)."""

    version: int
    rules: str
    created_at: float
    created_by: str


class PendingCredit(NamedTuple):
    """Value granted to a card that was not present (SPEC.md §8): its number on that card, where it stands."""

    card_no: int
    credit_no: int
    amount_cents: int
    reason: str
    source: str             # the account that funded it (parkcard.domain.ledger.credit_grant)
    granted_by: str
    granted_at: float
    state: str              # granted, sent (some terminal holds it), delivered (on the card), cancelled
    delivered_terminal: object
    delivered_seq: object
    bonus_cents: int = 0    # the part of it that lands in the card's bonus purse (a replaced card's bonus, §8.1)
    moved_to_card_no: Optional[int] = None      # a lost card's credit cancelled by its move (SPEC.md §4.13) ...
    moved_to_credit_no: Optional[int] = None    # ... granted again as this credit of the card in use


# A ticket product of the park (SPEC.md §3.8): its id and name, then the rule's fields
# (parkcard.domain.tickets.ProductRule: what a sale writes and how a timed exit is priced).
TicketProduct = NamedTuple("TicketProduct", [("id", int), ("name", str), *ProductRule.__annotations__.items()])


class TicketSaleRequest(NamedTuple):
    """How a ticket sale asked for by the CLI ended: all None while it runs; error None once written."""

    started_at: Optional[float]
    finished_at: Optional[float]
    serial: Optional[int]
    error: Optional[str]


class StartedTicketSale(NamedTuple):
    """A ticket sale asked for by the CLI, claimed by the running hub."""

    id: int
    desk_terminal_id: int
    product_id: int
    card_no: int
    start_day: Optional[int]
    actor: str
    replace: bool = False       # it may overwrite a ticket still valid on the card
    roles: tuple = ()           # the roles of the operator who asked for it: the hub sells it as that operator


class Ticket(NamedTuple):
    """One ticket sold onto a card; state pending until the desk wrote it, then written or failed."""

    serial: int
    product_id: int
    card_no: int
    uid: bytes
    from_day: int
    to_day: int
    entries: int
    price_cents: int
    state: str
    sold_at: float
    sold_by: str


class TicketUse(NamedTuple):
    """A written ticket and the entries its card made with its product since the sale (the tickets report)."""

    serial: int
    product_id: int
    entries: int        # as sold; protocol.ticket.ENTRIES_UNLIMITED for no limit
    price_cents: int
    entered: int


class GateRow(NamedTuple):
    """A gate terminal's config (SPEC.md §5.8); products: the accepted ticket product ids, ascending."""

    terminal_id: int
    direction: int
    area: int
    reentry: int
    reentry_min: int
    reset_s: int
    products: tuple
    version: int


class StoredPassage(NamedTuple):
    """A passage as the passages table holds it, beside its record's bytes (for the occupancy check)."""

    record_id: int
    terminal_id: int
    raw: bytes
    status: str
    facts: object       # (kind, area, reason, product, time_s) as stored, or None when no row was written


class DeskOperation(NamedTuple):
    """A front-desk operation (parkcard.services.desk): pending from before its card write until posted or failed.

    blocks: the write asked of the desk, block number then 16 bytes, repeated, in write order.
    """

    op_id: str
    kind: str
    request: str            # what the caller asked, canonical JSON: a retry under op_id must ask the same
    desk_terminal_id: int
    actor: str
    state: str              # parkcard.domain.lifecycle.DeskOpState
    card_no: Optional[int]
    uid: Optional[bytes]
    counter_before: Optional[int]
    counter_after: Optional[int]
    blocks: Optional[bytes]
    amount_cents: int
    bonus_cents: int
    deposit_cents: int
    balance_after_cents: int
    tier: int
    record_seq: Optional[int]
    error: Optional[str]
    created_at: float
    settled_at: Optional[float]
    fee_cents: int = 0      # a refund's or return's fee kept by the park (SPEC.md §4.12)
    replaces_card_no: Optional[int] = None      # a replacement's lost card (one replacement of it at a time)


class DeskSettings(NamedTuple):
    """The park's desk money settings: the deposit of each card type, the refund rules (SPEC.md §4.12)."""

    deposit_member_cents: int = 0
    deposit_temporary_cents: int = 0
    refund_minimum_cents: int = 0
    refund_fee_bps: int = 0
    refund_fee_fixed_cents: int = 0
    # The park's offline rules (every terminal's T_CONFIG, SPEC.md §5.3; the defaults are protocol.config's) and
    # when a replaced card's hold is released at the latest (0: after the offline window, §4.13).
    offline_window_s: int = 86400
    offline_daily_cap_cents: int = 20000
    hold_release_s: int = 0
    offline_rules_version: int = 0      # moves at each change of the offline rules


class TierRow(NamedTuple):
    """One tier of the park's table as stored: its card code, name, bonus in basis points, steps as JSON."""

    code: int
    name: str
    bonus_bps: int
    steps: str


class DeskRequest(NamedTuple):
    """A desk operation the CLI asked the running hub for (parkcard.services.desk.requests)."""

    op_id: str
    kind: str
    desk_terminal_id: int
    params: str             # the operation's arguments, JSON
    actor: str
    roles: str              # the operator's roles, space-separated: the hub runs it as that operator
    state: str              # queued, started, done (result: what it did) or refused (result: why)
    result: Optional[str]
    created_at: float
    started_at: Optional[float]
    finished_at: Optional[float]


class StaffMember(NamedTuple):
    """A staff member of a merchant and the staff card that opens their shifts at its booths (SPEC.md §4.14)."""

    id: int
    merchant_id: int
    name: str
    card_no: Optional[int]
    created_at: float
    created_by: str


class ShiftRecord(NamedTuple):
    """A booth's applied sale, reversal or shift record as the staff reports read it (parkcard.domain.staff_shifts)."""

    terminal_id: int
    seq: int
    kind: int
    time_s: int
    amount_cents: int
    raw: bytes


class Shift(NamedTuple):
    """A cashier's shift at one desk (parkcard.services.shifts): open until closed with its Z report."""

    shift_no: int
    desk_terminal_id: int
    opened_by: str
    float_cents: int            # the cash counted into the drawer at the open
    opened_at: float
    closed_at: Optional[float]
    closed_by: Optional[str]


class ShiftOperation(NamedTuple):
    """A desk operation of a shift, with its payment method, as the Z report counts it."""

    op_id: str
    method: str
    kind: str
    state: str                  # parkcard.domain.lifecycle.DeskOpState
    amount_cents: int
    bonus_cents: int
    deposit_cents: int
    fee_cents: int              # a refund's or return's fee kept by the park


class StoredZReport(NamedTuple):
    """A closed shift's Z report as stored, immutable: report is its figures as JSON."""

    z_no: int
    shift_no: int
    report: str
    over_short_tx: Optional[int]
    closed_at: float


class DeskDayLine(NamedTuple):
    """One row of the desk report: a kind of posted desk operation of one group (operator or desk) on one day."""

    group: str
    kind: str
    count: int
    amount_cents: int
    bonus_cents: int
    deposit_cents: int


class Member(NamedTuple):
    """A park member (parkcard.services.members): as little personal data as the desk needs to find them."""

    member_no: int
    name: str
    phone: str
    note: str
    tier: int               # the tier code the member's cards are issued with (protocol.card TIER_*)
    created_at: float


class CardLoss(NamedTuple):
    """A card reported lost (挂失): blacklisted under blacklist_version; found (解挂) or replaced (补卡) later."""

    card_no: int
    state: str              # lost, found, replaced
    reason: str
    reported_by: str
    reported_at: float
    blacklist_version: int
    found_at: Optional[float]


class Replacement(NamedTuple):
    """A lost card replaced (SPEC.md §4.13): the balance moved, its hold, late debits settled, the release."""

    old_card_no: int
    new_card_no: int
    op_id: str
    reported_s: int
    balance_cents: int          # the old card's ledger balance when the new card's write was posted
    moved_cents: int            # written onto the new card
    hold_cents: int             # kept for the old card's late offline debits
    loss_at_move_cents: int     # the old card held less than moved (late debits during the write): the park's loss
    release_at_s: int           # the latest release, whatever terminals still lag
    covered_cents: int
    loss_cents: int
    released_cents: int
    released: int
    released_at: Optional[float]
    release_credit_no: Optional[int]    # the new card's pending credit that carries the release (SPEC.md §8)
    move_tx: int
    created_at: float


class SessionLimits(NamedTuple):
    """How long an operator's web session lasts: idle_s without a request, max_s after its login at the latest."""

    idle_s: int = 8 * 3600
    max_s: int = 8 * 3600


class WebSession(NamedTuple):
    """An operator's web session as kept across restarts (the token's SHA-256, never the token)."""

    token_sha256: bytes
    username: str
    csrf: str
    locale: str
    created_at: float
    expires_at: float


class Webhook(NamedTuple):
    """A third party's webhook: where the events go, which ones, the secret that signs them."""

    id: int
    url: str
    events: str             # space-separated event types (parkcard.services.webhooks.EVENTS)
    secret: str
    created_by: str
    created_at: float
    removed_at: Optional[float]
    record_cursor: int      # the last record id looked at for this webhook
    alarm_cursor: int       # the last alarm id looked at
    late_cursor: int = 0    # the last webhook_late_records id looked at (records applied after they were stored)


class WebhookDelivery(NamedTuple):
    """One event of the outbox, due to (or delivered to) one webhook."""

    id: int
    webhook_id: int
    event: str
    event_key: str          # what the event is about, unique per webhook: "record:<id>", "alarm:<id>"
    body: str               # the JSON sent, byte for byte what is signed
    created_at: float
    attempts: int
    next_at: float
    state: str              # due, delivered, given_up
    delivered_at: Optional[float]
    last_error: Optional[str]
