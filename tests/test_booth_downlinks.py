"""A booth's price list and discount rules as downlinks (SPEC.md §5.3, §7): the hub sends what a booth's
T_SYNC says it lacks, the booth keeps the version in force until the next is whole, bad frames are refused.

The booth half runs terminal/sync.py and roles/pos.py on CPython with the rig of tests/test_sync.py; the
hub half runs the hub against a real Mosquitto with a scripted terminal.
"""

import asyncio
import itertools
import struct
from types import SimpleNamespace

import pytest

from protocol import frames, hub_frames, hub_price_list, price_list, pricing
from protocol.card import TIER_GOLD, TIER_SILVER
from terminal import prices as pr
from terminal.roles import pos

from parkcard.services import discounts, items
from parkcard.services.privileges import Actor
from parkcard.transport import notify
from parkcard_devkit.testing import MERCHANT_ICE, ScriptedTerminal, start_hub
from test_sync import Terminal, down

MERCHANT = 9
ADMIN = Actor("test:admin")


def goods(n, price=100, start=1):
    """n items with codes start, start + 3, ...; every 4th in category 2."""
    return [price_list.Item(start + 3 * i, "item %d" % i, price + i, 2 if i % 4 == 0 else 0) for i in range(n)]


def rules(version=1):
    """Gold: 10 % on every sale, 5 % on the total, 20 % on category 2, none on item 4; silver 5 %."""
    made = pricing.Discounts(version, [0, 500, 1000], [0, 0, 500])
    made.set_override(TIER_GOLD, pricing.OVERRIDE_CATEGORY, 2, 2000)
    made.set_override(TIER_GOLD, pricing.OVERRIDE_ITEM, 4, 0)
    return made


class Booth:
    """A terminal serving the pos role on the test_sync rig: what runtime.Terminal gives the role."""

    def __init__(self, path):
        self.term = Terminal(path)
        runtime = SimpleNamespace(board=SimpleNamespace(data_dir=lambda: str(path)), sync=self.term.sync)
        self.term.wallet.journal = self.term.journal     # the journal a booth counts its shift from (terminal/shift.py)
        self.app = SimpleNamespace(runtime=runtime, wallet=self.term.sync.wallet)
        self.counter = itertools.count(1)
        self.role = self.run(lambda: pos.Role(self.app))

    def run(self, fn):
        """fn() inside a running loop (a T_SYNC the role asks for is a task), its sends let out."""
        async def go():
            out = fn()
            await asyncio.sleep(0)
            return out
        return asyncio.run(go())

    def receive(self, ftype, body):
        self.term.receive(down(ftype, body, counter=next(self.counter) + self.term.state.down_counter))

    def syncs(self):
        """The (merchant, list version, rules version) of every T_SYNC the booth sent."""
        out = []
        for _topic, payload, _qos, _retain in self.term.client.published:
            frame = frames.decode(self.term.sync.frame_mac, payload)
            if frame.type == frames.T_SYNC:
                out.append(hub_frames.parse_sync_prices(frame.body))
        return out

    def close(self):
        self.role.close()
        self.term.close()


@pytest.fixture
def booth(tmp_path):
    made = Booth(tmp_path)
    yield made
    made.close()


def test_a_booth_installs_its_list_and_rules_and_its_sync_names_them(booth):
    assert booth.syncs() == [(0, 0, 0)]              # made a booth while linked: asks with what it holds
    listed = goods(600)
    for body in hub_price_list.price_list_bodies(MERCHANT, 3, listed, price_list.LIST_FREE_AMOUNT):
        booth.receive(frames.T_PRICE_LIST, body)
    booth.receive(frames.T_DISCOUNTS, hub_price_list.discounts_body(MERCHANT, rules(5)))
    assert booth.term.sync.rejected == {}
    prices = booth.role.prices
    assert (prices.merchant_id, prices.version, prices.count, prices.flags) == (MERCHANT, 3, 600, 1)
    found = prices.lookup(listed[417].code)
    assert (found.code, found.name, found.price_cents, found.category) == (1252, "item 417", 517, 0)
    assert prices.lookup(2) is None
    booth.run(booth.term.sync.ask_sync)
    assert booth.syncs()[-1] == (MERCHANT, 3, 5)


