"""The gate role on the real RC522 driver against the virtual chip: tickets, anti-passback, timed exits, tearing."""

import pytest

from protocol import card, frames, ticket as t
from protocol import card_issue
from protocol.record import (KIND_DEBIT, KIND_ENTRY, KIND_EXIT, KIND_EXIT_FINISHED, KIND_LOCK, KIND_REFUSAL, KIND_TIMED_EXIT, Record,
                             passage_fields, record_mac_for)
from sim.board import RecordingRelay
from sim.cards import card_balance, issued_card
from sim.mfrc522 import VirtualMFRC522
from sim.mifare import Field
from terminal import journal as jr
from terminal import wallet as w
from terminal.blacklist import Blacklist
from terminal.journal import Journal
from terminal.rc522 import RC522
from terminal.roles.gate import REFUSAL_REPEAT_S, Gate

PARK = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32)
TERMINAL_KEY = b"K" * 32
NOW = 1795600000 - 1795600000 % 86400 + 10 * 3600     # 10:00 UTC
TODAY = card.day_of(NOW)
UID = bytes.fromhex("04a1b2c3d4e5f6")
DAY_PASS, COUNT_CARD, PERIOD, TIMED = 1, 2, 3, 4


def gate_config(direction=t.DIRECTION_ENTRY, **kw):
    products = [t.GateProduct(DAY_PASS), t.GateProduct(COUNT_CARD), t.GateProduct(PERIOD),
                t.GateProduct(TIMED, included_min=60, interval_min=30, interval_price_cents=500)]
    return t.GateConfig(version=1, direction=direction, area=kw.pop("area", 1), products=products, **kw)


class Rig:
    """One gate on a virtual reader, with a real journal and blacklist."""

    def __init__(self, tmp_path, direction=t.DIRECTION_ENTRY, terminal_id=31, **kw):
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.field = Field()
        self.chip = VirtualMFRC522(self.field)
        reader = RC522(self.chip.spi, self.chip.cs)
        reader.init()
        self.now = NOW
        self.journal = Journal(str(tmp_path / "journal"), 56, segment_bytes=4096, max_segments=8)
        self.blacklist = Blacklist(str(tmp_path / "blacklist"))
        self.wallet = w.Wallet(reader, self.journal, self.blacklist, terminal_id, record_mac_for(TERMINAL_KEY),
                               lambda: self.now)
        self.wallet.park_keys = card.booth_keys(PARK)
        self.wallet.config = frames.Config(version=3, role=frames.ROLE_GATE, category=2)
        self.wallet.last_hub_contact_s = NOW
        self.wallet.blacklist_updated_s = NOW
        self.relay = RecordingRelay()
        self.gate = Gate(self.wallet, self.relay)
        self.gate.config = gate_config(direction, **kw)

    def tap(self, virtual, direction=0):
        for c in list(self.field.cards):
            self.field.remove(c)
        self.field.add(virtual)
        return self.gate.tap(direction)

    def records(self):
        """Every record in the journal not yet uploaded, decoded."""
        return [Record.decode(raw, record_mac_for(TERMINAL_KEY)) for _seq, _st, raw in self.journal.unsynced(100)]


def ticket_card(product=DAY_PASS, ticket_type=t.TYPE_DAY, entries=t.ENTRIES_UNLIMITED, from_day=TODAY,
                to_day=TODAY, day_limit=0, balance=10000, area=1, uid=UID, card_no=700):
    info = card.CardInfo(card_no, expiry_day=TODAY + 300, issue_day=TODAY)
    vc = issued_card(PARK, uid, info, balance, NOW - 86400)
    keys = card.CardKeys(PARK, uid)
    tinfo = t.TicketInfo(product, ticket_type, area, from_day, to_day, day_limit, serial=42)
    for block, data in t.sale_blocks(keys, tinfo, entries, NOW - 86400).items():
        vc.blocks[block][:] = data
    return vc


def ticket_state(vc):
    keys = card.CardKeys(PARK, vc.uid)
    slots = t.decode_slots(bytes(vc.blocks[13]), bytes(vc.blocks[14]), keys)
    return t.pick_slot(slots)[0]


