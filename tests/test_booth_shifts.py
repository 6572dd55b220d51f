"""Staff shifts, the shift's totals and reversals at a booth (roles/pos.py, terminal/shift.py, terminal/reversal.py;
SPEC.md §4.14, §4.15) on SimBoard: the real RC522 driver on the virtual chip, the real journal.

A staff card tapped after 'D' opens its member's shift and tapped again closes it with the shift's totals;
each sale carries the shift's tag; digits then 'D' reverse that sale of the open shift, the staff card first.
"""

import asyncio
import json
from types import SimpleNamespace

import pytest

from protocol import card
from protocol import frames, hub_frames
from protocol import staff as S
from protocol.config import ROLE_POS
from protocol.record import KIND_DEBIT, KIND_REVERSAL, KIND_SALE_LINE, KIND_SHIFT, Record
from parkcard.domain import staff_shifts
from terminal import journal as jr
from terminal import shift as shift_module
from terminal.shift import Shift
from conftest import REPO
from sim.cards import card_balance, issued_card
from sim.chip_server import ChipServer
from test_booth_sales import booth as priced_booth
from test_booth_sales import last_record
from test_firmware_micropython import NOW, PARK, parse
from test_terminal_flow import Terminal, balance_of, fast_loops, new_card, until  # noqa: F401 - fast_loops: autouse

STAFF_NO, STAFF_UID = 100050, bytes.fromhex("5a6b7c8d")
OTHER_STAFF_NO = 100051
# The shift check's heap: the card stack, journal, blacklist and shift code take about 93 KB idle on the 64-bit
# unix port, a reversal about 18 KB above that (printed by the test with -s): 120k holds both with margin.
STAFF_HEAP = "120k"


def booth(tmp_path):
    """A booth with a price list that also takes keyed amounts (its flash under tmp_path, for rebooted())."""
    t = priced_booth(tmp_path, free_amount=True)
    t.board_path = tmp_path
    return t


def staff_card(card_no=STAFF_NO, uid=STAFF_UID):
    """A staff card as the desk issues it: no value, no payment permission, flag 2."""
    return new_card(0, card_no=card_no, uid=uid, flags=card.FLAG_STAFF, perms=0)


def records(t):
    """Every record the booth journalled, by seq."""
    return {seq: Record.decode(raw) for seq, _status, raw in t.journal.unsynced(64)}


def staff_tap(t, virtual):
    t.tap(virtual)
    asyncio.run(t.role.staff_tap())


def sell(t, keys, virtual):
    t.tap(virtual)
    t.keypad.feed(keys)
    return asyncio.run(t.role.sale_once())


def test_a_staff_card_opens_the_shift_and_every_sale_carries_its_tag(tmp_path):
    t = booth(tmp_path)
    staff = staff_card()
    staff_tap(t, staff)
    assert t.display.history[-2:] == [("No shift open", "Day 0 0.00"), ("Shift open", "Staff %d" % STAFF_NO)]
    opened = records(t)[1]
    assert (opened.kind, opened.card_no, S.shift_fields(opened)[:2]) == (KIND_SHIFT, STAFF_NO, (S.PHASE_OPEN, 1))
    assert t.journal.status(1) == jr.COMMITTED and balance_of(staff) == 0     # the staff card is not written
    result = sell(t, "350#", new_card(10000))
    assert result.ok and S.tag_of(last_record(t, result.seq)) == 1


def test_the_same_card_closes_the_shift_with_its_totals(tmp_path):
    t = booth(tmp_path)
    staff_tap(t, staff_card())
    visitor = new_card(10000)
    for keys in ("350#", "12C#"):
        assert sell(t, keys, visitor).ok
    staff_tap(t, staff_card())
    closing = records(t)[max(records(t))]
    phase, tag, totals, open_seq = S.shift_fields(closing)
    assert (closing.kind, phase, tag, open_seq) == (KIND_SHIFT, S.PHASE_CLOSE, 1, 1)
    assert totals == S.ShiftTotals(2, 1550, 0, 0)
    assert t.display.lines == ("Shift closed", "2 15.50")
    assert not t.role.shift.is_open()
    # The next shift takes the next tag; a sale with no shift open carries none.
    result = sell(t, "100#", visitor)
    assert S.tag_of(last_record(t, result.seq)) == S.TAG_NONE


