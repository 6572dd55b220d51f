"""Merchant settlement per period [start, end) of record time (UTC epoch seconds).

sales = DEBIT amounts (what the cards paid), refunds = REFUND amounts,
commission = what the park kept (park:commission entries, refunds give theirs
back), discounts = what the sales took off list prices (the records' discount),
park_discounts = the part of them the park paid the merchant from
park:discounts (booked as each record was applied, by the merchant's discount
bearer then, refunds taking their share back: SPEC.md §7.5), merchant_discounts
= discounts - park_discounts, the part the merchant bore, payout = what the
merchant's account gained (sales - refunds - commission + park_discounts): a
merchant is paid its sales at list price - commission - the discounts it bears.

A record is paid by at most one settlement, ever: the database keeps which
settlement took each record (settlement_records, the record as primary key),
written in the same transaction as the settlement. Closing is final:

- the very same (merchant, start, end) again returns the stored row and writes
  nothing;
- a period that overlaps another closed period of the merchant is refused,
  naming that period (close the part that is not closed yet instead);
- a period that ends in the future is refused: it would close records that
  terminals have not uploaded yet;
- a record that arrives late, after the period holding its time was closed,
  is taken by the merchant's next close (whatever its period) and counted
  there as late: paid once, never lost.
"""

import csv
import datetime
import io
import time

from parkcard.money import major_units
from parkcard.security.files import write_export
from parkcard.services.privileges import SETTLEMENT, SETTLEMENT_READ, ServiceError, requires
from parkcard.store import PeriodOverlap


class SettlementError(ServiceError):
    """A settlement request that cannot be done; code: the stable name of why (parkcard.services.errors)."""

    def __init__(self, message, code="invalid_period", **values):
        """message and values: as ServiceError's; code: the stable name of why."""
        super().__init__(message, **values)
        self.code = code


def iso_utc(ts):
    """Epoch seconds as ISO-8601 UTC, e.g. 2026-07-01T00:00:00Z."""
    return datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def preview(storage, merchant_id, start_s, end_s):
    """Return what closing the period would take now, as a dict of totals, without closing it."""
    if end_s <= start_s:
        raise SettlementError("the period end must be after its start")
    totals = await storage.unsettled(merchant_id, start_s, end_s)
    return dict(merchant_id=merchant_id, period_start=start_s, period_end=end_s, closed_at=None, **totals._asdict())


async def close(storage, merchant_id, start_s, end_s, now_s=None):
    """Close a merchant's period (or return it as already closed); return (row, newly_closed)."""
    return (await close_all(storage, [merchant_id], start_s, end_s, now_s))[0]


async def close_all(storage, merchant_ids, start_s, end_s, now_s=None, actor=None):
    """Close the period for every merchant given, all or none; return [(row, newly_closed)].

    With actor, each new close is in the audit log, appended in the closing transaction.
    """
    if end_s <= start_s:
        raise SettlementError("the period end must be after its start")
    now_s = time.time() if now_s is None else now_s
    if end_s > now_s:
        existing = [await storage.settlement(m, start_s, end_s) for m in merchant_ids]
        if None in existing:    # only what is already closed may be asked for again
            raise SettlementError("the period ends %(end)s, in the future (now %(now)s): records of it may not be "
                                  "uploaded yet; close it once it is over", "period_in_future", end=iso_utc(end_s),
                                  now=iso_utc(now_s))
    try:
        return await storage.close_settlements(merchant_ids, start_s, end_s, audit=actor and (
            lambda closes: [(actor, "settlement.close", details) for details in closes]))
    except PeriodOverlap as exc:
        hint = ("--from %s" % iso_utc(exc.period_end) if exc.period_start <= start_s
                else "--to %s" % iso_utc(exc.period_start))
        raise SettlementError("merchant %(merchant)d (%(name)s): %(start)s to %(end)s overlaps its closed period "
                              "%(closed_start)s to %(closed_end)s; a record is paid once, so close only time not "
                              "closed yet (e.g. %(hint)s); nothing was closed", "period_overlaps",
                              merchant=exc.merchant_id, name=exc.merchant_name, start=iso_utc(start_s),
                              end=iso_utc(end_s), closed_start=iso_utc(exc.period_start),
                              closed_end=iso_utc(exc.period_end), hint=hint) from None


@requires(SETTLEMENT)
async def close_period(store, actor, merchant_ids, start_s, end_s, now_s=None):
    """Close [start_s, end_s) for the merchants given (None: every merchant), audited; return [(row, new)]."""
    known = [m[0] for m in await store.merchants()]
    for merchant_id in merchant_ids or ():
        if merchant_id not in known:
            raise SettlementError("merchant %(merchant)d does not exist (see `parkcard merchant add`)",
                                  "merchant_not_found", merchant=merchant_id)
    return await close_all(store, known if merchant_ids is None else merchant_ids, start_s, end_s, now_s,
                           actor=actor.name)


@requires(SETTLEMENT_READ)
async def listing(store, actor):
    """Every closed settlement ([Settlement]) the actor may read, by id: a merchant login's own only."""
    rows = await store.settlements()
    return rows if actor.merchant_id is None else [r for r in rows if r.merchant_id == actor.merchant_id]


@requires(SETTLEMENT_READ)
async def one(store, actor, settlement_id):
    """One closed settlement; SettlementError(settlement_not_found) when there is none with this id (or it is
    another merchant's and the actor a merchant login)."""
    for row in await listing(store, actor):
        if row.id == settlement_id:
            return row
    raise SettlementError("there is no settlement %(settlement)d (see `parkcard settle`)", "settlement_not_found",
                          settlement=settlement_id)


CSV_COLUMNS = ("settlement", "merchant_id", "merchant", "period_start", "period_end", "closed_at", "currency",
               "sales", "refunds", "commission", "payout", "sales_cents", "refunds_cents", "commission_cents",
               "payout_cents", "records", "late_records", "discounts", "park_discounts", "discounts_cents",
               "park_discounts_cents", "merchant_discounts", "merchant_discounts_cents")
_AMOUNTS = ("sales", "refunds", "commission", "payout", "discounts", "park_discounts")


def csv_text(rows):
    """Settlement rows (parkcard.store.rows.Settlement) as CSV text, one line per row (README: Settlement)."""
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for r in rows:
        line = dict(settlement=r.id, merchant_id=r.merchant_id, merchant=r.merchant_name,
                    period_start=iso_utc(r.period_start), period_end=iso_utc(r.period_end),
                    closed_at=iso_utc(r.closed_at), currency=r.currency, records=r.records,
                    late_records=r.late_records)
        for name in _AMOUNTS:
            line[name] = major_units(getattr(r, name + "_cents"), r.currency)
            line[name + "_cents"] = getattr(r, name + "_cents")
        borne = r.discounts_cents - r.park_discounts_cents
        line.update(merchant_discounts=major_units(borne, r.currency), merchant_discounts_cents=borne)
        writer.writerow(line)
    return out.getvalue()


def write_csv(path, rows, force=False):
    """Write settlement rows as CSV (csv_text); FileExistsError if the file exists, unless force."""
    write_export(path, csv_text(rows).encode(), force)