def test_a_day_pass_enters_once_then_anti_passback_refuses_until_it_exits(tmp_path):
    rig = Rig(tmp_path, t.DIRECTION_BOTH)
    vc = ticket_card()
    first = rig.tap(vc)
    assert first.ok and first.direction == t.DIRECTION_ENTRY and rig.relay.openings == [3000]
    assert ticket_state(vc).inside
    again = rig.tap(vc, t.DIRECTION_ENTRY)
    assert (again.ok, again.reason) == (False, t.REASON_ALREADY_INSIDE) and len(rig.relay.openings) == 1
    rig.now += 600
    out = rig.tap(vc)
    assert out.ok and out.direction == t.DIRECTION_EXIT and not ticket_state(vc).inside
    rig.now += 60
    assert rig.tap(vc).ok   # re-entry after exit
    kinds = [(r.kind, passage_fields(r)[0]) for r in rig.records()]
    assert kinds == [(KIND_ENTRY, 0), (KIND_REFUSAL, t.REASON_ALREADY_INSIDE), (KIND_EXIT, 0), (KIND_ENTRY, 0)]
    recs = rig.records()
    assert [r.card_counter for r in recs] == [2, 2, 3, 4] and recs[3].card_mac == ticket_state(vc).mac
    assert all(r.item == DAY_PASS and r.card_no == 700 for r in recs)


def test_the_wallet_is_untouched_by_untimed_passages(tmp_path):
    rig = Rig(tmp_path, t.DIRECTION_BOTH)
    vc = ticket_card()
    before = card_balance(PARK, vc)
    assert rig.tap(vc).ok and rig.tap(vc, t.DIRECTION_EXIT).ok
    after = card_balance(PARK, vc)
    assert (after.counter, after.balance_cents) == (before.counter, before.balance_cents)


@pytest.mark.parametrize("from_day,to_day,reason", [(TODAY + 1, TODAY + 2, t.REASON_NOT_YET_VALID),
                                                    (TODAY - 3, TODAY - 1, t.REASON_EXPIRED)])
def test_a_ticket_outside_its_days_is_refused_with_the_reason(tmp_path, from_day, to_day, reason):
    rig = Rig(tmp_path)
    result = rig.tap(ticket_card(from_day=from_day, to_day=to_day))
    assert (result.ok, result.reason) == (False, reason) and rig.relay.openings == []
    [rec] = rig.records()
    assert rec.kind == KIND_REFUSAL and passage_fields(rec)[0] == reason


def test_an_exit_without_an_entry_is_refused(tmp_path):
    rig = Rig(tmp_path, t.DIRECTION_EXIT)
    assert rig.tap(ticket_card()).reason == t.REASON_NOT_INSIDE


def test_a_count_card_counts_down_keeps_its_day_limit_and_runs_out(tmp_path):
    rig = Rig(tmp_path, t.DIRECTION_BOTH)
    vc = ticket_card(COUNT_CARD, t.TYPE_COUNT, entries=3, from_day=0, to_day=0, day_limit=2)
    assert rig.tap(vc, t.DIRECTION_ENTRY).entries_left == 2
    assert rig.tap(vc, t.DIRECTION_EXIT).ok
    assert rig.tap(vc, t.DIRECTION_ENTRY).entries_left == 1
    assert rig.tap(vc, t.DIRECTION_EXIT).ok
    assert rig.tap(vc, t.DIRECTION_ENTRY).reason == t.REASON_DAY_LIMIT
    rig.now += 86400        # the next park day: the day's count starts again
    assert rig.tap(vc, t.DIRECTION_ENTRY).entries_left == 0
    assert rig.tap(vc, t.DIRECTION_EXIT).ok
    assert rig.tap(vc, t.DIRECTION_ENTRY).reason == t.REASON_NO_ENTRIES


def test_the_daily_reset_lets_a_card_left_inside_enter_the_next_day(tmp_path):
    rig = Rig(tmp_path, reset_s=4 * 3600)
    vc = ticket_card(PERIOD, t.TYPE_PERIOD, from_day=TODAY, to_day=TODAY + 30)
    assert rig.tap(vc).ok
    rig.now += 3600
    assert rig.tap(vc).reason == t.REASON_ALREADY_INSIDE
    rig.now = NOW - 10 * 3600 + 86400 + 4 * 3600 + 1     # just after the next day's reset at 04:00
    assert rig.tap(vc).ok


def test_reentry_after_minutes_and_never(tmp_path):
    rig = Rig(tmp_path / "m", reentry=t.REENTRY_AFTER_MINUTES, reentry_min=30)
    vc = ticket_card()
    assert rig.tap(vc).ok
    rig.now += 29 * 60
    assert rig.tap(vc).reason == t.REASON_ALREADY_INSIDE
    rig.now += 60
    assert rig.tap(vc).ok
    rig = Rig(tmp_path / "n", t.DIRECTION_BOTH, reentry=t.REENTRY_NEVER)
    vc = ticket_card()
    assert rig.tap(vc).ok and rig.tap(vc).ok       # in, then out by the card's state
    assert rig.tap(vc, t.DIRECTION_ENTRY).reason == t.REASON_NO_REENTRY