def test_another_staff_card_cannot_close_someone_elses_shift(tmp_path):
    t = booth(tmp_path)
    staff_tap(t, staff_card())
    staff_tap(t, staff_card(OTHER_STAFF_NO, bytes.fromhex("5a6b7c8e")))
    assert t.display.lines == ("Shift open", "Staff %d" % STAFF_NO) and t.role.shift.is_open()
    assert [r.kind for r in records(t).values()] == [KIND_SHIFT]


def test_a_visitor_card_opens_no_shift_and_a_staff_card_pays_nothing(tmp_path):
    t = booth(tmp_path)
    staff_tap(t, new_card(10000))
    assert t.display.lines == ("REFUSED", "Not staff card") and t.journal.last_seq() == 0
    result = sell(t, "350#", staff_card())
    assert not result.ok and result.reason == "not_wallet" and t.journal.last_seq() == 0


def test_the_totals_key_shows_the_shift_and_the_day_from_flash(tmp_path):
    t = booth(tmp_path)
    visitor = new_card(10000)
    assert sell(t, "100#", visitor).ok          # before the shift: today's only
    staff_tap(t, staff_card())
    assert sell(t, "350#", visitor).ok
    again = Shift(t.board.data_dir() + "/shift")    # what a reboot reads back
    assert (again.totals, again.today(t.wallet.clock())) == (S.ShiftTotals(1, 350), S.ShiftTotals(2, 450))
    t.tap(visitor)
    t.keypad.feed("*")
    asyncio.run(t.role.staff_tap())
    assert ("Shift 1 3.50", "Day 2 4.50") in t.display.history


def test_a_booth_told_to_require_a_shift_refuses_sales_without_one(tmp_path):
    t = booth(tmp_path)
    t.app.runtime.sync.state = SimpleNamespace(save=lambda: None)   # the frame counter's save (terminal/state.py)
    t.role._on_shifts(frames.Frame(frames.T_SHIFTS, 12, 1, 0, hub_frames.shifts_body(True)))
    visitor = new_card(10000)
    result = sell(t, "350#", visitor)
    assert result is None and t.display.lines == ("Shift closed", "Tap staff card")
    assert t.journal.last_seq() == 0 and balance_of(visitor) == 10000
    staff_tap(t, staff_card())
    assert sell(t, "350#", visitor).ok


def reverse(t, seq, staff, customer):
    """Key seq then 'D': the staff card lies on the reader, the customer's card replaces it."""
    t.tap(staff)

    async def scenario():
        task = asyncio.create_task(t.role.reverse(seq))
        await until(lambda: t.display.lines[1] == "Tap card of sale" or task.done())
        t.tap(customer)     # (refused before the card is asked for: the task is done already)
        await task
    asyncio.run(scenario())


def shift_with_a_sale(tmp_path, keys):
    """A booth whose staff opened a shift and sold keys to a visitor: (booth, staff card, visitor, sale)."""
    t = booth(tmp_path)
    staff = staff_card()
    staff_tap(t, staff)
    visitor = new_card(10000)
    return t, staff, visitor, sell(t, keys, visitor)


def test_a_sale_of_the_open_shift_is_given_back_with_the_staff_card(tmp_path):
    t, staff, visitor, sale = shift_with_a_sale(tmp_path, "12C#")
    assert balance_of(visitor) == 8800
    reverse(t, sale.seq, staff, visitor)
    assert balance_of(visitor) == 10000 and t.display.lines == ("REVERSED 12.00", "Balance 100.00")
    rec = records(t)[sale.seq + 1]
    assert (rec.kind, rec.amount_cents, rec.balance_after_cents) == (KIND_REVERSAL, 1200, 10000)
    assert S.reversal_of(rec) == (sale.seq, STAFF_NO) and S.tag_of(rec) == 1
    assert t.journal.status(rec.seq) == jr.COMMITTED
    assert t.role.shift.totals == S.ShiftTotals(1, 1200, 1, 1200)
    reverse(t, sale.seq, staff, visitor)        # once only
    assert t.display.history[-1] == ("Sale %d" % sale.seq, "Reversed already") and balance_of(visitor) == 10000


