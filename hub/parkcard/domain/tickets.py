"""Ticket products, the ticket a sale writes, gate configs and occupancy: pure rules, no I/O (SPEC.md §3.8-3.11).

A product is park configuration; a sale turns it into the card's ticket info
and first state (protocol.ticket); a gate's row becomes its GateConfig; the
occupancy of an area is the applied entries minus exits since its last daily
reset, counted from passage records (never kept as a running number a lost
update could skew: a count that can go wrong is a safety issue).
"""

from typing import NamedTuple

from protocol import card, ticket as t
from protocol import record as R

TYPE_NAMES = {t.TYPE_DAY: "day", t.TYPE_MULTI_DAY: "multi-day", t.TYPE_COUNT: "count", t.TYPE_PERIOD: "period",
              t.TYPE_TIMED: "timed"}
TYPES_BY_NAME = {name: code for code, name in TYPE_NAMES.items()}
DIRECTION_NAMES = {t.DIRECTION_ENTRY: "entry", t.DIRECTION_EXIT: "exit", t.DIRECTION_BOTH: "both"}
REENTRY_NAMES = {t.REENTRY_AFTER_EXIT: "after-exit", t.REENTRY_AFTER_MINUTES: "after-minutes",
                 t.REENTRY_NEVER: "never"}
VALID_DAYS_MAX = 3660          # ten years: a period card's longest validity
ENTRIES_MAX = t.ENTRIES_UNLIMITED - 1
ENTRY_KINDS = (R.KIND_ENTRY,)
EXIT_KINDS = (R.KIND_EXIT, R.KIND_TIMED_EXIT)


class ProductRule(NamedTuple):
    """What a ticket product is, as the rules see it (parkcard.store.rows.TicketProduct has these fields too)."""

    type: int
    area: int
    valid_days: int
    entries: int
    day_limit: int
    included_min: int
    interval_min: int
    interval_price_cents: int
    price_cents: int


def product_problem(p):
    """Why a product cannot be sold as given (a sentence for the operator), or None."""
    if p.type not in TYPE_NAMES:
        return "unknown ticket type %r (one of %s)" % (p.type, ", ".join(TYPES_BY_NAME))
    if not 0 <= p.area <= 255:
        return "an area is 0 (the whole park) to 255"
    if p.type in (t.TYPE_DAY, t.TYPE_MULTI_DAY, t.TYPE_PERIOD) and not 1 <= p.valid_days <= VALID_DAYS_MAX:
        return "a %s ticket is valid for 1 to %d days" % (TYPE_NAMES[p.type], VALID_DAYS_MAX)
    if not 0 <= p.valid_days <= VALID_DAYS_MAX:
        return "validity is 0 (no date limit) to %d days" % VALID_DAYS_MAX
    if p.type == t.TYPE_COUNT and not 1 <= p.entries <= ENTRIES_MAX:
        return "a count card holds 1 to %d entries" % ENTRIES_MAX
    if not 0 <= p.entries <= ENTRIES_MAX:
        return "entries are 0 (unlimited) to %d" % ENTRIES_MAX
    if not 0 <= p.day_limit <= 255:
        return "a per-day limit is 0 (none) to 255 entries"
    if p.type == t.TYPE_TIMED and p.interval_price_cents <= 0:
        return "a timed ticket needs a price per started interval"
    if p.type != t.TYPE_TIMED and (p.included_min or p.interval_min or p.interval_price_cents):
        return "only a timed ticket has included minutes and an interval price"
    if not (0 <= p.included_min <= 0xFFFF and 0 <= p.interval_min <= 0xFFFF):
        return "minutes are 0 to 65535"
    if not (0 <= p.interval_price_cents <= card.BALANCE_MAX_CENTS and 0 <= p.price_cents <= card.BALANCE_MAX_CENTS):
        return "a price is 0 to %d cents (a card's balance maximum)" % card.BALANCE_MAX_CENTS
    return None


def ticket_days(p, start_day):
    """(from_day, to_day) on the card for a sale of product p starting on park day start_day; (0, 0): no limit."""
    if p.valid_days == 0:
        return 0, 0
    return start_day, start_day + p.valid_days - 1


def ticket_over(to_day, entries, entered, today):
    """Why a written ticket can no longer pass a gate ("expired", "used up"), or None while it still can.

    entries: as sold (t.ENTRIES_UNLIMITED for no limit); entered: the entries its card made since the sale."""
    if to_day and today > to_day:
        return "expired"
    if entries != t.ENTRIES_UNLIMITED and entered >= entries:
        return "used up"
    return None


def ticket_entries(p):
    """entries_left of a fresh ticket: the product's entries, or unlimited."""
    return p.entries if p.entries else t.ENTRIES_UNLIMITED


def ticket_info(product_id, p, serial, start_day):
    """The card's TicketInfo (block 12) for a sale."""
    from_day, to_day = ticket_days(p, start_day)
    return t.TicketInfo(product_id, p.type, p.area, from_day, to_day, p.day_limit, serial)


def gate_config(version, direction, area, reentry, reentry_min, reset_s, products, zone=(0, 0, 0)):
    """The GateConfig a gate's T_CONFIG tail carries; products: [(product id, ProductRule)] it accepts; zone:
    (utc_offset_s, next_change_s, next_offset_s) of the park (parkcard.domain.park_time.zone_fields)."""
    return t.GateConfig(version, direction, area, reentry, reentry_min, reset_s,
                        [t.GateProduct(pid, p.included_min, p.interval_min, p.interval_price_cents)
                         for pid, p in sorted(products)], *zone)


