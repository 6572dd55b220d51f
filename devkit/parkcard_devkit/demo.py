"""`parkcard demo`: run a whole park on this machine and show that the money adds up."""

import asyncio
import logging
import os
import shutil
import tempfile
import time

import click

from protocol import frames
from sim.cards import card_balance
from terminal import wallet as w

from parkcard.app import configure_logging
from parkcard.domain import accounts
from parkcard.money import format_cents
from parkcard.services import losses
from parkcard.services.privileges import ServiceError
from parkcard.services.settlement import iso_utc

from parkcard_devkit.park_sim import DESK_TERMINAL_ID, MERCHANTS, ParkSim, Visitor

PROGRESS_STEPS = 10
REPLACEMENT_UID = bytes.fromhex("04dede0000dede")  # the stock card the desk replaces a lost card with
HOLD_RELEASE_WAIT_S = 60        # the terminals report their status within a few of the hub's hold checks
SERVE_TAP_INTERVAL_S = 3.0      # `demo --serve`: a visitor's pace, one tap somewhere every few seconds
# The demo park's operator logins (a throw-away park on loopback: the passwords are printed, on purpose).
DEMO_LOGINS = (("demo", "demo-park-admin", ["admin"], None), ("foodcourt", "demo-park-booth", ["merchant"], MERCHANTS[0][0]))

# A refused tap in the words of a park manager (terminal.wallet's reasons, SPEC.md §3.6).
REFUSAL_WORDS = {
    w.NO_CARD: "card taken away too soon",
    w.READ_FAILED: "card could not be read",
    w.BAD_MAC: "card failed its security check",
    w.NOT_WALLET: "not a payment card",
    w.RETURNED: "card already returned at the desk",
    w.BLACKLISTED: "card blocked (reported lost or stolen)",
    w.EXPIRED: "card expired",
    w.PERMISSION: "card not valid at this booth",
    w.NOT_ALLOWED: "card type or tier not taken here (consumption rules)",
    w.MEMBERS_ONLY: "item for members only",
    w.OVER_TX_CAP: "over the limit for one payment",
    w.OVER_DAILY_CAP: "over the card's daily spending limit",
    w.INSUFFICIENT: "insufficient balance",
    w.STALE: "terminal offline too long, must sync first",
    w.OFFLINE_LIMIT: "over what one card may spend here while the terminal is offline",
    w.JOURNAL_FULL: "terminal memory full",
    w.NOT_READY: "terminal not authorised yet",
    w.UNCERTAIN: "previous payment unresolved, tap again",
    w.BAD_AMOUNT: "invalid amount",
}


def refusal_words(reason, count):
    """One kind of refusal and how often it happened, e.g. "insufficient balance: 101 taps"."""
    return "%s: %d tap%s" % (REFUSAL_WORDS.get(reason, reason), count, "" if count == 1 else "s")


DEMO_DESK_CARD_UID = bytes.fromhex("04de5c0000d001")     # `--serve`: the blank card left on the desk
DEMO_TOP_UPS = 3      # cards topped up at the desk before the visitors start tapping
DEMO_REFUND_CENTS = 1000    # refunded off the first card at the desk once the taps are done


