"""Who is inside: per-area occupancy, passages per gate and hour, refusals by reason, the nightly reset, and
the check that the passages counted are the passage records' own bytes.

Occupancy is derived, never kept as a running number: entries − exits among
the applied passage records after each area's last reset (SPEC.md §4.9).
"""

from dataclasses import dataclass

from protocol import record as R, ticket as t

from parkcard.domain import park_time, tickets as rules
from parkcard.domain.lifecycle import RecordStatus
from parkcard.services import park
from parkcard.services.errors import Refusal
from parkcard.services.privileges import GATES, OCCUPANCY, requires
from parkcard.store import audited


@dataclass(frozen=True)
class Occupancy:
    """Inside per area ({area: n}; area 0 is gates of the whole park), the park's total, and each area's reset."""

    areas: dict
    total: int
    resets: dict


@dataclass(frozen=True)
class PassageCheck:
    """The occupancy check: problems found (empty: the passages counted are exactly the applied records')."""

    records: int
    problems: list
    uncertain: int = 0      # ticket writes still uncertain: their card's next passage settles them (SPEC.md §4.17)

    @property
    def ok(self):
        """True when nothing differs."""
        return not self.problems


@requires(OCCUPANCY)
async def occupancy(store, actor):
    """The occupancy now (Occupancy)."""
    areas = rules.occupancy(await store.passage_counts())
    return Occupancy(areas, sum(areas.values()), await store.area_resets())


@requires(OCCUPANCY)
async def passages_per_hour(store, actor, since_s, until_s=None, hour_shift_s=0):
    """[(terminal_id, hour start, entries, exits, refusals)] in [since_s, until_s), by gate and hour."""
    table = {}
    bounds = (since_s,) if until_s is None else (since_s, until_s, hour_shift_s)
    for terminal_id, hour, kind, n in await store.passages_per_hour(*bounds):
        if kind == R.KIND_EXIT_FINISHED:
            continue    # it confirms an exit another record counts (SPEC.md §4.16)
        row = table.setdefault((terminal_id, hour), [0, 0, 0])
        row[0 if kind in rules.ENTRY_KINDS else 1 if kind in rules.EXIT_KINDS else 2] += n
    return [(tid, hour, *row) for (tid, hour), row in sorted(table.items())]


@requires(OCCUPANCY)
async def refusals(store, actor, since_s, until_s=None):
    """[(reason name, n)] of the gate refusals in [since_s, until_s), in the order the gate checks them
    (SPEC.md §3.11)."""
    bounds = (since_s,) if until_s is None else (since_s, until_s)
    return [(t.REASON_NAMES.get(code, "reason %d" % code), n) for code, n in await store.refusals_by_reason(*bounds)]


@dataclass(frozen=True)
class DayReport:
    """A park day's passages per gate and hour and its refusals by reason; start and end of the day (epoch s)."""

    day: int
    start_s: int
    end_s: int
    per_hour: list
    refusals: list


@requires(OCCUPANCY)
async def day_report(store, actor, day):
    """The passages of one park day (days since epoch), bounded by the park's daily reset in its zone; hours
    start on the park's wall clock."""
    tz = await park.zone_of(store)
    start_s, end_s = park_time.day_bounds(tz, await park.daily_reset_s(store), day)
    shift_s = park_time.offset_s(tz, start_s) % 3600
    return DayReport(day, start_s, end_s, await passages_per_hour(store, actor, start_s, end_s, shift_s),
                     await refusals(store, actor, start_s, end_s))


@requires(OCCUPANCY)
async def since_reset(store, actor, now_s):
    """The passages of the park day now_s falls in, from the last nightly reset on (DayReport)."""
    return await day_report(store, actor, await park.today(store, now_s))


@requires(GATES)
async def reset(store, actor, areas, at_s):
    """The nightly reset (pretix's exit_all_at): the areas' occupancy counts again from at_s; return how many."""
    areas = sorted(set(int(a) for a in areas))
    if not areas or not all(0 <= a <= 255 for a in areas):
        raise Refusal("area", "name the areas to reset, 0 (the whole park) to 255")
    return await store.reset_areas(areas, int(at_s), actor.name, audit=audited(
        actor.name, "occupancy.reset", areas=areas, at_s=int(at_s)))