def test_a_reversal_needs_the_shifts_staff_card_and_the_card_that_paid(tmp_path):
    t = booth(tmp_path)
    staff = staff_card()
    staff_tap(t, staff)
    visitor, other = new_card(10000), new_card(5000, card_no=501, uid=bytes.fromhex("04a1b2c3d4e5f7"))
    sale = sell(t, "350#", visitor)
    t.tap(staff_card(OTHER_STAFF_NO, bytes.fromhex("5a6b7c8e")))
    asyncio.run(t.role.reverse(sale.seq))
    assert t.display.lines == ("REFUSED", "Not shift staff")
    reverse(t, sale.seq, staff, other)
    assert t.display.lines[0] == "REFUSED" and balance_of(other) == 5000
    assert [r.kind for r in records(t).values()] == [KIND_SHIFT, KIND_SALE_LINE, KIND_DEBIT]   # no reversal


def test_no_reversal_once_the_shift_is_closed(tmp_path):
    t, staff, visitor, sale = shift_with_a_sale(tmp_path, "350#")
    staff_tap(t, staff)
    asyncio.run(t.role.reverse(sale.seq))
    assert t.display.lines == ("No sale %d" % sale.seq, "in this shift") and balance_of(visitor) == 10000 - 350


@pytest.mark.parametrize("keep,landed", [(16, True), (0, False)])
def test_a_reversal_whose_write_is_uncertain_credits_the_card_once(tmp_path, keep, landed):
    t, staff, visitor, sale = shift_with_a_sale(tmp_path, "350#")
    t.tap(staff)

    async def scenario():
        task = asyncio.create_task(t.role.reverse(sale.seq))
        await until(lambda: t.display.lines[1] == "Tap card of sale")
        t.tap(visitor)
        t.field.tear_next_write(keep)       # the card leaves during the write: landed (16) or not (0)
        await until(lambda: t.display.lines == ("REFUSED", "Tap card again"))
        assert balance_of(visitor) == (10000 if landed else 9650)
        t.tap(visitor)
        await task
    asyncio.run(scenario())
    assert t.display.lines == ("REVERSED 3.50", "Balance 100.00") and balance_of(visitor) == 10000
    kinds = [(r.kind, t.journal.status(r.seq)) for r in records(t).values() if r.kind == KIND_REVERSAL]
    assert kinds == ([(KIND_REVERSAL, jr.COMMITTED)] if landed else [(KIND_REVERSAL, jr.VOIDED),
                                                                      (KIND_REVERSAL, jr.COMMITTED)])
    assert t.role.shift.totals.reversals == 1


@pytest.mark.micropython
def test_a_shift_with_a_reversal_runs_on_micropython_within_the_booth_heap(micropython, tmp_path):
    staff = issued_card(PARK, STAFF_UID, card.CardInfo(900, flags=card.FLAG_STAFF, perms=0), 0, NOW)
    wallet = issued_card(PARK, bytes.fromhex("04a1b2c3d4e5f6"), card.CardInfo(901, perms=0xFFFF), 10000, NOW)
    with ChipServer([staff, wallet]) as chip:
        proc = micropython(REPO / "tests" / "mpy" / "staff_shift_check.py", tmp_path, chip.port, heap=STAFF_HEAP,
                           timeout=300)
        slot = card_balance(PARK, chip.cards[1])
    got = parse(proc.stdout)
    print(proc.stdout)
    assert (got["staff_ok"], got["sale_ok"], got["tag"], got["reversal_ok"]) == ("1", "1", "1", "1"), proc.stdout
    assert got["recovered"] == "1" and got["totals"] == "1,450"     # the sale the power cut kept off the counters
    assert got["closing_totals"] == "1,450,1,450" and slot.balance_cents == 10000
    assert 0 < int(got["heap_peak_above_idle"]) < 32 * 1024


class PowerCut(Exception):
    """The booth loses power here: nothing after this point runs."""


def rebooted(t):
    """The same booth started again on the flash it left: journal, shift file, price list (what runtime.py reads)."""
    again = Terminal(t.board_path)
    again.app.runtime = t.app.runtime
    again.app.runtime.board = again.board
    again.app._role = None
    again.role = again.app.role(ROLE_POS)
    return again


def hub_shifts(t):
    """The booth's shifts as the hub's staff report builds them from its applied records (domain/staff_shifts.py)."""
    kept = [(12, seq, raw) for seq, status, raw in t.journal.unsynced(64) if status == jr.COMMITTED]
    return staff_shifts.shifts(kept)


