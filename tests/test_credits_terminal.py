"""Pending credits on terminals: the list in flash, delivery at a tap, exactly once across offline terminals."""

import pytest

from protocol import card, credits, hub_credits
from protocol.errors import Malformed, ProtocolError
from protocol.record import KIND_CREDIT, KIND_DEBIT, Record, record_mac_for
from sim.cards import card_balance
from terminal import journal as jr
from terminal.cards import classic_credits
from terminal.credits import Credits
from test_wallet import NOW, PARK, TERMINAL_KEY, Rig, new_card


class _Frame:
    def __init__(self, body):
        self.body = body


def give(rig, tmp_path, version, entries, name="credits"):
    """Load a credits list as the hub sends it (T_CREDITS chunks) into the rig's terminal."""
    store = Credits(str(tmp_path / name))
    for body in hub_credits.credits_bodies(version, entries):
        store.on_frame(_Frame(body))
    rig.wallet.credits = store
    return store


def records(rig):
    return [Record.decode(raw, record_mac_for(TERMINAL_KEY)) for _seq, _st, raw in rig.journal.unsynced(50)]


def marker_of(vc):
    keys = card.CardKeys(PARK, vc.uid)
    slot = card_balance(PARK, vc)
    return credits.read_markers(bytes(vc.blocks[8]), bytes(vc.blocks[9]), keys, slot.counter)[0]


def card_leaves_after_the_marker(monkeypatch, rig, vc):
    """The rig's next credit write: the marker lands, then the card leaves before the wallet write."""
    back_to_wallet = classic_credits.reopen

    def card_leaves(session, state):
        rig.field.remove(vc)
        monkeypatch.setattr(classic_credits, "reopen", back_to_wallet)
        back_to_wallet(session, state)
    monkeypatch.setattr(classic_credits, "reopen", card_leaves)


def test_a_sale_tap_delivers_the_cards_credits_first_in_a_write_of_their_own(tmp_path):
    rig = Rig(tmp_path / "t")
    give(rig, tmp_path, 1, [(499, 1, 7), (500, 1, 1000), (500, 2, 250), (501, 1, 9)])
    vc = rig.tap(new_card(card_no=500, balance=10000))
    result = rig.wallet.debit(300)
    assert result.ok and result.balance_cents == 10000 + 1250 - 300
    credit, sale = records(rig)
    assert (credit.kind, credit.amount_cents, credit.balance_after_cents, credit.item, credit.discount_cents,
            credit.card_counter) == (KIND_CREDIT, 1250, 11250, 2, 0, 2)
    assert (sale.kind, sale.card_counter, sale.balance_after_cents) == (KIND_DEBIT, 3, 10950)
    assert marker_of(vc) == 2
    # The next tap at the same terminal finds nothing above the marker.
    rig.tap(vc)
    assert rig.wallet.debit(100).balance_cents == 10850
    assert [r.kind for r in records(rig)] == [KIND_CREDIT, KIND_DEBIT, KIND_DEBIT]


def test_a_card_without_credits_costs_no_sector_2_read(tmp_path):
    rig = Rig(tmp_path / "t")
    give(rig, tmp_path, 1, [(777, 1, 100)])
    rig.tap(new_card(card_no=500))
    rig.chip.log.clear()
    assert rig.wallet.debit(100).ok
    firsts = [entry[0] for entry in rig.chip.log]
    assert firsts.count(0x60) + firsts.count(0x61) == 1


def test_two_offline_terminals_credit_the_card_once(tmp_path):
    a = Rig(tmp_path / "a")
    b = Rig(tmp_path / "b")
    entries = [(500, 1, 2000)]
    give(a, tmp_path, 4, entries, "ca")
    give(b, tmp_path, 4, entries, "cb")
    vc = a.tap(new_card(card_no=500, balance=100))
    assert a.wallet.balance().balance_cents == 2100
    b.tap(vc)
    assert b.wallet.debit(50).balance_cents == 2050
    assert [r.kind for r in records(a)] == [KIND_CREDIT]
    assert [r.kind for r in records(b)] == [KIND_DEBIT]