@requires(GATES)
async def reset_due(store, actor, now_s):
    """The scheduled nightly reset: every area whose park day began since its last reset counts again from that
    day's reset instant (each area's gates' daily reset in the park's zone); return {area: reset instant}.

    Each reset is recorded (area_resets and the audit log, one transaction per instant), so a second call, or a
    hub restarted after the reset, finds nothing left to do."""
    area_resets_s = {}
    for g in await store.gates():
        area_resets_s[g.area] = min(g.reset_s, area_resets_s.get(g.area, g.reset_s))
    due = park_time.due_resets(area_resets_s, await store.area_resets(), await park.zone_of(store), int(now_s))
    by_instant = {}
    for area, at_s in due.items():
        by_instant.setdefault(at_s, []).append(area)
    for at_s, areas in sorted(by_instant.items()):
        await store.reset_areas(areas, at_s, actor.name, audit=audited(
            actor.name, "occupancy.reset", areas=areas, at_s=at_s, scheduled=True))
    return due


@requires(OCCUPANCY)
async def check(store, actor):
    """Re-decode every stored passage record and compare with the passages occupancy counts (PassageCheck)."""
    problems = []
    stored = await store.stored_passages()
    for p in stored:
        rec = R.Record.decode(p.raw)
        if p.status == RecordStatus.APPLIED and p.facts != rules.passage_facts(rec):
            problems.append("record %d (term-%d seq %d): counted as %s, its bytes say %s" % (
                p.record_id, p.terminal_id, rec.seq, p.facts, rules.passage_facts(rec)))
        elif p.status != RecordStatus.APPLIED and p.facts is not None:
            problems.append("record %d (term-%d seq %d) is %s, yet counted" % (p.record_id, p.terminal_id, rec.seq,
                                                                            p.status))
    problems += await _unpaid_charges(store, stored)
    uncertain = sum(1 for p in stored if p.status == RecordStatus.UNCERTAIN
                    and R.Record.decode(p.raw).kind in rules.WRITE_KINDS)
    return PassageCheck(len(stored), problems, uncertain)


async def _unpaid_charges(store, stored):
    """A sentence for each applied timed exit whose charge no applied debit booked: not its own debit (the record
    after it, or before it as gates wrote them before SPEC.md §3.13), nor one a finished-exit record names (§4.16)."""
    applied = [(p.terminal_id, R.Record.decode(p.raw)) for p in stored if p.status == RecordStatus.APPLIED]
    finished = [(tid, rec) for tid, rec in applied if rec.kind == R.KIND_EXIT_FINISHED and rec.amount_cents]
    problems = []
    used = set()        # a debit pays one exit
    for terminal_id, rec in sorted(applied, key=lambda a: (a[0], a[1].seq)):
        if rec.kind != R.KIND_TIMED_EXIT or not rec.amount_cents:
            continue
        # A gate takes the charge in the tap of the exit (or of the finished exit): the same card and time.
        payers = [(terminal_id, rec.seq + 1, rec.time_s), (terminal_id, rec.seq - 1, rec.time_s)] + [
            (tid, f.seq - 1, f.time_s) for tid, f in finished if rules.finishes(f, rec)]
        for tid, seq, time_s in payers:
            found = await store.records_between(tid, seq, seq) if seq > 0 and (tid, seq) not in used else []
            debit = R.Record.decode(found[0].raw) if found and found[0].status == RecordStatus.APPLIED else None
            if debit is not None and (debit.kind, debit.card_no, debit.time_s) == (R.KIND_DEBIT, rec.card_no, time_s):
                used.add((tid, seq))
                break
        else:
            problems.append("term-%d seq %d: the timed exit of card %d owes %d cents that no debit booked (other "
                            "wallet writes came before any gate could collect it, SPEC.md §3.13): collect it at the "
                            "desk" % (terminal_id, rec.seq, rec.card_no, rec.amount_cents))
    return problems