def test_the_stored_rules_price_every_line_as_the_protocol_does(booth):
    reference = rules(2)
    for tier in range(3):
        reference.set_override(tier, pricing.OVERRIDE_ITEM, 7 + tier, 1234)
    booth.receive(frames.T_DISCOUNTS, hub_price_list.discounts_body(MERCHANT, reference))
    stored = booth.role.rules
    assert (stored.merchant_id, stored.version) == (MERCHANT, 2)
    for tier, item, category in itertools.product(range(pricing.TIERS_MAX), (0, 4, 7, 8, 9, 10), (0, 2, 3)):
        assert stored.line_rate(tier, item, category) == reference.line_rate(tier, item, category), (tier, item)
    basket = [(4, 2, 3, 350), (7, 2, 1, 1000), (0, 0, 1, 999)]
    for tier in (0, TIER_SILVER, TIER_GOLD):
        ours = pricing.price_basket(stored, tier, basket, free_allowed=True)
        theirs = pricing.price_basket(reference, tier, basket, free_allowed=True)
        assert (ours.line_discounts, ours.total_discount_cents, ours.pay_cents) == (
            theirs.line_discounts, theirs.total_discount_cents, theirs.pay_cents)


def test_the_old_list_serves_until_the_new_one_is_whole_and_both_survive_a_reboot(booth, tmp_path):
    (first,) = hub_price_list.price_list_bodies(MERCHANT, 1, goods(3))
    booth.receive(frames.T_PRICE_LIST, first)
    second = hub_price_list.price_list_bodies(MERCHANT, 2, goods(300, price=900))
    booth.receive(frames.T_PRICE_LIST, second[0])
    assert (booth.role.prices.version, booth.role.prices.lookup(4).price_cents) == (1, 101)
    booth.receive(frames.T_PRICE_LIST, second[1])
    assert (booth.role.prices.version, booth.role.prices.lookup(4).price_cents) == (2, 901)
    booth.receive(frames.T_DISCOUNTS, hub_price_list.discounts_body(MERCHANT, rules(4)))
    booth.close()
    again = Booth(tmp_path)             # a reboot: the files in flash are in force
    try:
        assert (again.role.prices.version, again.role.prices.count, again.role.rules.version) == (2, 300, 4)
        assert again.role.rules.line_rate(TIER_GOLD, 1, 2) == 2000
        assert again.syncs() == [(MERCHANT, 2, 4)]
    finally:
        again.close()
    booth.term = Terminal(tmp_path)     # for the fixture's close
    booth.role = SimpleNamespace(close=lambda: None)


def test_bad_price_frames_are_refused_and_the_version_in_force_stays(booth):
    (first,) = hub_price_list.price_list_bodies(MERCHANT, 1, goods(3))
    booth.receive(frames.T_PRICE_LIST, first)
    booth.receive(frames.T_DISCOUNTS, hub_price_list.discounts_body(MERCHANT, rules(1)))
    later = hub_price_list.price_list_bodies(MERCHANT, 2, goods(300))
    booth.receive(frames.T_PRICE_LIST, later[1])                       # chunk 1 with no chunk 0
    booth.receive(frames.T_PRICE_LIST, first[:-1])                     # cut short
    bad_entry = bytearray(first)
    bad_entry[13 + 4:13 + 8] = struct.pack(">I", 0)                    # a price of 0
    booth.receive(frames.T_PRICE_LIST, bytes(bad_entry))
    rates = bytearray(hub_price_list.discounts_body(MERCHANT, rules(2)))
    rates[7:9] = struct.pack(">H", pricing.RATE_BP_MAX + 1)            # tier 0's rate past 100 %
    booth.receive(frames.T_DISCOUNTS, bytes(rates))
    booth.receive(frames.T_DISCOUNTS, hub_price_list.discounts_body(MERCHANT, rules(2))[:-1])
    assert booth.term.sync.rejected == {"snapshot_order": 1, "malformed": 4}
    assert (booth.role.prices.version, booth.role.prices.count, booth.role.rules.version) == (1, 3, 1)
    booth.role.close()                  # no longer a booth: the price frames are not taken
    booth.receive(frames.T_PRICE_LIST, later[0])
    assert booth.term.sync.rejected["not_handled"] == 1
    assert booth.term.sync.prices_versions is None


