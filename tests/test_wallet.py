"""The wallet on the real RC522 driver against the virtual chip, with a real journal and blacklist."""

import pytest

from protocol import card, card_issue, frames
from protocol.record import KIND_ATTEMPT, KIND_DEBIT, KIND_LOCK, Record, record_mac_for
from sim.cards import card_balance, issued_card
from sim.mfrc522 import VirtualMFRC522
from sim.mifare import Field
from terminal import journal as jr
from terminal import wallet as w
from terminal.blacklist import Blacklist
from terminal.journal import Journal
from terminal.rc522 import RC522

PARK = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32)
TERMINAL_KEY = b"K" * 32
NOW = 1795600000
TODAY = card.day_of(NOW)
UID7 = bytes.fromhex("04a1b2c3d4e5f6")
UID4 = bytes.fromhex("a1b2c3d4")


class Rig:
    """One terminal's wallet on a virtual reader."""

    def __init__(self, tmp_path, category=1, **cfg):
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.field = Field()
        self.chip = VirtualMFRC522(self.field)
        reader = RC522(self.chip.spi, self.chip.cs)
        reader.init()
        self.now = NOW
        self.journal = Journal(str(tmp_path / "journal"), 56, segment_bytes=4096, max_segments=8)
        self.blacklist = Blacklist(str(tmp_path / "blacklist"))
        self.wallet = w.Wallet(reader, self.journal, self.blacklist, 12, record_mac_for(TERMINAL_KEY),
                               lambda: self.now)
        self.wallet.park_keys = PARK
        self.wallet.config = frames.Config(version=3, category=category, **cfg)
        self.wallet.last_hub_contact_s = NOW
        self.wallet.blacklist_updated_s = NOW

    def tap(self, virtual):
        """Put a card on the reader (a fresh tap)."""
        for c in list(self.field.cards):
            self.field.remove(c)
        self.field.add(virtual)
        return virtual


def new_card(uid=UID7, balance=10000, card_no=500, **info):
    fields = dict(tier=0, flags=0, expiry_day=TODAY + 30, perms=0xFFFF, issue_day=TODAY, deposit_cents=0)
    fields.update(info)
    return issued_card(PARK, uid, card.CardInfo(card_no, **fields), balance, NOW - 86400)


@pytest.mark.parametrize("uid", [UID4, UID7])
def test_debit_takes_value_and_journals_a_verified_record(tmp_path, uid):
    rig = Rig(tmp_path)
    vc = rig.tap(new_card(uid))
    result = rig.wallet.debit(250, item=4)
    assert result.ok and result.balance_cents == 9750 and result.seq == 1
    slot = card_balance(PARK, vc)
    assert (slot.balance_cents, slot.counter, slot.day_spend_cents, slot.last_terminal) == (9750, 2, 250, 12)
    assert rig.journal.status(1) == jr.COMMITTED
    [(seq, status, raw)] = rig.journal.unsynced(10)
    rec = Record.decode(raw, record_mac_for(TERMINAL_KEY))
    assert (rec.kind, rec.amount_cents, rec.balance_after_cents, rec.card_counter, rec.item, rec.uid) == (
        KIND_DEBIT, 250, 9750, 2, 4, uid)
    assert rec.card_mac == slot.mac


def test_debit_costs_one_auth_three_reads_one_write(tmp_path):
    rig = Rig(tmp_path)
    rig.tap(new_card())
    rig.chip.log.clear()
    assert rig.wallet.debit(100).ok
    firsts = [entry[0] for entry in rig.chip.log]
    assert firsts.count(0x60) + firsts.count(0x61) == 1
    assert firsts.count(0x30) == 3
    assert firsts.count(0xA0) == 1


def test_consecutive_debits_alternate_slots_and_keep_counting(tmp_path):
    rig = Rig(tmp_path)
    vc = new_card()
    for i in range(5):
        rig.tap(vc)
        assert rig.wallet.debit(100).ok
    slot = card_balance(PARK, vc)
    assert (slot.balance_cents, slot.counter, slot.day_spend_cents) == (9500, 6, 500)
    assert rig.journal.last_seq() == 5


def test_balance_tap_writes_nothing(tmp_path):
    rig = Rig(tmp_path)
    vc = rig.tap(new_card(balance=4321))
    before = [bytes(b) for b in vc.blocks]
    result = rig.wallet.balance()
    assert result.ok and result.balance_cents == 4321 and result.card_no == 500
    assert [bytes(b) for b in vc.blocks] == before
    assert rig.journal.last_seq() == 0


