"""The ingest rules over each store backend (conftest.STORE_BACKENDS), read back through the store's own
methods only: exactly once, conflicts, gaps and the ack, clones, chain breaks."""

import asyncio

from protocol import record as R

from parkcard import audit
from parkcard.testing import DESK_ID
from test_hub_records import DAY_S, UID, Booth, park


def on_a_park(db, steps):
    """Run steps(hub, card_no) on a park (booths 5 and 6) with one card of 100.00 at counter 1; return its result."""
    async def scenario():
        hub = await park(db)
        try:
            card = (await hub.desk(DESK_ID).issue(UID, 10000, time_s=DAY_S)).card_no
            return await steps(hub, card)
        finally:
            await hub.stop()
    return asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_resent_upload_is_applied_once(store_url):
    async def steps(hub, card):
        five = Booth(hub, 5)
        raws = [five.make(R.KIND_DEBIT, card, 2 + i, 100, 9900 - 100 * i) for i in range(3)]
        first = await hub.ingest.apply_local(5, [(R.STATUS_COMMITTED, r) for r in raws])
        again = await hub.ingest.apply_local(5, [(R.STATUS_COMMITTED, r) for r in raws])
        return (first.counts["applied"], again.counts["duplicates"], await hub.storage.count("records", "terminal_id=?",
                                                                                             (5,)),
                await hub.storage.account_balance("card:%d" % card), (await audit.check(hub.storage)).ok)
    assert on_a_park(store_url, steps) == (3, 3, 3, 9700, True)


def test_the_same_seq_with_other_bytes_is_a_conflict_and_not_applied(store_url):
    async def steps(hub, card):
        five = Booth(hub, 5)
        await five.upload(five.make(R.KIND_DEBIT, card, 2, 300, 9700))
        five.seq = 0                        # a terminal that lost its journal reuses seq 1
        result = await hub.ingest.apply_local(5, [(R.STATUS_COMMITTED, five.make(R.KIND_DEBIT, card, 3, 5000,
                                                                                 4700))])
        alarms = [a[1:5] for a in await hub.storage.alarms()]
        return result.acks[5], alarms, await hub.storage.account_balance("card:%d" % card)
    acks, alarms, balance = on_a_park(store_url, steps)
    assert acks == [0, 1] and balance == 9700
    assert alarms == [("conflict", alarms[0][1], 5, 1)]


def test_records_out_of_order_are_held_above_the_ack_until_the_gap_fills(store_url):
    async def steps(hub, card):
        five = Booth(hub, 5)
        raws = [five.make(R.KIND_DEBIT, card, 2 + i, 50, 9950 - 50 * i) for i in range(3)]
        await five.upload(raws[2], raws[0])
        held = ((await hub.storage.terminals(5))[0]["acked_upto"], await hub.storage.seqs_above_ack(5))
        await five.upload(raws[1])
        filled = ((await hub.storage.terminals(5))[0]["acked_upto"], await hub.storage.seqs_above_ack(5))
        return held, filled, await hub.storage.account_balance("card:%d" % card)
    assert on_a_park(store_url, steps) == ((1, {5: [3]}), (3, {}), 9850)


def test_two_records_with_one_card_counter_are_applied_alarmed_and_the_card_blacklisted(store_url):
    async def steps(hub, card):
        five, six = Booth(hub, 5), Booth(hub, 6)
        await five.upload(five.make(R.KIND_DEBIT, card, 2, 100, 9900))
        result = await six.hub.ingest.apply_local(6, [(R.STATUS_COMMITTED, six.make(R.KIND_DEBIT, card, 2, 200,
                                                                                    9800))])
        return (result.counts["clones"], result.blacklist_versions, await hub.storage.blacklist_cards(),
                await hub.storage.clone_alarm_cards(), await hub.storage.account_balance("card:%d" % card), card)
    clones, versions, blacklisted, cloned, balance, card = on_a_park(store_url, steps)
    assert (clones, versions, blacklisted, cloned, balance) == (1, [1], [card], {card}, 9700)


def test_a_record_that_does_not_continue_the_cards_balance_raises_a_chain_alarm(store_url):
    async def steps(hub, card):
        five = Booth(hub, 5)
        await five.upload(five.make(R.KIND_DEBIT, card, 2, 100, 9900))
        await five.upload(five.make(R.KIND_DEBIT, card, 3, 100, 9500))     # 9900 - 100 is 9800
        return [(a[1], a[5]) for a in await hub.storage.alarms()]
    assert on_a_park(store_url, steps) == [("chain", "counter 3: 9900 -100 != 9500")]