def test_the_approved_screen_is_up_before_the_counters_reach_flash(tmp_path):
    t = booth(tmp_path)
    staff_tap(t, staff_card())
    on_flash = []
    show = t.display.show

    def seen(line1, line2=""):
        if line1.startswith("APPROVED"):
            on_flash.append(Shift(t.board.data_dir() + "/shift").totals)    # what the flash holds at that moment
        show(line1, line2)
    t.display.show = seen
    assert sell(t, "350#", new_card(10000)).ok
    assert on_flash == [S.ShiftTotals()]        # the visitor saw "approved" before the write
    assert Shift(t.board.data_dir() + "/shift").totals == S.ShiftTotals(1, 350)     # and it was written after


def test_a_power_cut_between_the_journal_and_the_counters_loses_no_sale_from_the_totals(tmp_path):
    t, staff, visitor, sale = shift_with_a_sale(tmp_path, "350#")
    assert sale.ok

    def cut():
        raise PowerCut()
    t.role.shift.save = cut         # the sale is committed in the journal; the counters never reach flash
    with pytest.raises(PowerCut):
        sell(t, "12C#", visitor)
    assert Shift(t.board.data_dir() + "/shift").totals == S.ShiftTotals(1, 350)     # flash missed the second sale
    t = rebooted(t)
    assert t.role.shift.totals == S.ShiftTotals(2, 1550)
    assert t.role.shift.today(t.wallet.clock()) == S.ShiftTotals(2, 1550)
    second = t.journal.last_seq()
    reverse(t, second, staff, visitor)      # the recovered sale is a sale of the shift like any other
    assert t.display.lines == ("REVERSED 12.00", "Balance 96.50")
    staff_tap(t, staff)
    done, _unshifted = hub_shifts(t)
    assert [(s.terminal, s.hub) for s in done] == [(S.ShiftTotals(2, 1550, 1, 1200), S.ShiftTotals(2, 1550, 1, 1200))]
    assert staff_shifts.differences(done) == []


def test_a_power_cut_after_a_shift_record_opens_the_shift_at_start(tmp_path):
    t = booth(tmp_path)
    t.role.shift.save = lambda: (_ for _ in ()).throw(PowerCut())
    with pytest.raises(PowerCut):
        staff_tap(t, staff_card())
    t = rebooted(t)
    assert t.role.shift.is_open() and (t.role.shift.staff_no, t.role.shift.tag) == (STAFF_NO, 1)


def test_any_sale_of_the_shift_can_be_reversed_however_many_came_after(tmp_path):
    t = booth(tmp_path)
    staff = staff_card()
    before = sell(t, "100#", new_card(10000))      # sold before the shift: not the shift's
    staff_tap(t, staff)
    visitor = new_card(10000)
    first = sell(t, "350#", visitor)
    for _ in range(40):         # many sales after it, each in the shift's sales file
        assert sell(t, "10#", visitor).ok
    reverse(t, first.seq, staff, visitor)
    assert t.display.lines == ("REVERSED 3.50", "Balance %s" % "96.00")
    reverse(t, before.seq, staff, visitor)
    assert t.display.history[-1] == ("No sale %d" % before.seq, "in this shift")
    assert t.role.shift.totals == S.ShiftTotals(41, 750, 1, 350)


def test_today_is_the_parks_day_from_the_offset_the_hub_sent(tmp_path):
    t = booth(tmp_path)
    t.app.runtime.sync.state = SimpleNamespace(save=lambda: None)
    shanghai = (8 * 3600, 0, 8 * 3600)
    t.role._on_staff(frames.Frame(frames.T_STAFF, 12, 1, 0, hub_frames.staff_body(shanghai, [])))
    visitor = new_card(10000)
    assert sell(t, "100#", visitor).ok          # 09:46 UTC, 17:46 in the park
    t.wallet.clock = lambda: NOW + 7 * 3600     # 16:46 UTC the same UTC day, 00:46 the park's next day
    assert sell(t, "200#", visitor).ok
    assert t.role.shift.today(NOW + 7 * 3600) == S.ShiftTotals(1, 200)


