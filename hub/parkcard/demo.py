"""`parkcard demo`: run a whole park on this machine and show that the money adds up."""

import asyncio
import logging
import os
import shutil
import tempfile
import time

import click

from protocol import frames

from parkcard.park_sim import ParkSim
from parkcard.service import configure_logging

PROGRESS_STEPS = 10


def money(cents):
    """Integer cents as 1,234.56."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return "%s%s.%02d" % (sign, format(cents // 100, ","), cents % 100)


async def run_demo(workdir, terminals, taps, cards, offline, broker_url, seed, echo, tap_interval_ms=2):
    """Run the scenario; return 0 when every check passes, 1 otherwise."""
    sim = ParkSim(workdir, terminals=terminals, cards=cards, seed=seed, broker_url=broker_url)
    started = time.monotonic()
    try:
        await sim.start()
        if broker_url:
            where = "%s (plaintext, its own access rules)" % broker_url
        else:
            where = ("mosquitto on 127.0.0.1:%d, TLS only with the park CA, a password per terminal and an ACL "
                     "(config in %s)" % (sim.broker.port, sim.broker.workdir))
        echo("park running: hub on %s, broker %s" % (sim.hub.storage.path, where))
        echo("issued %d cards at the desk, %s loaded (gold cards get +10%%)" % (len(sim.visitors),
                                                                             money(sim.loaded_cents)))
        echo("%d terminals online and authorised by a tap of admin card %d: %s" % (
            len(sim.terminals), sim.admin_card_no,
            ", ".join("%d:%s" % (t.terminal_id, frames.ROLE_NAMES[t.role]) for t in sim.terminals)))
        cut_at, back_at = (taps * 3 // 10, taps * 7 // 10) if offline else (-1, -1)
        victim = sim.terminals[0]
        approved = refused = approved_cents = offline_taps = 0
        reasons = {}
        for i in range(taps):
            if i == cut_at:
                victim.relay.cut()
                echo("terminal %d cut off the network; it keeps taking payments offline" % victim.terminal_id)
            if i == back_at:
                backlog = victim.backlog()
                victim.relay.restore()
                echo("terminal %d reconnected with %d records to upload" % (victim.terminal_id, backlog))
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
                echo("  taps %d/%d  approved %d (%s)  refused %d  unsynced on terminals %d" % (
                    i + 1, taps, approved, money(approved_cents), refused, backlog))
        await sim.drain()
        echo("all terminals drained in %.1f s total; %d offline taps settled" % (time.monotonic() - started,
                                                                                   offline_taps))
        if reasons:
            echo("refusals: " + ", ".join("%s %d" % kv for kv in sorted(reasons.items())))
        echo("")
        echo("settlement (this run's period):")
        echo("  %-10s %12s %12s %12s %8s" % ("merchant", "sales", "commission", "payout", "records"))
        for row in await sim.settle():
            echo("  %-10d %12s %12s %12s %8d" % (row["merchant_id"], money(row["sales_cents"]),
                                                money(row["commission_cents"]), money(row["payout_cents"]),
                                                row["records"]))
        echo("")
        mismatches = await sim.card_mismatches()
        echo("cards whose hub shadow balance differs from the card: %d" % len(mismatches))
        for card_no, on_card, at_hub in mismatches[:10]:
            echo("  card %d: card %s, hub %s" % (card_no, on_card, at_hub))
        report = await sim.ledger_report()
        for line in report.lines():
            echo(line)
        return 0 if report.ok and not mismatches else 1
    finally:
        await sim.stop()


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
@click.option("-v", "--verbose", is_flag=True, help="show the hub's logs")
def demo_command(terminals, taps, cards, offline, broker_url, workdir, seed, tap_interval_ms, verbose):
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
                                    tap_interval_ms))
    except TimeoutError as exc:
        raise click.ClickException("the park did not settle: %s (files kept in %s)" % (exc, workdir))
    except OSError as exc:
        raise click.ClickException("could not run the park: %s (files kept in %s)" % (exc, workdir))
    if code == 0 and not keep:
        shutil.rmtree(workdir, ignore_errors=True)  # a passing run leaves nothing; a failing one its evidence
    raise SystemExit(code)
