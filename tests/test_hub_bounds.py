"""Every bound of the hub is named, counted when hit, and never drops payment data; and what fails after a
commit is retried on its own (the batch stays acknowledged once, nothing is quarantined)."""

import asyncio

from protocol import frames
from protocol import record as R

from parkcard.app import Hub
from parkcard.ingest import pipeline
from parkcard.transport.mqtt_link import MqttLink
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, MERCHANT_PARK, ScriptedTerminal, start_hub

BOOTH = 5
UID = b"\x04\x01\x02\x03"
DAY_S = 1796000000


def run(coro, timeout_s=60):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


async def booth_hub(db, **hub_args):
    """A hub without a broker, with booth BOOTH of the ice-cream merchant."""
    hub = await Hub(db, broker_port=1, **hub_args).open()
    await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
    await hub.add_merchant(MERCHANT_ICE, "Ice cream", 1000)
    await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "front desk")
    await hub.register_terminal(BOOTH, MERCHANT_ICE, frames.ROLE_POS, "booth")
    return hub


def sale(hub, seq, card_no, counter, amount, balance, terminal_id=BOOTH):
    """A debit record of terminal_id, MACed with its key."""
    rec = R.Record(R.KIND_DEBIT, terminal_id, seq, DAY_S + seq, card_no, UID, counter, amount, balance)
    return rec.encode(hub.registry.get(terminal_id).record_mac)


async def statuses(hub, terminal_id):
    """[(seq, status)] of a terminal's records, by seq, through the running hub's store."""
    return [(r.seq, r.status) for r in await hub.storage.records(terminal_id)]


# -- paho's downlink queue (parkcard.transport.mqtt_link.DOWNLINK_QUEUED_MAX)
def test_a_downlink_beyond_the_link_bound_is_refused_and_counted():
    link = MqttLink("127.0.0.1", 1, downlink_queued_max=3)     # never connected: paho queues every publish
    accepted = [link.publish("parkcard/term-5/down", b"frame %d" % i) for i in range(5)]
    assert accepted == [True, True, True, False, False]
    assert link.downlinks_refused == 2


def test_a_command_refused_by_the_link_stays_queued_until_a_publish_takes_it(tmp_path):
    async def scenario():
        hub = await booth_hub(tmp_path / "hub.db", downlink_queued_max=1)
        try:
            assert hub.link.publish("parkcard/term-9/down", b"fills the queue")
            assert await hub.lock_terminal(BOOTH)
            refused = hub.stats()["downlinks_refused"], len(await hub.storage.pending_commands())
            hub.link.client.max_queued_messages_set(10)      # room again, as after the broker took the queue
            sent = await hub.send_pending_commands()
            return refused, sent, len(await hub.storage.pending_commands())
        finally:
            await hub.stop()
    assert run(scenario()) == ((1, 1), 1, 0)


# -- seqs above a terminal's hole (parkcard.ingest.pipeline.ABOVE_MAX)
def test_records_past_the_bound_above_a_hole_wait_for_the_resend_and_none_is_lost(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "ABOVE_MAX", 2)

    async def scenario():
        hub = await booth_hub(tmp_path / "hub.db")
        try:
            raws = [sale(hub, seq, 100001, seq, 100, 10000 - 100 * seq) for seq in range(1, 6)]
            first = await hub.ingest.apply_local(BOOTH, [(R.STATUS_COMMITTED, raw) for raw in raws[1:]])  # 1 lost
            held = await statuses(hub, BOOTH), hub.registry.get(BOOTH).acked_upto, first.acks[BOOTH]
            await hub.ingest.apply_local(BOOTH, [(R.STATUS_COMMITTED, raw) for raw in raws])   # the resend
            return held, await statuses(hub, BOOTH), hub.registry.get(BOOTH).acked_upto, hub.stats()["above_full"]
        finally:
            await hub.stop()
    (held, acked, first_ack), stored, acked_upto, above_full = run(scenario())
    assert held == [(2, "applied"), (3, "applied")] and acked == 0 and first_ack == [2, 0]
    assert stored == [(seq, "applied") for seq in range(1, 6)] and acked_upto == 5
    assert above_full == 2