def test_only_staff_of_the_booths_merchant_open_a_shift_once_the_hub_sent_its_list(tmp_path):
    t = booth(tmp_path)
    t.app.runtime.sync.state = SimpleNamespace(save=lambda: None)
    staff_tap(t, staff_card())      # no list yet (an older hub): any staff card, as before
    staff_tap(t, staff_card())
    t.role._on_staff(frames.Frame(frames.T_STAFF, 12, 1, 0, hub_frames.staff_body((0, 0, 0), [OTHER_STAFF_NO])))
    seqs = t.journal.last_seq()
    staff_tap(t, staff_card())
    assert t.display.lines == ("REFUSED", "Not staff here") and not t.role.shift.is_open()
    assert t.journal.last_seq() == seqs     # nothing journalled
    staff_tap(t, staff_card(OTHER_STAFF_NO, bytes.fromhex("5a6b7c8e")))
    assert t.role.shift.is_open() and t.role.shift.staff_no == OTHER_STAFF_NO
    assert Shift(t.board.data_dir() + "/shift").allows(OTHER_STAFF_NO)     # kept in flash for the next start


def test_a_shift_file_from_before_the_counters_named_a_seq_recounts_nothing(tmp_path):
    t = booth(tmp_path)
    staff_tap(t, staff_card())
    assert sell(t, "350#", new_card(10000)).ok
    folder = t.board.data_dir() + "/shift"
    older = json.loads(open(folder + "/shift.json").read())
    del older["counted"]            # as the firmware before it wrote the file
    with open(folder + "/shift.json", "w") as f:
        f.write(json.dumps(older))
    t = rebooted(t)
    assert t.role.shift.totals == S.ShiftTotals(1, 350)     # the sale is in the counters once, not twice
    assert t.role.shift.counted_seq == t.journal.last_seq()


def test_a_sale_torn_off_the_sales_file_leaves_the_others_found(tmp_path):
    t, staff, visitor, first = shift_with_a_sale(tmp_path, "350#")
    with open(t.board.data_dir() + "/shift/sales", "ab") as f:
        f.write(b"\x00\x00\x00")    # a power cut during the next sale's append
    t = rebooted(t)
    second = sell(t, "100#", visitor)
    reverse(t, second.seq, staff, visitor)
    assert t.display.lines == ("REVERSED 1.00", "Balance 96.50")
    reverse(t, first.seq, staff, visitor)
    assert t.display.lines == ("REVERSED 3.50", "Balance 100.00")


def test_a_shift_that_gave_back_its_most_reversals_sends_the_next_to_the_desk(tmp_path):
    t, staff, visitor, sale = shift_with_a_sale(tmp_path, "350#")
    t.role.shift.reversed = [100000 + i for i in range(shift_module.REVERSALS_MAX)]   # as many given back already
    reverse(t, sale.seq, staff, visitor)
    assert t.display.history[-1] == ("Reversals full", "Close the shift") and balance_of(visitor) == 10000 - 350


def test_a_staff_list_sent_again_unchanged_writes_nothing_to_flash(tmp_path):
    t = booth(tmp_path)
    saves = []
    t.app.runtime.sync.state = SimpleNamespace(save=lambda: saves.append("state"))
    kept = t.role.shift.save
    t.role.shift.save = lambda: (saves.append("shift"), kept())
    shanghai = (8 * 3600, 0, 8 * 3600)
    body = hub_frames.staff_body(shanghai, [STAFF_NO, OTHER_STAFF_NO])
    t.role._on_staff(frames.Frame(frames.T_STAFF, 12, 1, 0, body))
    assert saves == ["state", "shift"]      # a new list: the counter is spent before the list is kept
    t.role._on_staff(frames.Frame(frames.T_STAFF, 12, 2, 0, body))     # every sync's answer sends it again
    assert saves == ["state", "shift"]
    t.role._on_staff(frames.Frame(frames.T_STAFF, 12, 3, 0, hub_frames.staff_body(shanghai, [STAFF_NO])))
    assert saves[2:] == ["state", "shift"] and not t.role.shift.allows(OTHER_STAFF_NO)
    t.role._on_staff(frames.Frame(frames.T_STAFF, 12, 4, 0, hub_frames.staff_body((0, 0, 0), [STAFF_NO])))
    assert saves[4:] == ["state", "shift"] and t.role.shift.zone == [0, 0, 0]   # the zone alone changed
    t.role._on_shifts(frames.Frame(frames.T_SHIFTS, 12, 5, 0, hub_frames.shifts_body(False)))
    assert len(saves) == 6 and not t.role.shift.required
    t.role._on_shifts(frames.Frame(frames.T_SHIFTS, 12, 6, 0, hub_frames.shifts_body(True)))
    assert saves[6:] == ["state", "shift"] and t.role.shift.required
