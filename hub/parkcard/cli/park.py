"""`parkcard init` (the park's secrets and PKI) and `parkcard park set|deposit|refund-rules|sessions` (its
settings)."""

from pathlib import Path

import click

from parkcard.cli.common import UserError, amount_cents, in_park_currency, in_store, park_dir
from parkcard.money import format_cents
from parkcard.security import secure
from parkcard.security.pki import PKIError
from parkcard.services import park as park_service
from parkcard.services import shifts


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="folder of the park's secrets and PKI [default: --park-dir, else the database's folder]")
@click.option("--hostname", "hostnames", multiple=True,
              help="extra DNS name or IP address terminals use to reach the broker (repeatable)")
@click.pass_obj
def init(obj, directory, hostnames):
    """Create the park's PKI, card master keys, transport key and hub broker password (only what is missing)."""
    directory = Path(directory) if directory else park_dir(obj)
    try:
        park, created = secure.init_park(directory, ("localhost", *hostnames))
    except (secure.SecureParkError, PKIError, OSError) as exc:
        raise UserError("cannot initialise the park in %s: %s" % (directory, exc)) from None
    if not created:
        click.echo("park already initialised in %s: nothing changed" % directory)
        return
    for name in created:
        click.echo("created %s" % (directory / name))
    click.echo("park secrets (card master keys, transport key, hub broker password) in %s, mode 0600: "
               "back it up with the database, keep it off terminals" % park.path)
    audited_or_said(obj, lambda s, actor: park_service.initialised(s, actor, created))


def audited_or_said(obj, fn):
    """Record a change already made outside the database (files written) in the audit log, or say it was not."""
    try:
        in_store(obj, fn, create=True)
    except OSError as exc:
        raise UserError("done, but the audit log could not be written: %s" % exc) from None


@click.group()
def park():
    """Park settings."""


@park.command("set")
@click.option("--park", "park_id", type=int, default=1, show_default=True)
@click.option("--currency", required=True, help="ISO 4217 code of the park's money, e.g. CNY, EUR, HKD")
@click.pass_obj
def park_set(obj, park_id, currency):
    """Set the park's currency (before it takes money: amounts are stored without one)."""
    code, changed = in_store(obj, lambda s, actor: park_service.set_currency(s, actor, park_id, currency),
                             create=True)
    if not changed:
        click.echo("park %d already uses %s: nothing changed" % (park_id, code))
        return
    click.echo("park %d: amounts are in %s" % (park_id, code))


@park.command("timezone")
@click.argument("name", required=False)
@click.option("--park", "park_id", type=int, default=1, show_default=True)
@click.pass_obj
def park_timezone(obj, name, park_id):
    """Show or set the park's IANA time zone (e.g. Asia/Shanghai): its days and daily resets follow it."""
    if name is None:
        click.echo(in_store(obj, lambda s, actor: park_service.time_zone(s, actor, park_id)))
        return
    name, changed = in_store(obj, lambda s, actor: park_service.set_time_zone(s, actor, name, park_id), create=True)
    if not changed:
        click.echo("park %d already keeps time in %s: nothing changed" % (park_id, name))
        return
    click.echo("park %d keeps time in %s: park days, tickets' dates and gates' daily resets follow it (gates take "
               "it at their next sync)" % (park_id, name))


def _show_desk_settings(settings, currency):
    click.echo("deposits: member %s, temporary %s" % (format_cents(settings.deposit_member_cents, currency),
                                                     format_cents(settings.deposit_temporary_cents, currency)))
    click.echo("refunds: at least %s, fee %d bps + %s (the bonus is never refunded)" % (
        format_cents(settings.refund_minimum_cents, currency), settings.refund_fee_bps,
        format_cents(settings.refund_fee_fixed_cents, currency)))


@park.command("deposit")
@click.argument("card_type", type=click.Choice(sorted(park_service.CARD_TYPES)))
@click.argument("amount")
@click.pass_obj
def park_deposit(obj, card_type, amount):
    """Set the deposit the desk takes for a CARD_TYPE card, e.g. `member 20` (whole units of 1.00)."""
    settings, currency = in_park_currency(obj, lambda storage, actor, currency: park_service.set_card_deposit(
        storage, actor, card_type, amount_cents(amount, currency, "the deposit")), create=True)
    _show_desk_settings(settings, currency)