def gate_tail(gate, products, zone=(0, 0, 0)):
    """(version, T_CONFIG tail bytes) of a gate's GateRow; products: {id: ProductRule} of the park; zone as
    gate_config's.

    The version is the gate config's moved on by the zone's fields, so that a gate whose park changed its
    offset (or its zone) is sent the config again at its next sync (SPEC.md §5.8). A product no longer known
    is left out: the gate then refuses its tickets (`not_here`)."""
    version = (gate.version + zone_version(zone)) & 0xFFFF
    return version, gate_config(version, gate.direction, gate.area, gate.reentry, gate.reentry_min, gate.reset_s,
                                [(pid, products[pid]) for pid in gate.products if pid in products], zone).encode()


def zone_version(zone):
    """A number that changes with the zone fields a gate holds (0 for UTC): folded into its config version."""
    offset_s, change_s, next_offset_s = zone
    return ((offset_s // 60) * 7 + (change_s // 60) * 13 + (next_offset_s // 60) * 3) & 0xFFFF


def config_version(terminal_version, gate_version):
    """The T_CONFIG version a terminal is sent: its config version moved on by its tail's (a gate's config, §5.8,
    or the consumption rules of a pos or ride terminal, §5.10)."""
    return (terminal_version + gate_version) & 0xFFFF


class TicketReportLine(NamedTuple):
    """One product in the tickets report: tickets sold (written), their price, entries made and left."""

    product_id: int
    name: str
    sold: int
    revenue_cents: int
    entered: int
    entries_left: int       # of the tickets sold with a number of entries (count cards); unlimited ones add none
    unlimited: int          # tickets sold with no entry limit


def ticket_report(products, uses):
    """[TicketReportLine] by product from [TicketProduct] and [TicketUse] (a ticket's entries past its number,
    which a gate never lets happen, count as none left, never as a negative)."""
    lines = {p.id: [p.name, 0, 0, 0, 0, 0] for p in products}
    for u in uses:
        line = lines.setdefault(u.product_id, ["product %d" % u.product_id, 0, 0, 0, 0, 0])
        line[1] += 1
        line[2] += u.price_cents
        line[3] += u.entered
        if u.entries == t.ENTRIES_UNLIMITED:
            line[5] += 1
        else:
            line[4] += max(0, u.entries - u.entered)
    return [TicketReportLine(pid, *line) for pid, line in sorted(lines.items())]


def occupancy(counts):
    """{area: entries − exits} from [(area, kind, n)] passage counts since each area's reset."""
    inside = {}
    for area, kind, n in counts:
        if kind in ENTRY_KINDS:
            inside[area] = inside.get(area, 0) + n
        elif kind in EXIT_KINDS:
            inside[area] = inside.get(area, 0) - n
    return inside


def finishes(finished, exit_rec):
    """True when a finished-exit record (kind 25) shows exit_rec's ticket write on the card (SPEC.md §4.16)."""
    return (exit_rec.kind in EXIT_KINDS and finished.kind == R.KIND_EXIT_FINISHED
            and (exit_rec.card_no, exit_rec.uid, exit_rec.card_counter, exit_rec.card_mac)
            == (finished.card_no, finished.uid, finished.card_counter, finished.card_mac))


WRITE_KINDS = (R.KIND_ENTRY, R.KIND_EXIT, R.KIND_TIMED_EXIT)     # the passages that write the ticket state
_NO_MAC = bytes(card.MAC_SIZE)


def _continues(uncertain, later):
    """True when a ticket write at the next counter follows the uncertain one's entries_left (SPEC.md §4.17)."""
    before, after = R.passage_fields(uncertain)[2], R.passage_fields(later)[2]
    if later.kind == R.KIND_ENTRY and before != t.ENTRIES_UNLIMITED:
        return after == before - 1
    return after == before


def passage_landed(uncertain, later):
    """What a later passage record of the same card says of an uncertain passage's ticket write (SPEC.md §4.17):
    True landed, False not landed, None nothing (another card, or counters that decide nothing)."""
    if uncertain.kind not in WRITE_KINDS or later.kind not in R.PASSAGE_KINDS or (
            later.card_no, later.uid) != (uncertain.card_no, uncertain.uid):
        return None
    k = uncertain.card_counter
    if later.kind in WRITE_KINDS:
        if later.card_counter == k:     # another write of this counter, or this very state read back
            return later.card_mac == uncertain.card_mac
        in_force = (later.card_counter - 1) % card.COUNTER_MODULUS
    else:       # a refusal or a finished exit names the slot in force, with its MAC (zeros: refusals before §4.17)
        in_force = later.card_counter
        if in_force == k and later.card_mac != _NO_MAC:
            return later.card_mac == uncertain.card_mac
    if in_force == k:
        return True if _continues(uncertain, later) else None
    if in_force == (k - 1) % card.COUNTER_MODULUS and later.kind not in WRITE_KINDS and later.time_s > uncertain.time_s:
        return False    # read after it, the card still held the state before it
    return None


def evidence_counters(uncertain):
    """The ticket counters of records that can settle an uncertain passage (passage_landed), its own first: a
    record of it shows the slot itself."""
    k = uncertain.card_counter
    return k, (k + 1) % card.COUNTER_MODULUS, (k - 1) % card.COUNTER_MODULUS


def passage_facts(rec):
    """(kind, area, reason, product, time) of a passage record: what the passages table must hold for it."""
    reason, area, _left = R.passage_fields(rec)
    return rec.kind, area, reason, rec.item, rec.time_s