def test_a_product_or_area_the_gate_does_not_take_and_a_card_without_ticket(tmp_path):
    rig = Rig(tmp_path)
    assert rig.tap(ticket_card(product=99)).reason == t.REASON_NOT_HERE
    assert rig.tap(ticket_card(area=2)).reason == t.REASON_NOT_HERE
    info = card.CardInfo(701, expiry_day=TODAY + 300, issue_day=TODAY)
    bare = issued_card(PARK, bytes.fromhex("a1b2c3d4"), info, 500, NOW)
    result = rig.tap(bare)
    assert result.reason == t.REASON_NO_TICKET and result.card_no == 701


def wallet_state(vc, slot=None):
    """(counter, balance, locked, MAC) of a wallet slot: the card's in force unless slot is given."""
    slot = slot or card_balance(PARK, vc)
    return slot.counter, slot.balance_cents, slot.locked, bytes(slot.mac)


def test_a_blacklisted_card_is_locked_at_the_gate_like_at_a_booth_and_refused_after(tmp_path):
    rig = Rig(tmp_path)
    rig.blacklist.apply_delta(0, 1, [700], [])
    vc = ticket_card()
    before = card_balance(PARK, vc)
    assert rig.tap(vc).reason == t.REASON_BLACKLISTED and rig.relay.openings == []
    locked = card_balance(PARK, vc)
    assert locked.locked and locked.balance_cents == before.balance_cents and locked.counter == before.counter + 1
    rig.now += REFUSAL_REPEAT_S
    assert rig.tap(vc).reason == t.REASON_BLACKLISTED      # locked already: refused, not written again
    assert wallet_state(vc) == wallet_state(vc, locked)
    rec = rig.records()
    assert [(r.kind, r.card_counter) for r in rec] == [(KIND_REFUSAL, 1), (KIND_LOCK, locked.counter),
                                                       (KIND_REFUSAL, 1)]
    assert rec[1].card_mac == locked.mac and passage_fields(rec[2])[0] == t.REASON_BLACKLISTED
    rig.blacklist.apply_delta(1, 2, [], [700])              # off the list again: the lock on the card still holds
    rig.now += REFUSAL_REPEAT_S
    assert rig.tap(vc).reason == t.REASON_BLACKLISTED and wallet_state(vc) == wallet_state(vc, locked)


def test_a_blacklisted_card_with_no_ticket_is_locked_at_the_gate_too(tmp_path):
    rig = Rig(tmp_path)
    rig.blacklist.apply_delta(0, 1, [701], [])
    bare = issued_card(PARK, b"\x04\x0b\x0c\x0d", card.CardInfo(701, expiry_day=TODAY + 300, issue_day=TODAY), 500,
                       NOW - 86400)
    assert rig.tap(bare).reason == t.REASON_BLACKLISTED
    assert card_balance(PARK, bare).locked and [r.kind for r in rig.records()] == [KIND_REFUSAL, KIND_LOCK]


def test_a_returned_card_on_the_blacklist_is_refused_but_not_locked_at_the_gate(tmp_path):
    rig = Rig(tmp_path)
    rig.blacklist.apply_delta(0, 1, [700], [])
    vc = ticket_card()
    info = card.CardInfo(700, expiry_day=TODAY + 300, issue_day=TODAY, flags=card.FLAG_RETURNED)
    vc.blocks[card.INFO_BLOCK][:] = info.encode(card.CardKeys(PARK, vc.uid))
    before = card_balance(PARK, vc)
    assert rig.tap(vc).reason == t.REASON_BLACKLISTED and wallet_state(vc) == wallet_state(vc, before)
    assert [r.kind for r in rig.records()] == [KIND_REFUSAL]


def test_a_timed_exit_debits_the_time_over_the_included_hour(tmp_path):
    rig = Rig(tmp_path, t.DIRECTION_BOTH)
    vc = ticket_card(TIMED, t.TYPE_TIMED, from_day=0, to_day=0, balance=1200)
    assert rig.tap(vc).ok
    rig.now += 60 * 60 + 31 * 60        # 1 h included, then two started half hours
    out = rig.tap(vc)
    assert out.ok and out.charge_cents == 1000 and out.balance_cents == 200
    assert card_balance(PARK, vc).balance_cents == 200 and not ticket_state(vc).inside
    exit_, debit = rig.records()[1:]        # the exit first, naming its debit's wallet counter (SPEC.md §3.13)
    assert (debit.kind, debit.amount_cents, debit.item, debit.balance_after_cents) == (KIND_DEBIT, 1000, TIMED, 200)
    assert (exit_.kind, exit_.amount_cents) == (KIND_TIMED_EXIT, 1000)
    assert ticket_state(vc).pay_counter == debit.card_counter & 0xFF == card_balance(PARK, vc).counter & 0xFF


