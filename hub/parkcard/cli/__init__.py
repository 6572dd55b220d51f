"""`parkcard` command line, one module per command group; every change goes through parkcard.services.

User mistakes get one clear line saying what went wrong and what to do, and
exit status 2; `ledger check` exits 1 when it finds a discrepancy, and `up`
exits 1 when the hub stopped because it could not serve (a supervisor restarts it).

The CLI works on the database, not on a running hub. A service tells the
running hub what it committed (parkcard.transport.notify: one datagram, best
effort, sent by the CLI's Actor), and the hub acts at once: it pushes new
blacklist versions to every online terminal, loads new terminals and merchant
rates, sends queued lock and de-authorise commands and starts queued admin
card issues. Its registry poll (parkcard.app.REGISTRY_POLL_S) picks up a
change whose notice was lost. Admin card revocations and terminal locks are
read from the database at every T_AUTH.
"""

import os

import click

from parkcard.cli import (admin_card, apikey, blacklist, card, credit, discount, fleet, gate, hub, item, ledger,
                          member, merchant, operator, park, report, rule, shift, staff, terminal, ticket, tier,
                          webhook)
from parkcard.cli.common import Settings, UserError
from parkcard.cli.optional import CommandsGroup


@click.group(cls=CommandsGroup)
@click.option("--db", default=os.path.join("var", "parkcard.db"), show_default=True,
              help="hub database: a SQLite file, or postgresql://user@host:port/database")
@click.option("--park-dir", type=click.Path(file_okay=False), default=None,
              help="where `parkcard init` keeps the park's secrets and PKI [default: the database's folder]")
@click.option("--operator", "operator_login", envvar="PARKCARD_OPERATOR", default=None,
              help="run as this operator (password from $PARKCARD_PASSWORD or asked) [default: the hub's local "
                   "admin]")
@click.pass_context
def main(ctx, db, park_dir, operator_login):
    """ParkCard hub: terminals, ledger, settlement."""
    if os.path.isdir(db):
        # Checked once here: every command would otherwise fail its own way (and init would write
        # the park's secrets into the folder above it).
        raise UserError("--db %s is a folder: give the database file, e.g. --db %s"
                        % (db, os.path.join(db, "parkcard.db")))
    ctx.obj = Settings(db, park_dir, operator_login)


def _register():
    """Every command group of the hub (`demo` and any other registered ones come from parkcard.cli.optional)."""
    from parkcard.oplog import audit_command
    for command in (park.init, fleet.terminals, ledger.ledger, ledger.settle, park.park, merchant.merchant,
                    terminal.terminal, admin_card.admin_card_group, card.card_group, blacklist.blacklist, fleet.alarms,
                    fleet.quarantine, hub.up, apikey.apikey, operator.operator, item.item, discount.discount,
                    credit.credit, ticket.ticket, gate.gate, gate.occupancy, staff.staff_group, shift.shift_group,
                    report.report, tier.tier_group, member.member_group, webhook.webhook, rule.rule, audit_command()):
        main.add_command(command)


_register()