def _desk_settings(obj, given, change):
    """The park's desk settings and currency, after `await change(storage, actor, now, currency)` when any option
    of the command is given (given: their values, None where not given)."""
    async def read_or_change(storage, actor, currency):
        now = await park_service.desk_settings(storage, actor)
        if all(value is None for value in given):
            return now
        return await change(storage, actor, now, currency)
    return in_park_currency(obj, read_or_change, create=True)


@park.command("refund-rules")
@click.option("--minimum", default=None, help="the smallest refund, e.g. 5 (keeps the current one if not given)")
@click.option("--fee-bps", type=click.IntRange(0, 10000), default=None, help="fee in basis points (100 = 1 %)")
@click.option("--fee-fixed", default=None, help="a fixed fee on each refund and return, e.g. 1")
@click.pass_obj
def park_refund_rules(obj, minimum, fee_bps, fee_fixed):
    """Show the refund rules, or set them: a minimum, a fee of basis points plus a fixed fee."""
    def change(storage, actor, now, currency):
        minimum_cents = now.refund_minimum_cents if minimum is None else amount_cents(minimum, currency, "--minimum")
        fixed_cents = now.refund_fee_fixed_cents if fee_fixed is None else amount_cents(fee_fixed, currency,
                                                                                       "--fee-fixed")
        return park_service.set_refund_rules(storage, actor, minimum_cents,
                                             now.refund_fee_bps if fee_bps is None else fee_bps, fixed_cents)
    _show_desk_settings(*_desk_settings(obj, (minimum, fee_bps, fee_fixed), change))


def _show_offline_rules(settings, currency):
    release_s = settings.hold_release_s or settings.offline_window_s
    click.echo("terminals serve offline for %g h, a card spends at most %s a day; a replaced card's hold is released "
               "%g h after its loss report at the latest" % (settings.offline_window_s / 3600,
                                                            format_cents(settings.offline_daily_cap_cents, currency),
                                                            release_s / 3600))


@park.command("offline-rules")
@click.option("--window-hours", type=click.FloatRange(min=0, min_open=True), default=None,
              help="how long a terminal serves without reaching the hub, in hours (at most 168)")
@click.option("--daily-cap", default=None, help="what a card may spend a day at terminals, e.g. 200 (0: no cap)")
@click.option("--release-after-hours", type=click.FloatRange(min=0), default=None,
              help="when a replaced card's hold is released at the latest, in hours (0: after the window)")
@click.pass_obj
def park_offline_rules(obj, window_hours, daily_cap, release_after_hours):
    """Show the offline rules every terminal is sent (and a replacement's hold follows), or set them."""
    def change(storage, actor, now, currency):
        return park_service.set_offline_rules(
            storage, actor, now.offline_window_s if window_hours is None else round(window_hours * 3600),
            now.offline_daily_cap_cents if daily_cap is None else amount_cents(daily_cap, currency, "--daily-cap"),
            now.hold_release_s if release_after_hours is None else round(release_after_hours * 3600))
    _show_offline_rules(*_desk_settings(obj, (window_hours, daily_cap, release_after_hours), change))


@park.command("sessions")
@click.option("--idle-minutes", type=click.IntRange(1), default=None,
              help="an operator's web session ends after this many minutes without use")
@click.option("--max-hours", type=click.IntRange(1), default=None,
              help="and this many hours after its login at the latest, however busy")
@click.pass_obj
def park_sessions(obj, idle_minutes, max_hours):
    """Show or set how long an operator's web session lasts (the login page states it)."""
    async def setting(store, actor):
        if (idle_minutes, max_hours) == (None, None):
            return await park_service.session_limits(store), None
        return await park_service.set_session_limits(
            store, actor, None if idle_minutes is None else idle_minutes * 60,
            None if max_hours is None else max_hours * 3600)
    limits, changed = in_store(obj, setting, create=(idle_minutes, max_hours) != (None, None))
    click.echo("web sessions end after %d minutes without use, and %d minutes after the login at the latest%s" % (
        limits.idle_s // 60, limits.max_s // 60, " (nothing changed)" if changed is False else ""))


@park.command("pay-methods")
@click.argument("methods", nargs=-1)
@click.pass_obj
def park_pay_methods(obj, methods):
    """The payment methods the desks take: cash, and METHODS (e.g. card mobile) when given; `cash` alone: only cash."""
    async def setting(store, actor):
        changed = await shifts.set_pay_methods(store, actor, methods) if methods else None
        return changed, await shifts.pay_methods(store, actor)
    changed, taken = in_store(obj, setting, create=bool(methods))
    click.echo("the desks take %s%s" % (", ".join(taken), "" if changed is not False else " (nothing changed)"))