def test_a_timed_exit_the_wallet_cannot_cover_is_sent_to_the_desk(tmp_path):
    rig = Rig(tmp_path, t.DIRECTION_BOTH)
    vc = ticket_card(TIMED, t.TYPE_TIMED, from_day=0, to_day=0, balance=400)
    assert rig.tap(vc).ok
    rig.now += 2 * 3600
    out = rig.tap(vc)
    assert (out.ok, out.reason, out.charge_cents) == (False, t.REASON_PAY_AT_DESK, 1000)
    assert card_balance(PARK, vc).balance_cents == 400 and ticket_state(vc).inside
    assert [r.kind for r in rig.records()] == [KIND_ENTRY, KIND_REFUSAL] and len(rig.relay.openings) == 1


def test_a_timed_exit_inside_the_included_time_is_free(tmp_path):
    rig = Rig(tmp_path, t.DIRECTION_BOTH)
    vc = ticket_card(TIMED, t.TYPE_TIMED, from_day=0, to_day=0, balance=0)
    assert rig.tap(vc).ok
    rig.now += 59 * 60
    out = rig.tap(vc)
    assert out.ok and out.charge_cents == 0
    assert [r.kind for r in rig.records()] == [KIND_ENTRY, KIND_TIMED_EXIT]


@pytest.mark.parametrize("keep", [0, 1, 8, 15])
def test_a_torn_ticket_write_keeps_the_old_state_and_the_retap_settles_it(tmp_path, keep):
    rig = Rig(tmp_path)
    vc = ticket_card()
    rig.field.add(vc)
    rig.field.tear_next_write(keep, vc)
    first = rig.gate.tap()
    assert (first.ok, first.reason) == (False, w.UNCERTAIN) and rig.relay.openings == []
    assert not ticket_state(vc).inside           # the torn block fails its MAC: the old state is in force
    assert rig.journal.status(1) == jr.UNCERTAIN
    again = rig.tap(vc)
    assert again.ok and ticket_state(vc).inside and rig.relay.openings == [3000]
    statuses = [rig.journal.status(s) for s in (1, 2)]
    assert statuses == [jr.VOIDED, jr.COMMITTED]


def test_a_ticket_write_that_landed_unacknowledged_opens_on_the_retap_without_a_second_entry(tmp_path):
    rig = Rig(tmp_path)
    vc = ticket_card(COUNT_CARD, t.TYPE_COUNT, entries=5, from_day=0, to_day=0)
    rig.field.add(vc)
    rig.field.tear_next_write(16, vc)            # all 16 bytes land, the acknowledgement is lost
    first = rig.gate.tap()
    assert first.reason == w.UNCERTAIN
    again = rig.tap(vc)
    assert again.ok and again.entries_left == 4 and ticket_state(vc).entries_left == 4
    assert rig.journal.status(1) == jr.COMMITTED and len(rig.records()) == 1


def _timed_exit_commands(tmp_path):
    rig = Rig(tmp_path / "count", t.DIRECTION_BOTH)
    vc = ticket_card(TIMED, t.TYPE_TIMED, from_day=0, to_day=0, balance=1200)
    assert rig.tap(vc).ok
    rig.now += 2 * 3600
    rig.chip.log.clear()
    assert rig.tap(vc).ok
    return [entry[0] for entry in rig.chip.log]


def _pulled_timed_exit(tmp_path, n):
    """A card inside on a timed ticket, pulled at card command n of its exit at gate 31: (rig, card, result)."""
    rig = Rig(tmp_path, t.DIRECTION_BOTH)
    vc = ticket_card(TIMED, t.TYPE_TIMED, from_day=0, to_day=0, balance=1200)
    assert rig.tap(vc).ok
    rig.now += 2 * 3600 - 60         # two started half hours over the included hour, a minute before a third
    rig.field.remove(vc)
    rig.field.add(vc)               # in the field afresh (the entry halted it), then pulled at command n
    rig.field.remove_after(n)
    return rig, vc, rig.gate.tap()


def _journal(rig):
    return [(status, Record.decode(raw)) for _seq, status, raw in rig.journal.unsynced(100)]


