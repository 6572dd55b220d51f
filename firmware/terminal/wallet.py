"""Card wallet: read and verify a card, apply the park's rules, debit journal-first.

The order of a debit is the whole point of this module (protocol/SPEC.md §1):
the record is durable in the journal (PENDING) before the card is written, and
marked COMMITTED once the card acknowledged the write. A write whose outcome is
unknown is marked UNCERTAIN and settled on the next read of that card by its
counter (SPEC.md §3.5).
"""

from protocol import card
from protocol.errors import BadMac
from protocol.record import FLAG_OFFLINE, KIND_ATTEMPT, KIND_DEBIT, KIND_LOCK, Record
from terminal import journal as jr
from terminal.rc522 import RC522Error

# Refusal reasons, in the order the rules are applied (SPEC.md §3.6).
NO_CARD = "no_card"
READ_FAILED = "read_failed"
BAD_MAC = "bad_mac"
NOT_WALLET = "not_wallet"
RETURNED = "returned"
BLACKLISTED = "blacklisted"
EXPIRED = "expired"
PERMISSION = "permission"
OVER_TX_CAP = "over_tx_cap"
OVER_DAILY_CAP = "over_daily_cap"
INSUFFICIENT = "insufficient"
STALE = "stale"
JOURNAL_FULL = "journal_full"
NOT_READY = "not_ready"
UNCERTAIN = "uncertain"
BAD_AMOUNT = "bad_amount"

ATTEMPT_REPEAT_S = 60   # one attempt record per card per minute at a terminal


class Result:
    """What a tap did: approved or refused with a reason, and the card's state."""

    def __init__(self, ok, reason=None, card_no=0, balance_cents=0, amount_cents=0, seq=0, info=None):
        self.ok = ok
        self.reason = reason
        self.card_no = card_no
        self.balance_cents = balance_cents
        self.amount_cents = amount_cents
        self.seq = seq
        self.info = info

    def __repr__(self):
        return "Result(ok=%r, reason=%r, card=%d, balance=%d)" % (self.ok, self.reason, self.card_no,
                                                                 self.balance_cents)


class CardRead:
    """A card as read in one tap: keys, info, both slots and the one in force."""

    def __init__(self, uid, keys, info, slots, slot, write_block):
        self.uid = uid
        self.keys = keys
        self.info = info
        self.slots = slots
        self.slot = slot
        self.write_block = write_block


