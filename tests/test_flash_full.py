"""A terminal whose flash is full: the journal refuses and recovers, the wallet never raises (found by tests/vopr)."""

import pytest

from protocol.record import RECORD_SIZE
from terminal.journal import COMMITTED, PENDING, Journal, JournalFull
from terminal.state import TerminalState

from test_terminal_flow import Terminal as FlowTerminal
from test_terminal_flow import balance_of, new_card
from vopr.flash import FlashFiles


def _record(seq):
    return bytes([seq % 256]) * RECORD_SIZE


def test_a_full_flash_refuses_the_append_and_the_journal_takes_the_next_one(tmp_path):
    files = FlashFiles()
    flash = files.flash(str(tmp_path))
    with files.installed():
        journal = Journal(str(tmp_path / "journal"), RECORD_SIZE, 2048, 4)
        journal.append(1, 1001, _record(1))
        flash.full_writes = 2       # full for two writes: the append and whatever comes next
        for _ in range(2):
            with pytest.raises(JournalFull):
                journal.append(2, 1002, _record(2))
        journal.append(2, 1002, _record(2))     # room again: the journal is open and takes it
        flash.full_writes = 2
        for _ in range(2):
            with pytest.raises(JournalFull):
                journal.mark(2, COMMITTED)
        journal.mark(2, COMMITTED)
        journal.close()
        again = Journal(str(tmp_path / "journal"), RECORD_SIZE, 2048, 4)
        assert [(seq, status) for seq, status, _raw in again.unsynced(8)] == [] and again.last_seq() == 2
        assert [seq for seq, _raw in again.uncertain()] == [1]
        assert again.status(2) == COMMITTED


def test_a_debit_whose_commit_mark_meets_a_full_flash_is_approved_and_settled_on_the_next_read(tmp_path,
                                                                                              monkeypatch):
    flow = FlowTerminal(tmp_path)
    card = flow.tap(new_card(10000))
    mark = flow.journal.mark
    refused = []

    def mark_on_a_full_flash(seq, status):
        if not refused:
            refused.append(seq)
            raise JournalFull("flash full")
        return mark(seq, status)
    monkeypatch.setattr(flow.journal, "mark", mark_on_a_full_flash)
    result = flow.wallet.debit(500)
    assert result.ok and balance_of(card) == 9500
    assert flow.journal.status(result.seq) == PENDING       # durable, open: nothing uploads past it yet
    flow.tap(card)
    assert flow.wallet.balance().ok                          # the card's next read settles it
    assert flow.journal.status(result.seq) == COMMITTED


def test_an_up_counter_block_is_used_only_once_it_is_on_flash(tmp_path):
    files = FlashFiles()
    flash = files.flash(str(tmp_path))
    (tmp_path / "data").mkdir()
    with files.installed():
        state = TerminalState(str(tmp_path / "data"))
        flash.full_writes = 1
        with pytest.raises(OSError):
            state.next_up_counter()
        sent = state.next_up_counter()
        rebooted = TerminalState(str(tmp_path / "data"))
        assert rebooted.next_up_counter() > sent      # a frame counter is never used twice (SPEC.md §5.2)


def test_an_ack_that_finds_the_flash_full_is_taken_again_by_the_next_ack(tmp_path):
    files = FlashFiles()
    flash = files.flash(str(tmp_path))
    with files.installed():
        journal = Journal(str(tmp_path / "journal"), RECORD_SIZE, 2048, 4)
        for seq in (1, 2, 3):
            journal.append(seq, 1000 + seq, _record(seq))
            journal.mark(seq, COMMITTED)
        assert journal.depth() == 3
        flash.full_writes = 1
        with pytest.raises(OSError):
            journal.ack(3)          # the state file could not be written: nothing is acknowledged yet
        journal.ack(3)              # the hub's next ack
        assert journal.depth() == 0 and journal.unsynced(8) == []
        journal.close()
        assert Journal(str(tmp_path / "journal"), RECORD_SIZE, 2048, 4).depth() == 0