def test_a_card_torn_between_marker_and_wallet_gets_the_credit_at_its_next_tap(tmp_path, monkeypatch):
    a = Rig(tmp_path / "a")
    b = Rig(tmp_path / "b")
    b.wallet.terminal_id = 13
    give(a, tmp_path, 4, [(500, 1, 2000)], "ca")
    give(b, tmp_path, 4, [(500, 1, 2000)], "cb")
    vc = a.tap(new_card(card_no=500, balance=100))
    card_leaves_after_the_marker(monkeypatch, a, vc)
    result = a.wallet.debit(50)
    assert not result.ok and result.reason == "read_failed"
    assert a.journal.status(1) == jr.UNCERTAIN
    assert card_balance(PARK, vc).balance_cents == 100
    # The marker on the card names credit 1, but its wallet write never landed: it does not count.
    assert marker_of(vc) == 0
    b.tap(vc)
    assert b.wallet.debit(50).balance_cents == 2050
    a.tap(vc)
    assert a.wallet.debit(50).balance_cents == 2000      # nothing delivered twice; A's record voided
    assert a.journal.status(1) == jr.VOIDED
    [credit_b, _sale] = records(b)
    assert (credit_b.kind, credit_b.card_counter, credit_b.amount_cents) == (KIND_CREDIT, 2, 2000)


def test_a_blacklisted_or_full_card_is_not_credited(tmp_path):
    rig = Rig(tmp_path / "t")
    give(rig, tmp_path, 1, [(500, 1, 100), (600, 1, 5)])
    rig.tap(new_card(card_no=600, balance=card.BALANCE_MAX_CENTS - 1))
    assert rig.wallet.balance().balance_cents == card.BALANCE_MAX_CENTS - 1
    rig.blacklist.apply_delta(0, 1, [500], [])
    rig.tap(new_card(card_no=500, balance=100))
    assert rig.wallet.balance().balance_cents == 100
    assert records(rig) == []


def test_a_list_out_of_order_keeps_the_list_in_force(tmp_path):
    store = Credits(str(tmp_path / "c"))
    first = hub_credits.credits_bodies(1, [(5, 1, 10)])[0]
    store.on_frame(_Frame(first))
    bodies = hub_credits.credits_bodies(2, [(n, 1, 10) for n in range(1, 600)])
    store.on_frame(_Frame(bodies[0]))
    with pytest.raises(ProtocolError):
        store.on_frame(_Frame(bodies[2]))
    assert (store.version, store.due(5, 0)) == (1, (10, 1))
    again = Credits(str(tmp_path / "c"))     # after a restart: the same list in force
    assert (again.version, again.due(5, 0), again.due(6, 0)) == (1, (10, 1), (0, 0))


def test_bad_credit_bodies_are_malformed():
    with pytest.raises(Malformed):
        hub_credits.credits_bodies(1, [(5, 2, 10), (5, 1, 10)])
    with pytest.raises(Malformed):
        credits.parse_credits(hub_credits.credits_bodies(1, [(5, 1, 10)])[0][:-1])
    with pytest.raises(Malformed):
        hub_credits.encode_entry(5, 1, 0)


# The debit half runs in 100 KB (tests/test_firmware_micropython.py); a tap that delivers credits also
# holds terminal/credits.py (about 4 KB, imported with the first list) and the list's file: 106 KB is the
# smallest heap it passes in (bench/bench_heap.py), 108 KB leaves a margin.
CREDIT_TAP_HEAP = "108k"


def credit_card():
    """Card 42 with 5000.00, as tests/mpy/credit_tap_check.py expects it."""
    from sim.cards import issued_card
    return issued_card(PARK, b"\x04\x11\x22\x33\x44\x55\x66", card.CardInfo(42, perms=0xFFFF), 500000, NOW)


def credit_taps(micropython, tmp_path, heap):
    from conftest import REPO
    from sim.chip_server import ChipServer
    from test_firmware_micropython import parse
    with ChipServer([credit_card()]) as chip:
        proc = micropython(REPO / "tests" / "mpy" / "credit_tap_check.py", tmp_path, chip.port, credits.CREDITS_MAX,
                           heap=heap, timeout=300)
        return parse(proc.stdout), chip.cards[0]


@pytest.mark.micropython
def test_credits_land_at_a_sale_tap_on_micropython_with_the_longest_list(micropython, tmp_path):
    got, vc = credit_taps(micropython, tmp_path, CREDIT_TAP_HEAP)
    assert (got["credits_version"], got["credits_count"]) == ("7", str(credits.CREDITS_MAX))
    assert (got["first_ok"], got["first_balance"]) == ("1", str(500000 + 2000 - 100))
    assert (got["second_ok"], got["second_balance"]) == ("1", str(500000 + 2000 - 200))
    assert got["records"] == "15:2000:2,1:100:0,1:100:0"
    assert card_balance(PARK, vc).balance_cents == 500000 + 2000 - 200
    assert marker_of(vc) == 2


@pytest.mark.micropython
def test_a_tap_that_delivers_credits_needs_under_32_kb_above_idle(micropython, tmp_path):
    # A roomy heap: no collection inside the tap, so all it allocates, garbage included, is counted.
    got, _vc = credit_taps(micropython, tmp_path, "256k")
    assert got["first_ok"] == "1"
    assert 0 < int(got["heap_credit_tap_above_idle"]) < 32 * 1024
