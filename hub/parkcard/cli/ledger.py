"""`parkcard ledger check` and `parkcard settle`: the books, re-derived, and merchant settlement."""

import os

import click

from parkcard import audit
from parkcard.cli.common import UserError, in_store, must_exist, run, table, when
from parkcard.money import format_cents
from parkcard.services import settlement


@click.group()
def ledger():
    """Ledger commands."""


@ledger.command("check")
@click.pass_obj
def ledger_check(obj):
    """Re-derive the ledger from the stored records (MACs, postings, card chains); exit 1 on a discrepancy."""
    must_exist(obj.db)
    report = run(audit.check_file(obj.db))
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        raise SystemExit(1)


@click.command()
@click.option("--merchant", "merchant_id", type=int, help="merchant id")
@click.option("--all", "all_merchants", is_flag=True, help="every merchant")
@click.option("--from", "start", required=True, help="period start (epoch seconds or ISO date, UTC), included")
@click.option("--to", "end", required=True, help="period end, excluded; not in the future")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="write the settlements to this CSV file")
@click.option("--force", is_flag=True, help="overwrite the --csv file if it exists")
@click.pass_obj
def settle(obj, merchant_id, all_merchants, start, end, csv_path, force):
    """Close a settlement period (final; the same period again changes nothing) and export it.

    A record is paid once: a period overlapping one already closed is refused, and records
    that reach the hub after their period was closed are paid by the merchant's next close
    (shown as late).
    """
    if (merchant_id is None) == (not all_merchants):
        raise UserError("say which merchant: --merchant ID or --all")
    start_s, end_s = when(start, "--from"), when(end, "--to")
    if end_s <= start_s:
        raise UserError("--to must be after --from")
    if csv_path and not force and os.path.exists(csv_path):
        raise UserError("%s already exists: pass --force to overwrite it, or another --csv; nothing was closed"
                        % csv_path)
    results = in_store(obj, lambda s, actor: settlement.close_period(
        s, actor, None if all_merchants else [merchant_id], start_s, end_s))
    click.echo("period %s to %s" % (settlement.iso_utc(start_s), settlement.iso_utc(end_s)))
    table(("merchant", "name", "sales", "refunds", "commission", "discounts (park's)", "payout", "records", "late",
           "state"),
          [(r.merchant_id, r.merchant_name, format_cents(r.sales_cents, r.currency),
            format_cents(r.refunds_cents, r.currency), format_cents(r.commission_cents, r.currency),
            "%s (%s)" % (format_cents(r.discounts_cents, r.currency), format_cents(r.park_discounts_cents, r.currency)),
            format_cents(r.payout_cents, r.currency), r.records, r.late_records,
            "closed now" if new else "already closed %s" % settlement.iso_utc(r.closed_at))
           for r, new in results])
    if any(r.late_records for r, _ in results):
        click.echo("late: records of an earlier closed period that reached the hub after it closed, paid here")
    if csv_path:
        try:
            settlement.write_csv(csv_path, [r for r, _ in results], force=force)
        except FileExistsError:
            raise UserError("%s appeared meanwhile: the periods are closed; run `settle` again with another --csv "
                            "or --force to export them" % csv_path) from None
        except OSError as exc:
            raise UserError("cannot write %s: %s; the periods are closed, run `settle` again with another "
                            "--csv to export them" % (csv_path, exc.strerror or exc)) from None
        click.echo("wrote %s" % csv_path)
