"""`parkcard blacklist [add|remove]`: blacklisted cards with the taps seen since, and changes to the list."""

import click

from protocol import record as R

from parkcard.bounds import CARD_NO, BoundParam
from parkcard.cli.common import HubNotice, in_store, table, utc
from parkcard.services import blacklist as blacklist_service

ATTEMPTS_SHOWN = 3


@click.group(invoke_without_command=True)
@click.pass_context
def blacklist(ctx):
    """Blacklisted cards with the taps seen since (lock and attempt records); add and remove."""
    if ctx.invoked_subcommand is not None:
        return

    rows = in_store(ctx.obj, lambda s, actor: blacklist_service.entries(s, actor, ATTEMPTS_SHOWN))
    table(("card", "since version", "attempts", "last attempts (time, terminal)", "reason"),
          [(entry.card_no, entry.added_version, seen, ", ".join(
              "%s t%d%s" % (utc(t), tid, " (locked)" if kind == R.KIND_LOCK else "") for t, tid, kind in last),
            entry.reason) for entry, seen, last in rows])


def _change(obj, operation, *args):
    """Run a blacklist service as the person at the keyboard; return (version, whether a running hub heard)."""
    notice = HubNotice(obj.db)
    version = in_store(obj, lambda s, actor: operation(s, actor, *args), notice=notice)
    return version, notice.hub_told


@blacklist.command("add")
@click.argument("card_no", type=BoundParam(CARD_NO))
@click.option("--reason", required=True, help="why (lost, stolen, fraud)")
@click.option("--force", is_flag=True, help="blacklist a card this park never issued (e.g. one found from another "
                                            "system)")
@click.pass_obj
def blacklist_add(obj, card_no, reason, force):
    """Blacklist a card; the running hub pushes it to every online terminal, which locks the card on tap."""
    version, told = _change(obj, blacklist_service.add, card_no, reason, force)
    if version is None:
        click.echo("card %d is already blacklisted: nothing changed" % card_no)
        return
    click.echo("card %d blacklisted (version %d); %s" % (card_no, version, _reach(told)))


def _reach(told):
    """What happens next to a blacklist change, by whether a running hub was told."""
    if told:
        return "the running hub pushes it to every online terminal now (offline ones get it when they reconnect)"
    return "no hub is running: terminals get it when `parkcard up` runs and they connect"


@blacklist.command("remove")
@click.argument("card_no", type=int)     # not range-checked: see parkcard.services.blacklist.remove
@click.option("--reason", default="removed by operator", show_default=True)
@click.pass_obj
def blacklist_remove(obj, card_no, reason):
    """Take a card off the blacklist (a card locked on tap stays locked until the desk unlocks it)."""
    version, told = _change(obj, blacklist_service.remove, card_no, reason)
    if version is None:
        click.echo("card %d is not on the blacklist: nothing changed" % card_no)
        return
    click.echo("card %d taken off the blacklist (version %d); %s" % (card_no, version, _reach(told)))