@pytest.mark.parametrize("setup,reason", [
    (dict(balance=100), w.INSUFFICIENT),
    (dict(expiry_day=TODAY - 1), w.EXPIRED),
    (dict(perms=0b1), w.PERMISSION),
    (dict(flags=card.FLAG_RETURNED), w.RETURNED),
    (dict(flags=card.FLAG_ADMIN), w.NOT_WALLET),
])
def test_refusals_from_the_card(tmp_path, setup, reason):
    rig = Rig(tmp_path)
    vc = rig.tap(new_card(**setup))
    before = [bytes(b) for b in vc.blocks]
    result = rig.wallet.debit(250)
    assert not result.ok and result.reason == reason
    assert [bytes(b) for b in vc.blocks] == before
    assert rig.journal.last_seq() == 0


@pytest.mark.parametrize("amount", [0, -1, card.BALANCE_MAX_CENTS + 1])
def test_an_amount_out_of_range_is_refused_before_touching_the_card(tmp_path, amount):
    rig = Rig(tmp_path)
    rig.tap(new_card(balance=card.BALANCE_MAX_CENTS))
    before = rig.field.commands
    result = rig.wallet.debit(amount)
    assert not result.ok and result.reason == w.BAD_AMOUNT
    assert rig.field.commands == before and rig.journal.last_seq() == 0


def test_caps_and_staleness(tmp_path):
    rig = Rig(tmp_path, tx_cap_cents=1000, daily_cap_cents=1500, max_offline_s=3600, blacklist_max_age_s=7200)
    vc = new_card()
    rig.tap(vc)
    assert rig.wallet.debit(1001).reason == w.OVER_TX_CAP
    rig.tap(vc)
    assert rig.wallet.debit(1000).ok
    rig.tap(vc)
    assert rig.wallet.debit(600).reason == w.OVER_DAILY_CAP
    rig.now += 86400  # the daily spend resets on a new day ...
    rig.wallet.last_hub_contact_s = rig.wallet.blacklist_updated_s = rig.now
    rig.tap(vc)
    assert rig.wallet.debit(600).ok
    rig.now += 3601  # ... and a terminal offline too long stops taking money
    rig.tap(vc)
    assert rig.wallet.debit(100).reason == w.STALE


Y2000 = 946684800  # where the clock restarts after a power cut, until the hub sets it


@pytest.mark.parametrize("limits", [dict(max_offline_s=3600), dict(blacklist_max_age_s=7200)],
                         ids=["max_offline", "blacklist_max_age"])
def test_a_clock_behind_the_last_hub_contact_is_stale(tmp_path, limits):
    rig = Rig(tmp_path, **limits)
    vc = rig.tap(new_card())
    rig.now = Y2000 + 60  # now - last contact is negative: it must not pass as "just in touch"
    before = [bytes(b) for b in vc.blocks]
    assert rig.wallet.debit(100).reason == w.STALE
    assert [bytes(b) for b in vc.blocks] == before and rig.journal.last_seq() == 0
    rig.now = NOW - 2  # a clock a little behind the hub's (drift, whole seconds) still serves
    rig.tap(vc)
    assert rig.wallet.debit(100).ok


def test_a_final_record_pokes_the_uploader(tmp_path):
    rig = Rig(tmp_path)
    seen = []
    rig.wallet.on_record = lambda: seen.append(rig.journal.status(rig.journal.last_seq()))
    rig.tap(new_card())
    assert rig.wallet.debit(100).ok
    assert seen == [jr.COMMITTED]  # after the mark: the uploader finds the record at once


def test_tampered_card_is_refused_as_bad_mac(tmp_path):
    rig = Rig(tmp_path)
    vc = new_card()
    vc.blocks[5][3] ^= 0x01   # slot A balance bits flipped: the only valid slot is gone
    rig.tap(vc)
    assert rig.wallet.debit(100).reason == w.BAD_MAC
    vc2 = new_card(card_no=501)
    vc2.blocks[4][0] ^= 0x01  # card info forged
    rig.tap(vc2)
    assert rig.wallet.debit(100).reason == w.BAD_MAC
    # a balance tap refuses it the same way and releases it: its last command is HLTA
    rig.tap(vc2)
    assert rig.wallet.balance().reason == w.BAD_MAC
    assert rig.chip.log[-1][0] == 0x50
    assert rig.journal.last_seq() == 0