class Wallet:
    """Debits and balance checks on one reader, backed by the journal and blacklist."""

    def __init__(self, reader, journal, blacklist, terminal_id, record_mac, clock):
        self.reader = reader
        self.journal = journal
        self.blacklist = blacklist
        self.terminal_id = terminal_id
        self.record_mac = record_mac
        self.clock = clock              # callable returning UTC epoch seconds
        self.park_keys = None           # set once an admin system card unlocked them
        self.config = None              # protocol.frames.Config from the hub
        self.link = None                # the MQTT client (runtime): records are FLAG_OFFLINE unless connected
        self.last_hub_contact_s = 0     # hub time of the last downlink
        self.blacklist_updated_s = 0    # when the blacklist was last confirmed current
        self._last_attempt = None       # (card_no, time) of the last attempt journalled
        self.on_record = None           # called when a record is final (runtime: sync.poke, to upload it now)

    # -- reading -----------------------------------------------------------

    def read(self):
        """Detect a card, authenticate once and read blocks 4-6; None when no card."""
        found = self.reader.detect()
        if found is None:
            return None
        return self._read_selected(found[0])

    def _read_selected(self, uid):
        keys = card.CardKeys(self.park_keys, uid)
        # One authentication for the whole sector: blocks 4, 5 and 6 (SPEC.md §3.1).
        self.reader.auth(card.INFO_BLOCK, keys.key_a(), uid)
        raw_info = self.reader.read_block(card.INFO_BLOCK)
        raw_a = self.reader.read_block(card.SLOT_BLOCKS[0])
        raw_b = self.reader.read_block(card.SLOT_BLOCKS[1])
        info = card.CardInfo.decode(raw_info, keys)
        slots = card.decode_slots(raw_a, raw_b, keys)
        slot, _, write_block = card.pick_slot(slots[0], slots[1])
        return CardRead(uid, keys, info, slots, slot, write_block)

    def _tap(self):
        """Read the card in the field: (CardRead, None), or (None, the refusal) for no, unreadable or bad card."""
        try:
            cr = self.read()
        except BadMac:
            self._finish()
            return None, Result(False, BAD_MAC)
        except RC522Error:
            return None, Result(False, READ_FAILED)
        if cr is None:
            return None, Result(False, NO_CARD)
        return cr, None

    def balance(self):
        """Tap-to-see-balance: read and verify without writing anything."""
        if self.park_keys is None:
            return Result(False, NOT_READY)
        cr, refused = self._tap()
        if refused:
            return refused
        self._resolve_uncertain(cr)
        self._finish()
        return Result(True, None, cr.info.card_no, cr.slot.balance_cents, 0, info=cr.info)

    # -- debit ---------------------------------------------------------------

    def debit(self, amount_cents, item=0, discount_cents=0, retry_seq=0):
        """Take amount_cents off the tapped card; returns a Result, never raises for card trouble.

        retry_seq: the record of this same sale whose write was uncertain; when this tap
        shows that write landed, the sale is approved without charging again.
        """
        if self.park_keys is None or self.config is None:
            return Result(False, NOT_READY)
        if amount_cents <= 0 or amount_cents > card.BALANCE_MAX_CENTS:
            return Result(False, BAD_AMOUNT)
        if self.journal.free_records() < 2:
            return Result(False, JOURNAL_FULL)
        cr, refused = self._tap()
        if refused:
            return refused
        if self._resolve_uncertain(cr, retry_seq):
            # SPEC.md §3.5: the uncertain write of this sale is on the card; do not charge twice.
            self._finish()
            return Result(True, None, cr.info.card_no, cr.slot.balance_cents, amount_cents, retry_seq, cr.info)
        now = self.clock()
        reason = self._refusal(cr, amount_cents, now)
        if reason == BLACKLISTED:
            if cr.slot.locked:
                self._attempt(cr, now)
            else:
                self._lock(cr, now)
        if reason:
            self._finish()
            return Result(False, reason, cr.info.card_no, cr.slot.balance_cents, info=cr.info)
        today = card.day_of(now)
        new = cr.slot.next(cr.slot.balance_cents - amount_cents, today,
                           cr.slot.spent_on(today) + amount_cents, self.terminal_id)
        return self._write(cr, new, KIND_DEBIT, amount_cents, item, discount_cents, now)

    def _refusal(self, cr, amount_cents, now):
        info = cr.info
        cfg = self.config
        if info.flags & card.FLAG_ADMIN:
            return NOT_WALLET
        if info.flags & card.FLAG_RETURNED:
            return RETURNED
        if cr.slot.locked or self.blacklist.contains(info.card_no):
            return BLACKLISTED
        today = card.day_of(now)
        if info.expired(today):
            return EXPIRED
        if not (info.perms >> cfg.category) & 1:
            return PERMISSION
        if cfg.tx_cap_cents and amount_cents > cfg.tx_cap_cents:
            return OVER_TX_CAP
        if cfg.daily_cap_cents and cr.slot.spent_on(today) + amount_cents > cfg.daily_cap_cents:
            return OVER_DAILY_CAP
        if cr.slot.balance_cents < amount_cents:
            return INSUFFICIENT
        # abs(): after a power cut the clock restarts near 2000 until the hub sets it; a clock
        # that far behind the last hub contact cannot tell how long we were offline. A clock a
        # little behind (drift, whole-second hub times) is within the limit and still serves.
        if cfg.max_offline_s and abs(now - self.last_hub_contact_s) > cfg.max_offline_s:
            return STALE
        if cfg.blacklist_max_age_s and abs(now - self.blacklist_updated_s) > cfg.blacklist_max_age_s:
            return STALE
        return None

    def _lock(self, cr, now):
        """Lock a blacklisted card on tap (SPEC.md §3.6): same balance, lock bit, journal first."""
        if self.journal.free_records() < 1:
            return
        new = cr.slot.next(cr.slot.balance_cents, cr.slot.spend_day, cr.slot.day_spend_cents, self.terminal_id,
                           locked=True)
        self._write(cr, new, KIND_LOCK, 0, 0, 0, now)

    def _attempt(self, cr, now):
        """Journal a tap of an already locked card, so the hub sees every attempt (SPEC.md §4.2)."""
        last = self._last_attempt
        if last is not None and last[0] == cr.info.card_no and now - last[1] < ATTEMPT_REPEAT_S:
            return  # the same card held again and again is one attempt, not a full journal
        if self.journal.free_records() < 2:
            return
        self._last_attempt = (cr.info.card_no, now)
        try:
            seq = self._journal(cr, cr.slot, KIND_ATTEMPT, 0, 0, 0, now)
        except jr.JournalFull:
            return  # a full flash: the tap is refused either way, the attempt goes unrecorded
        self._mark(seq, jr.COMMITTED)  # nothing is written to the card

    def _journal(self, cr, slot, kind, amount_cents, item, discount_cents, now):
        """Append the record of `slot` (the card's state after this record) as PENDING; return its seq."""
        seq = self.journal.last_seq() + 1
        online = self.link is not None and self.link.connected
        rec = Record(kind, self.terminal_id, seq, now, cr.info.card_no, cr.uid, slot.counter, amount_cents,
                     slot.balance_cents, item, discount_cents, 0 if online else FLAG_OFFLINE,
                     self.config.version, slot.mac)
        self.journal.append(seq, now, rec.encode(self.record_mac))
        return seq

    def _write(self, cr, new, kind, amount_cents, item, discount_cents, now):
        block = new.encode(cr.keys, cr.write_block)   # sets new.mac, which the record carries
        try:
            seq = self._journal(cr, new, kind, amount_cents, item, discount_cents, now)
        except jr.JournalFull:
            self._finish()
            return Result(False, JOURNAL_FULL, cr.info.card_no, cr.slot.balance_cents)
        try:
            self.reader.write_block(cr.write_block, block)
        except RC522Error:
            try:
                self.journal.mark(seq, jr.UNCERTAIN)
            except jr.JournalFull:
                pass  # still PENDING, which is open just the same: the card's next read settles it
            return self._settle_now(cr, seq, kind, amount_cents)
        self._finish()
        # Marked after the card is released: the flash write is off the card's critical path.
        self._mark(seq, jr.COMMITTED)
        return Result(True, None, cr.info.card_no, new.balance_cents, amount_cents, seq, cr.info)

    def _settle_now(self, cr, seq, kind, amount_cents):
        """After a failed write, re-read the card if it is still there and settle the record."""
        try:
            found = self.reader.detect(True)
            again = self._read_selected(found[0]) if found and found[0] == cr.uid else None
        except (RC522Error, BadMac):
            again = None
        if again is None:
            return Result(False, UNCERTAIN, cr.info.card_no, cr.slot.balance_cents, amount_cents, seq)
        self._resolve_uncertain(again)
        self._finish()
        if self.journal.status(seq) == jr.COMMITTED:
            return Result(kind == KIND_DEBIT, None, cr.info.card_no, again.slot.balance_cents, amount_cents, seq,
                          cr.info)
        return Result(False, READ_FAILED, cr.info.card_no, again.slot.balance_cents)

    # -- uncertain records -----------------------------------------------------

    def _resolve_uncertain(self, cr, landed_seq=0):
        """Settle this card's uncertain records by the slots on the card (SPEC.md §3.5).

        True when record landed_seq was among them and settled committed."""
        landed = False
        for seq, raw in list(self.journal.uncertain()):
            rec = Record.decode(raw)
            if rec.card_no != cr.info.card_no or rec.uid != cr.uid:
                continue
            outcome = settle(rec, cr.slots, cr.slot)
            if outcome is not None:
                self._mark(seq, outcome)
                landed = landed or (seq == landed_seq and outcome == jr.COMMITTED)
        return landed

    def _mark(self, seq, status):
        """Mark a record final (committed or voided: uploadable) and tell on_record."""
        try:
            self.journal.mark(seq, status)
        except jr.JournalFull:
            # A full flash: the record stays open (durable as PENDING), settled again on the card's
            # next read or handed to the hub as uncertain (sync.UNCERTAIN_GIVE_UP_S); the tap stands.
            return
        if self.on_record is not None:
            self.on_record()

    def _finish(self):
        """Release the card; a card already gone is fine."""
        self.reader.release()


def settle(rec, slots, current):
    """COMMITTED, VOIDED or None (cannot tell yet) for an uncertain record given the card's slots."""
    for slot in slots:
        if slot is not None and slot.counter == rec.card_counter:
            return jr.COMMITTED if slot.mac == rec.card_mac else jr.VOIDED
    if (current.counter + 1) % card.COUNTER_MODULUS == rec.card_counter:
        return jr.VOIDED
    return None