# -- cards with open uncertain records (parkcard.ingest.pipeline.UNCERTAIN_CARDS_MAX)
def test_a_card_leaves_the_uncertain_set_once_its_uncertain_record_is_decided(tmp_path):
    async def scenario():
        hub = await booth_hub(tmp_path / "hub.db")
        try:
            await hub.ingest.apply_local(BOOTH, [(R.STATUS_UNCERTAIN, sale(hub, 1, 100001, 2, 100, 900))])
            before = set(hub.ingest.uncertain_cards)
            await hub.ingest.apply_local(BOOTH, [(R.STATUS_COMMITTED, sale(hub, 2, 100001, 3, 50, 850))])
            return before, set(hub.ingest.uncertain_cards), await statuses(hub, BOOTH)
        finally:
            await hub.stop()
    before, after, stored = run(scenario())
    assert before == {100001} and after == set() and stored == [(1, "applied"), (2, "applied")]


def test_past_the_uncertain_card_bound_every_card_is_looked_up_and_none_is_missed(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "UNCERTAIN_CARDS_MAX", 1)

    async def scenario():
        hub = await booth_hub(tmp_path / "hub.db")
        try:
            await hub.ingest.apply_local(BOOTH, [(R.STATUS_UNCERTAIN, sale(hub, 1, 100001, 2, 100, 900)),
                                                 (R.STATUS_UNCERTAIN, sale(hub, 2, 100002, 2, 100, 900))])
            full = hub.ingest.uncertain_every_card, hub.stats()["uncertain_cards_full"], hub.stats()["uncertain_cards"]
            await hub.ingest.apply_local(BOOTH, [(R.STATUS_COMMITTED, sale(hub, 3, 100001, 3, 50, 850)),
                                                 (R.STATUS_COMMITTED, sale(hub, 4, 100002, 3, 50, 850))])
            return full, await statuses(hub, BOOTH)
        finally:
            await hub.stop()
    full, stored = run(scenario())
    assert full == (True, 1, 0)
    assert stored == [(seq, "applied") for seq in range(1, 5)]


# -- failure after commit
def test_a_failure_after_commit_is_retried_on_its_own_and_the_batch_is_acknowledged_once(tmp_path, broker):
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        acked = []
        ack, send_ack, fleet_apply = hub.link.ack, hub.downlink.ack, hub.fleet.apply
        failures = {"ack": 2, "fleet": 1}

        def counting_ack(mids):
            acked.extend(mids)
            ack(mids)

        async def failing_send_ack(*args):
            if failures["ack"]:
                failures["ack"] -= 1
                raise RuntimeError("downlink failed after commit")
            return await send_ack(*args)

        async def failing_fleet(messages):
            if failures["fleet"]:
                failures["fleet"] -= 1
                raise RuntimeError("fleet failed")
            return await fleet_apply(messages)
        hub.link.ack, hub.downlink.ack, hub.fleet.apply = counting_ack, failing_send_ack, failing_fleet
        try:
            key = await hub.register_terminal(BOOTH, MERCHANT_ICE, frames.ROLE_POS, "booth")
            term = await asyncio.to_thread(ScriptedTerminal(broker.host, broker.port, BOOTH, key).connect)
            try:
                term.record(R.KIND_DEBIT, 100001, 2, 100, 900)
                term.record(R.KIND_DEBIT, 100001, 3, 100, 800)
                term.status(boot=1)
                term.upload()
                await asyncio.to_thread(term.wait_acked, 2)
                await hub.wait_until(lambda: hub.fleet.stats["status_applied"] >= 1)
            finally:
                term.close()
            quarantined = [(q.reason,) for q in await hub.storage.quarantined()]
            return acked, quarantined, await statuses(hub, BOOTH), hub.stats(), failures
        finally:
            await hub.stop()
    acked, quarantined, stored, stats, failures = run(scenario())
    assert failures == {"ack": 0, "fleet": 0}
    assert len(acked) == len(set(acked)) == 2          # the upload and the status, each acknowledged once
    assert quarantined == [] and stats["failed_messages"] == 0
    assert stored == [(1, "applied"), (2, "applied")]
    assert stats["after_commit_retries"] == 2 and stats["after_commit_given_up"] == 0