def _check_once(rigs, vc, n):
    """Charged once across every gate's journal, the card as the records say, every record settled or open."""
    assert card_balance(PARK, vc).balance_cents == 200, n          # charged exactly once
    state = ticket_state(vc)
    assert not state.inside and state.charge_landed(card_balance(PARK, vc).counter), n
    records = [entry for rig in rigs for entry in _journal(rig)]
    debits = [r for status, r in records if r.kind == KIND_DEBIT and status == jr.COMMITTED]
    assert [r.amount_cents for r in debits] == [1000], (n, records)
    assert debits[0].card_mac == card_balance(PARK, vc).mac and debits[0].card_counter & 0xFF == state.pay_counter, n
    on_card = [r for status, r in records
               if r.kind == KIND_TIMED_EXIT and r.card_mac == state.mac and status != jr.VOIDED]
    assert len(on_card) == 1, n          # the exit on the card is one record, committed or open at its gate
    open_debits = [r for status, r in records if r.kind == KIND_DEBIT and status not in (jr.COMMITTED, jr.VOIDED)]
    # An open debit at the first gate holds the counter the landed one took: the hub voids it (SPEC.md §4.8).
    assert all(r.card_counter == debits[0].card_counter and r.card_mac != debits[0].card_mac
               for r in open_debits), n
    return records


def test_a_card_pulled_at_every_command_of_a_timed_exit_is_charged_once_and_agrees_with_the_journal(tmp_path):
    commands = _timed_exit_commands(tmp_path)
    assert commands.count(0xA0) == 2        # two WRITEs: the ticket state, then the wallet slot
    for n in range(1, len(commands) + 2):
        rig, vc, first = _pulled_timed_exit(tmp_path / ("n%d" % n), n)
        for _ in range(3):          # the visitor taps again until the gate lets them out
            if first.ok:
                break
            first = rig.tap(vc)
        assert first.ok, n
        _check_once([rig], vc, n)
        statuses = {s: rig.journal.status(s) for s in range(1, rig.journal.last_seq() + 1)}
        assert all(s in (jr.COMMITTED, jr.VOIDED) for s in statuses.values()), (n, statuses)
        assert rig.relay.openings == [3000, 3000], n


@pytest.mark.parametrize("direction", [t.DIRECTION_EXIT, t.DIRECTION_BOTH])
def test_a_timed_exit_torn_at_every_command_is_finished_at_another_gate_and_charged_once(tmp_path, direction):
    commands = _timed_exit_commands(tmp_path)
    for n in range(1, len(commands) + 2):
        first_gate, vc, first = _pulled_timed_exit(tmp_path / ("n%d" % n), n)
        other = Rig(tmp_path / ("other%d" % n), direction, terminal_id=32)
        other.now = first_gate.now + 20
        first_gate.field.remove(vc)
        exit_on_card = not ticket_state(vc).inside
        out = other.tap(vc)
        assert out.ok and other.relay.openings == [3000], (n, first, out)
        if first.ok:        # the tap was over before the card left: the other gate only opens again
            assert out.charge_cents == 0, n
        _check_once([first_gate, other], vc, n)
        theirs = [(st, r) for st, r in _journal(other) if r.kind != KIND_DEBIT]
        collected = [r.amount_cents for st, r in _journal(other) if r.kind == KIND_DEBIT and st == jr.COMMITTED]
        assert [st for st, _r in theirs] == [jr.COMMITTED], n
        if exit_on_card:    # the other gate finishes the exit on the card: it collects the charge if still owed
            assert theirs[0][1].kind == KIND_EXIT_FINISHED and theirs[0][1].card_mac == ticket_state(vc).mac, n
            assert [theirs[0][1].amount_cents] == (collected or [0]), n
        else:               # nothing of the exit reached the card: the other gate makes its own
            assert theirs[0][1].kind == KIND_TIMED_EXIT and collected == [1000], n


def test_a_timed_exit_owing_its_charge_is_collected_at_an_entry_gate_before_the_entry(tmp_path):
    first_gate, vc, first = _pulled_timed_exit(tmp_path / "first", _timed_exit_commands(tmp_path).index(0xA0) + 3)
    assert first.reason == w.UNCERTAIN and card_balance(PARK, vc).balance_cents == 1200   # the exit is on the card
    assert ticket_state(vc).charge_landed(card_balance(PARK, vc).counter) is False
    entry = Rig(tmp_path / "entry", t.DIRECTION_ENTRY, terminal_id=33)
    entry.now = first_gate.now + 60
    first_gate.field.remove(vc)
    out = entry.tap(vc)
    assert out.ok and out.charge_cents == 1000 and ticket_state(vc).inside
    assert card_balance(PARK, vc).balance_cents == 200
    assert [r.kind for _st, r in _journal(entry)] == [KIND_DEBIT, KIND_EXIT_FINISHED, KIND_ENTRY]