def _prices_sent(term):
    """(T_PRICE_LIST chunks as (merchant, version, chunk, chunks, count), discounts versions) the hub sent."""
    lists = [price_list.parse_price_list(f.body) for f in term.downlinks(frames.T_PRICE_LIST)]
    rules_sent = [price_list.parse_discounts(f.body) for f in term.downlinks(frames.T_DISCOUNTS)]
    return ([(c.merchant_id, c.version, c.chunk, c.chunks, c.count) for c in lists],
            [(m, r.version) for m, r in rules_sent])


@pytest.mark.broker
def test_the_hub_sends_a_booth_what_its_sync_lacks_and_pushes_changes(store_url, broker):
    async def scenario():
        hub = await start_hub(store_url, broker.host, broker.port)
        await items.set_item(hub.storage, ADMIN, MERCHANT_ICE, 1, "ice 1", 101)         # version 1
        await items.set_item(hub.storage, ADMIN, MERCHANT_ICE, 300, "ice 300", 400)     # version 2
        await discounts.set_tier(hub.storage, ADMIN, TIER_GOLD, sale_bp=1000, total_bp=500)
        key = await hub.register_terminal(5, MERCHANT_ICE, frames.ROLE_POS, "booth")
        term = await asyncio.to_thread(ScriptedTerminal(broker.host, broker.port, 5, key).connect)
        ride_key = await hub.register_terminal(6, MERCHANT_ICE, frames.ROLE_RIDE, "ride")
        ride = await asyncio.to_thread(ScriptedTerminal(broker.host, broker.port, 6, ride_key).connect)

        async def sync(terminal, held):
            before = len(terminal.downlinks(frames.T_TIME))
            terminal.publish(terminal.frame(frames.T_SYNC, frames.sync_body(0, 0, 0, prices=held)))
            await asyncio.to_thread(terminal.wait, lambda t: len(t.downlinks(frames.T_TIME)) > before)

        await sync(term, struct.pack(">HII", 0, 0, 0))          # a new booth: both, whole
        assert _prices_sent(term) == ([(MERCHANT_ICE, 2, 0, 1, 2)], [(MERCHANT_ICE, 1)])
        await sync(term, struct.pack(">HII", MERCHANT_ICE, 2, 1))   # current: nothing more
        await sync(term, b"")                                     # a T_SYNC that names no prices: none
        assert _prices_sent(term) == ([(MERCHANT_ICE, 2, 0, 1, 2)], [(MERCHANT_ICE, 1)])
        (chunk,) = term.downlinks(frames.T_PRICE_LIST)
        entries = price_list.parse_price_list(chunk.body)
        assert [price_list.decode_entry(entries.entries, 32 * i).price_cents for i in range(2)] == [101, 400]
        (sent_rules,) = term.downlinks(frames.T_DISCOUNTS)
        assert price_list.parse_discounts(sent_rules.body)[1].total_bp[TIER_GOLD] == 500

        await items.set_item(hub.storage, ADMIN, MERCHANT_ICE, 300, price_cents=450)     # version 3
        await hub.take_notice({notify.PRICES})                   # what the CLI's notice makes the hub do
        await asyncio.to_thread(term.wait, lambda t: len(t.downlinks(frames.T_PRICE_LIST)) == 2)
        assert _prices_sent(term)[0][-1] == (MERCHANT_ICE, 3, 0, 1, 2)
        await sync(ride, struct.pack(">HII", 0, 0, 0))          # a ride is not a booth: no price frames
        assert _prices_sent(ride) == ([], [])
        term.close()
        ride.close()
        await hub.stop()
    asyncio.run(asyncio.wait_for(scenario(), 120))
