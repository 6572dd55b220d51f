"""The drain: faults stop, everything comes back, every card is settled and every terminal must empty its journal."""

from vopr.terminals import uncertain_on

FINAL_TAP_CENTS = 10
DRAIN_ROUND_S = 300


async def drain(stepper):
    """Stop the faults, bring everything back, settle every card and drain every journal; then audit."""
    park = stepper.park
    park.disk_full_writes = 0
    park.kill_write = None
    if park.link is not None:
        park.link.kill_after_outputs = None
    for sim_terminal in park.terminals.values():
        sim_terminal.flash.disarm()
    park.network.partitioned.clear()
    if not park.broker.up:
        park.broker.restart()
    if not park.hub_up():
        await park.start_hub()
    for sim_terminal in sorted(park.terminals.values(), key=lambda t: t.terminal_id):
        if not sim_terminal.alive:
            await park.boot(sim_terminal)
    await park.refresh_links()
    stepper.log("DRAIN: faults off, everything restarted")
    cards = {v.card_no: v for v in park.visitors}
    for sim_terminal in stepper.alive():     # visitors come back to where their card was left uncertain
        for card_no in sorted(uncertain_on(sim_terminal)):
            outcome, _ = await park.tap(sim_terminal, cards[card_no], 0, balance_only=True)
            stepper.log("DRAIN: card %d shown at term-%d: %s" % (card_no, sim_terminal.terminal_id, outcome))
    for visitor in park.visitors:          # one more tap each moves every card's counter past the last record
        sim_terminal = stepper.rng.choice(stepper.alive())
        outcome, _ = await park.tap(sim_terminal, visitor, FINAL_TAP_CENTS)
        stepper.log("DRAIN: card %d last tap at term-%d: %s" % (visitor.card_no, sim_terminal.terminal_id, outcome))
    for rounds in range(stepper.options.drain_rounds_max):
        park.auditor.step = stepper.step = stepper.outcome.fault_steps + rounds
        if await drain_round(stepper, rounds) and rounds >= 3:
            break
    else:
        park.auditor.fail("not_drained", "after %d rounds: %s" % (stepper.options.drain_rounds_max,
                                                                 backlog_report(stepper)))
        return
    stepper.log("DRAIN: drained after %d rounds" % (rounds + 1))
    stepper.audit_db()
    park.auditor.check_settled(park.cards_now(), locked={v.card_no for v in park.visitors if v.slot().locked})
    await park.auditor.check_product_ledger()

async def drain_round(stepper, rounds):
    """One round: time passes, every online terminal uploads, everything in flight is delivered."""
    park = stepper.park
    stepper.clock.advance(DRAIN_ROUND_S)
    if not park.hub_up():
        await park.start_hub()
    for sim_terminal in stepper.online():
        if rounds % 4 == 0:
            await park.status(sim_terminal)
        await park.upload(sim_terminal)
    for _ in range(3):
        while park.network.in_flight:
            await park.deliver(0)
        if park.broker.hub_queue:
            await park.hub_consume(len(park.broker.hub_queue))
    return not backlog_report(stepper)

def backlog_report(stepper):
    """What still holds the park from being drained, or an empty string."""
    park = stepper.park
    out = ["term-%d holds %d" % (t.terminal_id, t.backlog()) for t in stepper.alive() if t.backlog()]
    out += ["term-%d is down" % t.terminal_id for t in park.terminals.values() if not t.alive]
    if park.broker.hub_queue or park.network.in_flight:
        out.append("%d for the hub, %d in flight" % (len(park.broker.hub_queue), len(park.network.in_flight)))
    if not park.hub_up():
        out.append("the hub is down")
    return ", ".join(out)