def test_a_timed_exit_owing_more_than_the_wallet_holds_is_sent_to_the_desk_at_any_gate(tmp_path):
    first_gate, vc, first = _pulled_timed_exit(tmp_path / "first", _timed_exit_commands(tmp_path).index(0xA0) + 3)
    card_bal = card_balance(PARK, vc)
    assert first.reason == w.UNCERTAIN
    other = Rig(tmp_path / "other", t.DIRECTION_EXIT, terminal_id=32)
    other.now = first_gate.now + 60
    first_gate.field.remove(vc)
    other.wallet.config = frames.Config(version=3, role=frames.ROLE_GATE, category=2, tx_cap_cents=500)
    out = other.tap(vc)
    assert (out.ok, out.reason, out.charge_cents) == (False, t.REASON_PAY_AT_DESK, 1000)
    assert card_balance(PARK, vc).mac == card_bal.mac and other.relay.openings == []


def test_in_shanghai_a_card_left_inside_is_outside_after_local_midnight_offline(tmp_path):
    rig = Rig(tmp_path, utc_offset_s=8 * 3600, next_offset_s=8 * 3600)     # a zone without DST: no change
    vc = ticket_card(PERIOD, t.TYPE_PERIOD, from_day=0, to_day=0)
    midnight = TODAY * 86400 + 86400 - 8 * 3600                             # 00:00 in Shanghai, 16:00 UTC
    rig.now = midnight - 600
    assert rig.tap(vc).ok
    rig.now = midnight - 1
    assert rig.tap(vc).reason == t.REASON_ALREADY_INSIDE                   # 23:59:59: still the same park day
    rig.now = midnight
    assert rig.tap(vc).ok and ticket_state(vc).day_entries == 1            # a new day, counted afresh


def test_the_autumn_change_repeating_the_reset_hour_does_not_reopen_the_day_before(tmp_path):
    # Berlin, reset 02:30: UTC+2 until 2026-10-25 01:00 UTC, then UTC+1 (02:00-03:00 comes twice)
    change = 1792890000
    rig = Rig(tmp_path, reset_s=9000, utc_offset_s=7200, next_change_s=change, next_offset_s=3600)
    vc = ticket_card(PERIOD, t.TYPE_PERIOD, from_day=0, to_day=0, day_limit=1)
    rig.wallet.last_hub_contact_s = rig.wallet.blacklist_updated_s = change
    rig.now = change - 3600 - 1                      # 01:59:59 CEST on the 25th: still the 24th's park day
    assert rig.tap(vc).ok
    rig.now = change - 1800 + 60                     # 02:31 CEST: the 25th began at the first 02:30
    assert rig.tap(vc).ok and ticket_state(vc).day_entries == 1
    rig.now = change + 1800 + 60                     # 02:31 again, now CET: the same park day, its limit holds
    assert rig.tap(vc).reason == t.REASON_ALREADY_INSIDE
    assert rig.tap(vc, t.DIRECTION_EXIT).ok
    assert rig.tap(vc, t.DIRECTION_ENTRY).reason == t.REASON_DAY_LIMIT


def test_a_card_pulled_at_the_ticket_sectors_authentication_is_a_failed_read_not_a_card_without_ticket(tmp_path):
    commands = _timed_exit_commands(tmp_path)
    ticket_auth = [i for i, c in enumerate(commands) if c == 0x60][1] + 1     # the second AUTH: sector 3
    rig, vc, first = _pulled_timed_exit(tmp_path / "pulled", ticket_auth)
    assert (first.ok, first.reason) == (False, w.READ_FAILED)
    assert [r.kind for r in rig.records()] == [KIND_ENTRY]          # no refusal journalled for it
    again = rig.tap(vc)
    assert again.ok and again.charge_cents == 1000