async def run_demo(workdir, terminals, taps, cards, offline, broker_url, seed, echo, tap_interval_ms=2, db=None,
                   web_port=0, serve=False):
    """Run the scenario; return 0 when every check passes, 1 otherwise (db: a postgresql:// URL, or None).

    The hub serves the web app on web_port (0: a free one); serve: after the checks, keep the park tapping
    at a visitor's pace until cancelled (Ctrl-C).
    """
    from parkcard.api.server import ApiServer
    sim = ParkSim(workdir, terminals=terminals, cards=cards, seed=seed, broker_url=broker_url, db=db,
                  api=ApiServer(port=web_port))
    started = time.monotonic()
    try:
        await sim.start()
        await web_login(sim, echo)
        if broker_url:
            where = "%s (plaintext, its own access rules)" % broker_url
        else:
            where = ("mosquitto on 127.0.0.1:%d, TLS only with the park CA, a password per terminal and an ACL "
                     "(config in %s)" % (sim.broker.port, sim.broker.workdir))
        echo("park running: hub on %s, broker %s" % (sim.hub.storage.path, where))
        currency = await sim.hub.storage.park_currency()
        names = {m[0]: m[2] for m in await sim.hub.storage.merchants()}

        def money(cents):
            return format_cents(cents, currency)

        def called(t):
            return "terminal %d (%s, %s)" % (t.terminal_id, names[t.merchant_id], frames.ROLE_NAMES[t.role])

        echo("issued %d cards at the desk, %s loaded (gold cards get +10%%)" % (len(sim.visitors),
                                                                             money(sim.loaded_cents)))
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        for visitor in sim.visitors[:DEMO_TOP_UPS]:     # the desk tops some up: written, read back, then posted
            done = await sim.at_desk(visitor.virtual, desk.top_up("demo-top-up-%d" % visitor.card_no, 5000))
            sim.loaded_cents += done.amount_cents
            echo("  card %d topped up at the desk by %s (bonus %s): balance %s" % (
                done.card_no, money(done.amount_cents - done.bonus_cents), money(done.bonus_cents),
                money(done.balance_cents)))
        echo("%d terminals online, each authorised by a technician's tap of admin card %d:" % (
            len(sim.terminals), sim.admin_card_no))
        for t in sim.terminals:
            echo("  " + called(t))
        cut_at, back_at = (taps * 3 // 10, taps * 7 // 10) if offline else (-1, -1)
        victim = sim.terminals[0]
        approved = refused = approved_cents = offline_taps = 0
        reasons = {}
        for i in range(taps):
            if i == cut_at:
                victim.relay.cut()
                echo("%s cut off the network; it keeps taking payments offline" % called(victim))
            if i == back_at:
                backlog = victim.backlog()
                victim.relay.restore()
                echo("%s reconnected with %d payments to upload" % (called(victim), backlog))
            terminal, _visitor, result = await sim.random_tap()
            await asyncio.sleep(tap_interval_ms / 1000)  # visitors arrive one after another
            if result.ok:
                approved += 1
                approved_cents += result.amount_cents
                if terminal is victim and cut_at <= i < back_at:
                    offline_taps += 1
            else:
                refused += 1
                reasons[result.reason] = reasons.get(result.reason, 0) + 1
            if taps >= PROGRESS_STEPS and (i + 1) % (taps // PROGRESS_STEPS) == 0:
                backlog = sum(t.backlog() for t in sim.terminals)
                echo("  taps %d/%d: approved %d (%s), refused %d, not yet uploaded from terminals %d" % (
                    i + 1, taps, approved, money(approved_cents), refused, backlog))
        await sim.drain()
        echo("every payment reached the hub, %.1f s after the start; %d taken offline are in the ledger" % (
            time.monotonic() - started, offline_taps))
        await money_out(sim, desk, echo, money)
        if reasons:
            echo("refused taps, by reason:")
            for reason, count in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
                echo("  " + refusal_words(reason, count))
        await replace_a_lost_card(sim, echo, money)
        echo("")
        rows = await sim.settle()
        echo("settlement of this run, %s to %s, closed:" % (iso_utc(rows[0].period_start),
                                                                 iso_utc(rows[0].period_end)))
        width = max(len(r.merchant_name) for r in rows)
        echo("  %-*s %16s %16s %16s %16s %8s" % (width, "merchant", "sales", "refunds", "commission", "payout",
                                                 "payments"))
        for row in rows:
            echo("  %-*s %16s %16s %16s %16s %8d" % (width, row.merchant_name, money(row.sales_cents),
                                                     money(row.refunds_cents), money(row.commission_cents),
                                                     money(row.payout_cents), row.records))
        echo("")
        mismatches = await sim.card_mismatches()
        echo("cards whose balance at the hub differs from the card itself: %d" % len(mismatches))
        for card_no, on_card, at_hub in mismatches[:10]:
            echo("  card %d: %s on the card, %s at the hub" % (
                card_no, money(on_card), "nothing" if at_hub is None else money(at_hub)))
        report = await sim.ledger_report()
        echo("ledger check (as `parkcard ledger check`):")
        for line in report.lines():
            echo("  " + line)
        code = 0 if report.ok and not mismatches else 1
        if serve:
            await keep_serving(sim, echo)
        return code
    finally:
        await sim.stop()


async def money_out(sim, desk, echo, money):
    """The desk pays a refund off one card and takes another back (the real path), as a cashier would."""
    for visitor in sim.visitors[:2]:
        cash = card_balance(sim.park_keys, visitor.virtual).balance_cents - await sim.hub.storage.account_balance(
            accounts.bonus_account(visitor.card_no))
        try:
            if visitor is sim.visitors[0]:
                if cash <= 0:
                    echo("  card %d: no cash left on it to refund (its bonus is never refunded)" % visitor.card_no)
                    continue
                done = await sim.at_desk(visitor.virtual, desk.refund("demo-refund", min(cash, DEMO_REFUND_CENTS)))
                echo("  card %d: %s refunded at the desk, fee %s; balance %s" % (
                    visitor.card_no, money(done.amount_cents), money(done.fee_cents), money(done.balance_cents)))
            else:
                done = await sim.at_desk(visitor.virtual, desk.return_card("demo-return"))
                echo("  card %d returned at the desk: %s paid out (deposit included), bonus %s back to the park" % (
                    visitor.card_no, money(done.paid_cents), money(done.bonus_cents)))
        except ServiceError as exc:
            echo("  card %d: the desk refused: %s" % (visitor.card_no, exc))


async def replace_a_lost_card(sim, echo, money):
    """A visitor loses their card: reported lost (blacklisted), replaced with a stock card, its hold released."""
    if len(sim.visitors) < 3:
        echo("no card left to lose and replace (the first two went to the desk's refund and return): "
             "run with --cards 3 or more")
        return
    lost = sim.visitors[-1]
    storage = sim.hub.storage
    sim.hub.hold_check_s = 0.5
    loss = await losses.report(storage, sim.hub.actor("demo:cashier"), "lost on the big wheel",
                                    card_no=lost.card_no)
    balance = await storage.account_balance(accounts.card_account(lost.card_no))
    # Every terminal is online: the hub asks each for its status, which says it holds the new blacklist.
    deadline = time.monotonic() + HOLD_RELEASE_WAIT_S
    while await storage.lagging_terminals(loss.blacklist_version, loss.reported_at) and time.monotonic() < deadline:
        await asyncio.sleep(sim.hub.hold_check_s)
    new = await sim.new_card(REPLACEMENT_UID)
    done = await sim.at_desk(new, sim.hub.desk(DESK_TERMINAL_ID).replace("demo-replace-%d" % lost.card_no,
                                                                         lost.card_no))
    row = await storage.replacement(old_card_no=lost.card_no)
    echo("card %d reported lost (blacklisted on every terminal) and replaced by card %d: %s moved, %s held for "
         "offline payments the lost card may still have made%s" % (
             lost.card_no, done.card_no, money(done.balance_cents), money(row.hold_cents),
             "" if row.hold_cents else " (none: every terminal had caught up)"))
    deadline = time.monotonic() + HOLD_RELEASE_WAIT_S
    while not row.released and time.monotonic() < deadline:
        await asyncio.sleep(sim.hub.hold_check_s)
        row = await storage.replacement(old_card_no=lost.card_no)
    if row.hold_cents and row.released:
        echo("  every terminal caught up: %s of the hold released onto card %d (it lands at the card's next tap); "
             "%s was balance at the loss" % (money(row.released_cents), done.card_no, money(balance)))
    elif not row.released:
        echo("  the hold is not released yet: terminals still lag behind the loss")
    sim.visitors[-1] = Visitor(done.card_no, REPLACEMENT_UID, new, lost.tier)


async def web_login(sim, echo):
    """Make the demo's operator logins and print them with the web app's address (plain HTTP on loopback)."""
    from parkcard.services import operators
    for username, password, roles, merchant_id in DEMO_LOGINS:
        await operators.create_operator(sim.hub.storage, sim.hub.actor("demo"), username, password, roles,
                                        merchant_id=merchant_id)
    echo("web app: %s (log in as %s)" % (sim.api.web_url, ", or ".join(
        "%s / %s (%s)" % (u, p, " ".join(r)) for u, p, r, _m in DEMO_LOGINS)))


async def keep_serving(sim, echo):
    """Visitors keep tapping, one every SERVE_TAP_INTERVAL_S, until the demo is cancelled (Ctrl-C)."""
    from sim.mifare import MifareClassic1K
    echo("")
    echo("the park stays open: visitors tap every %.0f s; open %s; Ctrl-C closes it" % (
        SERVE_TAP_INTERVAL_S, sim.api.web_url))
    sim.put_on_desk(MifareClassic1K(DEMO_DESK_CARD_UID))
    echo("a blank card (UID %s) lies on desk terminal %d: stock, issue and top it up on %sdesk" % (
        DEMO_DESK_CARD_UID.hex(), DESK_TERMINAL_ID, sim.api.web_url))
    desk_reader = asyncio.create_task(sim.keep_desk_reading(), name="desk-reader")
    try:
        while True:
            await sim.random_tap()
            await asyncio.sleep(SERVE_TAP_INTERVAL_S)
    except asyncio.CancelledError:
        asyncio.current_task().uncancel()       # the cancellation was the way to close: stop() runs in full
        echo("closing the park")
    finally:
        desk_reader.cancel()


@click.command("demo")
@click.option("--terminals", default=4, show_default=True, type=click.IntRange(1, 200), help="simulated terminals")
@click.option("--taps", default=400, show_default=True, type=click.IntRange(0, 1000000), help="visitor taps")
@click.option("--cards", default=25, show_default=True, type=click.IntRange(1, 100000), help="visitor cards")
@click.option("--offline/--no-offline", default=True, show_default=True,
              help="cut one terminal off for part of the run, then reconnect it")
@click.option("--broker", "broker_url", help="use this broker (mqtt://host:port) instead of starting one")
@click.option("--dir", "workdir", type=click.Path(file_okay=False),
              help="keep the park's files here (a new or empty folder)")
@click.option("--seed", default=1, show_default=True, help="seed for the simulated visitors")
@click.option("--tap-interval-ms", default=2, show_default=True, type=click.IntRange(0, 60000),
              help="pause between taps")
@click.option("--db", "db", help="run the hub on this PostgreSQL database (postgresql://...; it should be empty) "
              "instead of a SQLite file in --dir")
@click.option("--web-port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="the web app's port on 127.0.0.1 (0: a free one)")
@click.option("--serve", is_flag=True, help="after the run, keep the park open (visitors tapping) until Ctrl-C")
@click.option("-v", "--verbose", is_flag=True, help="show the hub's logs")
def demo_command(terminals, taps, cards, offline, broker_url, workdir, seed, tap_interval_ms, db, web_port, serve,
                 verbose):
    """Run a park on this machine: broker, hub, terminals and visitors; exit 1 if the ledger does not balance."""
    if workdir is not None and os.path.isdir(workdir) and os.listdir(workdir):
        # Checked before anything is written: the demo builds a fresh park, and one found here
        # already has these terminals and cards (its audit log would get this run's entries).
        raise click.BadParameter("%s already holds files (a park of an earlier run?): give a new or empty "
                                 "folder" % workdir, param_hint="--dir")
    configure_logging(logging.INFO if verbose else logging.WARNING)
    keep = workdir is not None
    workdir = workdir or tempfile.mkdtemp(prefix="parkcard-demo-")
    os.makedirs(workdir, exist_ok=True)
    try:
        code = asyncio.run(run_demo(workdir, terminals, taps, cards, offline, broker_url, seed, click.echo,
                                    tap_interval_ms, db, web_port, serve))
    except TimeoutError as exc:
        raise click.ClickException("the park did not settle: %s (files kept in %s)" % (exc, workdir))
    except OSError as exc:
        raise click.ClickException("could not run the park: %s (files kept in %s)" % (exc, workdir))
    if code == 0 and not keep:
        shutil.rmtree(workdir, ignore_errors=True)  # a passing run leaves nothing; a failing one its evidence
    raise SystemExit(code)