def test_blacklisted_card_is_refused_and_locked(tmp_path):
    rig = Rig(tmp_path)
    rig.blacklist.apply_delta(0, 1, [500], [])
    vc = rig.tap(new_card())
    result = rig.wallet.debit(100)
    assert not result.ok and result.reason == w.BLACKLISTED
    slot = card_balance(PARK, vc)
    assert slot.locked and slot.balance_cents == 10000
    [(seq, status, raw)] = rig.journal.unsynced(10)
    assert Record.decode(raw).kind == KIND_LOCK and status == jr.COMMITTED
    # Locked on the card: refused even by a terminal whose blacklist does not have it yet,
    # and every attempt is journalled for the hub (once a minute per card), writing nothing.
    rig.blacklist.apply_delta(1, 2, [], [500])
    before = [bytes(b) for b in vc.blocks]
    for _ in range(3):
        rig.tap(vc)
        assert rig.wallet.debit(100).reason == w.BLACKLISTED
    rig.now += w.ATTEMPT_REPEAT_S
    rig.tap(vc)
    assert rig.wallet.debit(100).reason == w.BLACKLISTED
    assert [bytes(b) for b in vc.blocks] == before
    attempts = [Record.decode(raw) for _s, _st, raw in rig.journal.unsynced(10)][1:]
    assert [(r.kind, r.card_counter, r.amount_cents) for r in attempts] == [(KIND_ATTEMPT, slot.counter, 0)] * 2


def test_journal_full_refuses_before_touching_the_card(tmp_path):
    rig = Rig(tmp_path)
    rig.journal = Journal(str(tmp_path / "small"), 56, segment_bytes=512, max_segments=2)
    rig.wallet.journal = rig.journal
    vc = new_card(balance=100000)
    approved = 0
    for _ in range(50):
        rig.tap(vc)
        result = rig.wallet.debit(10)
        if not result.ok:
            assert result.reason == w.JOURNAL_FULL
            break
        approved += 1
    else:
        pytest.fail("journal never filled")
    assert card_balance(PARK, vc).balance_cents == 100000 - 10 * approved
    assert len(rig.journal.unsynced(100)) == approved


def _debit_commands(tmp_path):
    """The first byte of each card command one debit sends, in order."""
    rig = Rig(tmp_path / "count")
    rig.tap(new_card())
    rig.chip.log.clear()
    assert rig.wallet.debit(250).ok
    return [entry[0] for entry in rig.chip.log]


def test_card_pulled_at_every_step_leaves_old_or_new_and_journal_agrees(tmp_path):
    commands = _debit_commands(tmp_path)
    assert commands[0] == 0x26 and commands[-1] == 0x50  # REQA first, HLTA last
    write = commands.index(0xA0)     # the WRITE's first phase; its 16 data bytes are the next command
    for n in range(1, len(commands) + 2):
        rig = Rig(tmp_path / ("n%d" % n))
        vc = rig.tap(new_card())
        rig.field.remove_after(n)
        first = rig.wallet.debit(250)
        balance_after_pull = card_balance(PARK, vc).balance_cents
        assert balance_after_pull in (10000, 9750), n
        rig.tap(vc)  # the visitor taps again
        check = rig.wallet.balance()
        assert check.ok and check.balance_cents == balance_after_pull
        statuses = [rig.journal.status(s) for s in range(1, rig.journal.last_seq() + 1)]
        assert all(s in (jr.COMMITTED, jr.VOIDED) for s in statuses), (n, statuses)
        committed = statuses.count(jr.COMMITTED)
        assert committed == (1 if balance_after_pull == 9750 else 0), (n, statuses, first)
        if n == 1:
            expected = (False, w.NO_CARD)        # REQA unanswered: nothing in the field
        elif n <= write:
            expected = (False, w.READ_FAILED)    # gone during select, auth or a read: nothing journalled
        elif n <= write + 2:
            expected = (False, w.UNCERTAIN)      # gone during the WRITE: its outcome is unknown until a re-tap
        else:
            expected = (True, None)              # the write was acknowledged; gone during HLTA or not at all
        assert (first.ok, first.reason) == expected, n