def test_an_entry_pulled_at_every_card_command_leaves_one_committed_entry_that_is_the_card_state(tmp_path):
    rig = Rig(tmp_path / "count")
    vc = ticket_card(COUNT_CARD, t.TYPE_COUNT, entries=5, from_day=0, to_day=0)
    rig.field.add(vc)
    assert rig.gate.tap().ok
    commands = len(rig.chip.log)
    for n in range(1, commands + 2):
        rig = Rig(tmp_path / ("n%d" % n))
        vc = ticket_card(COUNT_CARD, t.TYPE_COUNT, entries=5, from_day=0, to_day=0)
        rig.field.add(vc)
        rig.field.remove_after(n)
        first = rig.gate.tap()
        assert rig.relay.openings == ([3000] if first.ok else []), n
        again = first if first.ok else rig.tap(vc)
        assert again.ok and ticket_state(vc).inside and ticket_state(vc).entries_left == 4, n
        entries = [(st, r) for st, r in _journal(rig) if r.kind == KIND_ENTRY]
        committed = [r for st, r in entries if st == jr.COMMITTED]
        assert len(committed) == 1 and committed[0].card_mac == ticket_state(vc).mac, (n, entries)
        assert all(st in (jr.COMMITTED, jr.VOIDED) for st, _r in entries), n
        assert not [r for _st, r in _journal(rig) if r.kind == KIND_REFUSAL], n


def _owing_exit(tmp_path):
    """A timed exit written on the card whose debit never landed (the card left at the wallet write): (gate, card)."""
    first_gate, vc, first = _pulled_timed_exit(tmp_path / "first", _timed_exit_commands(tmp_path).index(0xA0) + 3)
    assert first.reason == w.UNCERTAIN and card_balance(PARK, vc).balance_cents == 1200
    assert ticket_state(vc).charge_landed(card_balance(PARK, vc).counter) is False
    first_gate.field.remove(vc)
    return first_gate, vc


def _booth_sale(tmp_path, vc, now, amount_cents=300):
    """A booth (which never reads sector 3) takes amount_cents off the card: the wallet counter moves on."""
    booth = Rig(tmp_path / "booth", terminal_id=60)
    booth.now = now
    booth.field.add(vc)
    sold = booth.wallet.debit(amount_cents)
    booth.field.remove(vc)
    assert sold.ok, sold
    return booth


def test_a_charge_still_owed_at_the_nightly_reset_is_collected_the_next_day(tmp_path):
    first_gate, vc = _owing_exit(tmp_path)
    entry = Rig(tmp_path / "entry", t.DIRECTION_ENTRY, terminal_id=33)
    entry.now = entry.wallet.last_hub_contact_s = entry.wallet.blacklist_updated_s = first_gate.now + 86400
    out = entry.tap(vc)
    assert out.ok and out.charge_cents == 1000 and ticket_state(vc).inside           # the reset kept the debt
    assert card_balance(PARK, vc).balance_cents == 200
    assert [r.kind for _st, r in _journal(entry)] == [KIND_DEBIT, KIND_EXIT_FINISHED, KIND_ENTRY]
    assert _journal(entry)[1][1].amount_cents == 1000
    entry.now += 1800           # inside the included hour: free
    done = entry.tap(vc, t.DIRECTION_EXIT)
    assert done.ok and done.charge_cents == 0 and card_balance(PARK, vc).balance_cents == 200   # taken once


def test_a_charge_owed_from_an_earlier_day_is_collected_before_the_entry_at_a_gate_of_both_ways(tmp_path):
    first_gate, vc = _owing_exit(tmp_path)
    both = Rig(tmp_path / "both", t.DIRECTION_BOTH, terminal_id=33)
    both.now = both.wallet.last_hub_contact_s = both.wallet.blacklist_updated_s = first_gate.now + 86400
    out = both.tap(vc)
    assert out.ok and out.direction == t.DIRECTION_ENTRY and out.charge_cents == 1000 and ticket_state(vc).inside
    assert card_balance(PARK, vc).balance_cents == 200


@pytest.mark.parametrize("amount_cents", [150, -1])
def test_a_booth_or_desk_write_before_a_torn_exits_debit_neither_loses_nor_doubles_the_charge(tmp_path,
                                                                                           amount_cents):
    first_gate, vc = _owing_exit(tmp_path)
    if amount_cents > 0:
        _booth_sale(tmp_path, vc, first_gate.now + 30, amount_cents)       # it takes the charge's wallet counter
    else:       # a desk's top-up of 5.00 takes it: the balance rises
        keys = card.CardKeys(PARK, vc.uid)
        before = card_balance(PARK, vc)
        other = 5 if before.counter % 2 == 0 else 6
        vc.blocks[other][:] = before.next(before.balance_cents + 500, before.spend_day, before.day_spend_cents,
                                          1).encode(keys, other)
    paid_before = card_balance(PARK, vc).balance_cents
    other = Rig(tmp_path / "other", t.DIRECTION_EXIT, terminal_id=32)
    other.now = first_gate.now + 60
    out = other.tap(vc)
    assert out.ok and out.charge_cents == 1000 and card_balance(PARK, vc).balance_cents == paid_before - 1000
    assert [(r.kind, r.amount_cents) for _st, r in _journal(other)] == [(KIND_DEBIT, 1000), (KIND_EXIT_FINISHED, 1000)]
    again = Rig(tmp_path / "again", t.DIRECTION_EXIT, terminal_id=34)
    again.now = other.now + 30
    out = again.tap(vc)
    assert out.ok and out.charge_cents == 0 and card_balance(PARK, vc).balance_cents == paid_before - 1000


def test_a_charge_that_landed_before_a_booth_sale_is_not_taken_again(tmp_path):
    rig = Rig(tmp_path / "gate", t.DIRECTION_BOTH)
    vc = ticket_card(TIMED, t.TYPE_TIMED, from_day=0, to_day=0, balance=3000)
    assert rig.tap(vc).ok
    rig.now += 2 * 3600 - 60
    assert rig.tap(vc).charge_cents == 1000
    rig.field.remove(vc)
    _booth_sale(tmp_path, vc, rig.now + 30, 1000)        # a sale of the charge's amount, one write after it
    other = Rig(tmp_path / "other", t.DIRECTION_EXIT, terminal_id=32)
    other.now = rig.now + 60
    out = other.tap(vc)
    assert out.ok and out.charge_cents == 0 and card_balance(PARK, vc).balance_cents == 1000


def test_an_exit_written_but_not_walked_opens_again_at_an_exit_gate_of_its_area_for_five_minutes(tmp_path):
    rig = Rig(tmp_path / "in", t.DIRECTION_ENTRY)
    vc = ticket_card(area=0)        # a ticket for every area
    assert rig.tap(vc).ok
    out = Rig(tmp_path / "out", t.DIRECTION_EXIT, terminal_id=32)
    out.now = rig.now + 3600
    assert out.tap(vc).ok and not ticket_state(vc).inside      # the card says outside: the turnstile did not turn
    state = ticket_state(vc)
    other = Rig(tmp_path / "other", t.DIRECTION_EXIT, terminal_id=34)
    other.now = out.now + 120
    again = other.tap(vc)
    assert again.ok and again.direction == t.DIRECTION_EXIT and other.relay.openings == [3000]
    assert ticket_state(vc).mac == state.mac                     # nothing written: the card already says outside
    assert [(r.kind, r.amount_cents, r.card_counter, r.card_mac) for r in other.records()] == [
        (KIND_EXIT_FINISHED, 0, state.counter, state.mac)]
    elsewhere = Rig(tmp_path / "elsewhere", t.DIRECTION_EXIT, terminal_id=35, area=2)
    elsewhere.now = out.now + 120
    assert elsewhere.tap(vc).reason == t.REASON_NOT_INSIDE       # another area's exit: it was never inside there
    other.now = out.now + 300
    assert other.tap(vc).reason == t.REASON_NOT_INSIDE           # five minutes on: the visitor goes to the desk
    both = Rig(tmp_path / "both", t.DIRECTION_BOTH, terminal_id=36)
    both.now = out.now + 60
    assert both.tap(vc).direction == t.DIRECTION_ENTRY           # a card outside enters at a gate of both ways


def test_a_collection_after_a_booth_sale_pulled_at_every_command_is_charged_once(tmp_path):
    def owing(path):
        first_gate, vc = _owing_exit(path)
        _booth_sale(path, vc, first_gate.now + 30, 150)
        collector = Rig(path / "collector", t.DIRECTION_EXIT, terminal_id=32)
        collector.now = first_gate.now + 60
        return collector, vc
    collector, vc = owing(tmp_path / "count")
    collector.field.add(vc)
    assert collector.gate.tap().charge_cents == 1000
    commands = len(collector.chip.log)
    for n in range(1, commands + 2):
        collector, vc = owing(tmp_path / ("n%d" % n))
        collector.field.add(vc)
        collector.field.remove_after(n)
        first = collector.gate.tap()
        collector.field.remove(vc)
        last = Rig(tmp_path / ("last%d" % n), t.DIRECTION_EXIT, terminal_id=34)
        last.now = collector.now + 30
        out = last.tap(vc)
        assert out.ok, (n, first, out)
        assert card_balance(PARK, vc).balance_cents == 50, n            # 12.00 − 1.50 at the booth − 10.00 once
        # Every debit not voided claims the wallet counter after the booth's: the hub books one of them (§4.8).
        booth_counter = card_balance(PARK, vc).counter - 1
        debits = [r for rig in (collector, last) for st, r in _journal(rig) if r.kind == KIND_DEBIT
                  and st != jr.VOIDED]
        assert debits and {(r.card_counter, r.amount_cents) for r in debits} == {(booth_counter + 1, 1000)}, n