@pytest.mark.parametrize("keep", range(0, 17))
def test_torn_write_resolves_on_retap(tmp_path, keep):
    rig = Rig(tmp_path)
    vc = rig.tap(new_card())
    rig.field.tear_next_write(keep)
    result = rig.wallet.debit(250)
    assert not result.ok and result.reason == w.UNCERTAIN
    assert rig.journal.status(1) == jr.UNCERTAIN
    rig.tap(vc)
    after = rig.wallet.balance()
    expect = 9750 if keep == 16 else 10000
    assert after.balance_cents == expect
    assert rig.journal.status(1) == (jr.COMMITTED if keep == 16 else jr.VOIDED)
    # and the next debit builds on whichever state is in force
    rig.tap(vc)
    assert rig.wallet.debit(50).balance_cents == expect - 50


# -- the purse rules and the card session apart ---------------------------------------------


def test_purse_rules_need_no_reader_and_apply_in_spec_order():
    from terminal import purse
    cfg = frames.Config(version=3, category=1, tx_cap_cents=500, daily_cap_cents=800)
    info = card.CardInfo(7, expiry_day=TODAY - 1, perms=0xFFFF)
    slot = card.WalletSlot(counter=9, balance_cents=300, day_spend_cents=700, spend_day=TODAY)
    # Expired, over both caps and short of money at once: the first rule of SPEC.md §3.6 names it.
    assert purse.refusal(info, slot, 600, cfg, False, NOW, NOW, NOW) == purse.EXPIRED
    info.expiry_day = 0
    assert purse.refusal(info, slot, 600, cfg, False, NOW, NOW, NOW) == purse.OVER_TX_CAP
    assert purse.refusal(info, slot, 200, cfg, False, NOW, NOW, NOW) == purse.OVER_DAILY_CAP
    assert purse.refusal(info, slot, 100, cfg, True, NOW, NOW, NOW) == purse.BLACKLISTED
    assert purse.refusal(info, slot, 100, cfg, False, NOW, NOW, NOW) is None
    after = purse.debited(slot, 100, NOW, 12)
    assert (after.counter, after.balance_cents, after.day_spend_cents, after.last_terminal) == (10, 200, 800, 12)
    tomorrow = purse.debited(slot, 100, NOW + 86400, 12)
    assert (tomorrow.day_spend_cents, tomorrow.spend_day) == (100, TODAY + 1)   # a new day's spend
    lock = purse.locked(slot, 12)
    assert lock.locked and (lock.counter, lock.balance_cents, lock.day_spend_cents) == (10, 300, 700)
    assert not purse.amount_ok(0) and purse.amount_ok(card.BALANCE_MAX_CENTS)


def test_classic_session_reads_seals_writes_and_tells_whether_a_write_landed(tmp_path):
    from terminal.cards.classic import ClassicSession
    rig = Rig(tmp_path)
    vc = rig.tap(new_card(balance=5000))
    session = ClassicSession(rig.wallet.reader)
    state = session.read(PARK)
    assert (state.uid, state.info.card_no, state.slot.balance_cents) == (UID7, 500, 5000)
    new = state.slot.next(4000, TODAY, 1000, 12)
    sealed = session.seal(state, new)
    assert session.landed(state, new.counter, new.mac) is False     # still one state before it
    assert session.write(state, sealed) is True
    session.release()
    rig.tap(vc)
    again = session.read(PARK, uid=UID7)
    assert again.slot.balance_cents == 4000
    assert session.landed(again, new.counter, new.mac) is True
    assert session.landed(again, new.counter, b"\x00" * 4) is False   # that counter, another state
    assert session.landed(again, new.counter + 5, new.mac) is None    # cannot tell yet
    session.release()
    rig.tap(vc)
    assert session.read(PARK, uid=UID4) is None                       # not the card asked for
    rig.field.remove(vc)
    assert session.read(PARK) is None


def test_card_near_waits_on_the_reader_then_the_tap_reads_from_its_answer(tmp_path):
    import asyncio
    rig = Rig(tmp_path)
    assert asyncio.run(rig.wallet.card_near()) is False
    rig.tap(new_card())
    rig.chip.log.clear()
    assert asyncio.run(rig.wallet.card_near()) is True
    assert rig.wallet.debit(100).ok
    assert [entry[0] for entry in rig.chip.log].count(0x26) == 1      # one REQA for the whole tap
