"""Card wallet: a tap read through the card session, judged by the purse rules, debited journal-first.

The order of a debit is the whole point of this module (protocol/SPEC.md §1):
the record is durable in the journal (PENDING) before the card is written, and
marked COMMITTED once the card acknowledged the write. A write whose outcome is
unknown is marked UNCERTAIN and settled on the next read of that card by its
counter (SPEC.md §3.5). What the card is (terminal/cards/) and what may be
paid (terminal/purse.py) live apart from this order.
"""

from protocol import card
from protocol.errors import BadMac
from protocol.record import FLAG_OFFLINE, KIND_ATTEMPT, KIND_DEBIT, KIND_LOCK, KIND_REVERSAL, PASSAGE_KINDS, Record
from terminal import journal as jr
from terminal.cards.classic import ClassicSession
from terminal.rc522 import RC522Error

# Refusals of the tap itself; the purse's own reasons are terminal.purse's, named here too (__getattr__).
NO_CARD = "no_card"
READ_FAILED = "read_failed"
BAD_MAC = "bad_mac"
JOURNAL_FULL = "journal_full"
NOT_READY = "not_ready"
UNCERTAIN = "uncertain"
BAD_AMOUNT = "bad_amount"

ATTEMPT_REPEAT_S = 60   # one attempt record per card per minute at a terminal


def __getattr__(name):
    """The purse's refusal reasons as this module's (w.EXPIRED), terminal.purse loaded when first asked for."""
    # Lazily: a gate reads cards through the wallet but never debits, and need not hold the purse rules.
    from terminal import purse
    return getattr(purse, name)


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


class Wallet:
    """Debits and balance checks on one reader, backed by the journal and blacklist."""

    # sale_lines(debit record, journal, record Mac): journals the sale's line records below the debit and
    # moves its seq above them (roles/pos.py, SPEC.md §4.11); None: a debit has no lines.
    sale_lines = None
    # The open staff shift's tag, carried in byte 27 of each debit and reversal (SPEC.md §4.14); 0: none.
    shift_tag = 0
    # The consumption rules in force (terminal.spend.Limits from the T_CONFIG tail, SPEC.md §5.10), set by
    # the pos and ride roles; None: only the park's caps of the config.
    spend_rules = None

    def __init__(self, reader, journal, blacklist, terminal_id, record_mac, clock):
        self.reader = reader
        self.card = ClassicSession(reader)
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
        self.credits = None             # terminal.credits.Credits: the hub's pending credits, delivered at taps

    # -- reading -----------------------------------------------------------

    async def card_near(self):
        """True when a card answered in the field; the event loop runs while the reader waits for it."""
        try:
            return await self.card.present()
        except RC522Error:
            return True     # something answered: the tap reports what went wrong

    def _tap(self):
        """Read the card in the field: (CardState, None), or (None, the refusal) for no, unreadable or bad card."""
        try:
            cr = self.card.read(self.park_keys)
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
        if self.credits is not None:
            cr, refused = self.credits.deliver(self, cr, self.clock())
            if refused:
                return refused
        self._finish()
        return Result(True, None, cr.info.card_no, cr.slot.balance_cents, 0, info=cr.info)

    # -- debit ---------------------------------------------------------------

    def debit(self, amount_cents, item=0, discount_cents=0, retry_seq=0, price=None, member_only=False):
        """Take amount_cents off the tapped card; returns a Result, never raises for card trouble.

        retry_seq: the record of this same sale whose write was uncertain; when this tap
        shows that write landed, the sale is approved without charging again.
        price: price(card info) -> (amount_cents, discount_cents) once the card is read: a booth's
        tier discount (SPEC.md §7.3); amount_cents is then the list price, checked before the tap.
        A booth that sells from a price list sets sale_lines before the tap (SPEC.md §4.11).
        member_only: the sale holds an item only members may buy (SPEC.md §3.6 rule 11).
        """
        if self.park_keys is None or self.config is None:
            return Result(False, NOT_READY)
        from terminal import purse
        if not purse.amount_ok(amount_cents):
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
        if price is not None:
            amount_cents, discount_cents = price(cr.info)
            if not purse.amount_ok(amount_cents):   # a 100 % discount: nothing to take off a card
                self._finish()
                return Result(False, BAD_AMOUNT, cr.info.card_no, cr.slot.balance_cents, info=cr.info)
        now = self.clock()
        if self.credits is not None:
            cr, refused = self.credits.deliver(self, cr, now)   # SPEC.md §3.7: before the sale is judged
            if refused:
                return refused
        reason = purse.refusal(cr.info, cr.slot, amount_cents, self.config, self.blacklist.contains(cr.info.card_no),
                               now, self.last_hub_contact_s, self.blacklist_updated_s, self.spend_rules, member_only,
                               self.link is None or not self.link.connected)
        if reason == purse.BLACKLISTED:
            if cr.slot.locked:
                self._attempt(cr, now)
            else:
                self._lock(cr, now)
        if reason:
            self._finish()
            return Result(False, reason, cr.info.card_no, cr.slot.balance_cents, info=cr.info)
        new = purse.debited(cr.slot, amount_cents, now, self.terminal_id)
        return self._write(cr, new, KIND_DEBIT, amount_cents, item, discount_cents, now)

    def _lock(self, cr, now):
        """Lock a blacklisted card on tap (SPEC.md §3.6): same balance, lock bit, journal first."""
        from terminal import purse
        if self.journal.free_records() < 1:
            return
        self._write(cr, purse.locked(cr.slot, self.terminal_id), KIND_LOCK, 0, 0, 0, now)

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
        online = self.link is not None and self.link.connected
        rec = Record(kind, self.terminal_id, self.journal.last_seq() + 1, now, cr.info.card_no, cr.uid, slot.counter,
                     amount_cents, slot.balance_cents, item, discount_cents, 0 if online else FLAG_OFFLINE,
                     self.config.version, slot.mac)
        if self.shift_tag and (kind == KIND_DEBIT or kind == KIND_REVERSAL):
            rec.quantity = self.shift_tag
        if kind == KIND_DEBIT and self.sale_lines is not None:
            # A sale's lines go first, each committed: a debit in the journal has its lines below it.
            self.sale_lines(rec, self.journal, self.record_mac)
        self.journal.append(rec.seq, now, rec.encode(self.record_mac))
        return rec.seq

    def _write(self, cr, new, kind, amount_cents, item, discount_cents, now):
        sealed = self.card.seal(cr, new)   # sets new.mac, which the record carries
        try:
            seq = self._journal(cr, new, kind, amount_cents, item, discount_cents, now)
        except jr.JournalFull:
            self._finish()
            return Result(False, JOURNAL_FULL, cr.info.card_no, cr.slot.balance_cents)
        if not self.card.write(cr, sealed):
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
            again = self.card.read(self.park_keys, True, cr.uid)
        except (RC522Error, BadMac):
            again = None
        if again is None:
            return Result(False, UNCERTAIN, cr.info.card_no, cr.slot.balance_cents, amount_cents, seq)
        self._resolve_uncertain(again)
        self._finish()
        if self.journal.status(seq) == jr.COMMITTED:
            return Result(kind == KIND_DEBIT or kind == KIND_REVERSAL, None, cr.info.card_no, again.slot.balance_cents,
                          amount_cents, seq,
                          cr.info)
        return Result(False, READ_FAILED, cr.info.card_no, again.slot.balance_cents)

    # -- uncertain records -----------------------------------------------------

    def _resolve_uncertain(self, cr, landed_seq=0):
        """Settle this card's uncertain records by the slots on the card (SPEC.md §3.5).

        True when record landed_seq was among them and settled committed."""
        landed = False
        for seq, raw in list(self.journal.uncertain()):
            rec = Record.decode(raw)
            if rec.card_no != cr.info.card_no or rec.uid != cr.uid or rec.kind in PASSAGE_KINDS:
                continue    # a passage's counter is the ticket's: the gate settles it (roles/gate.py)
            on_card = self.card.landed(cr, rec.card_counter, rec.card_mac)
            if on_card is not None:
                outcome = jr.COMMITTED if on_card else jr.VOIDED
                self._mark(seq, outcome)
                landed = landed or (seq == landed_seq and outcome == jr.COMMITTED)
        return landed

    def commit(self, seq):
        """Mark a record that writes no card (an attempt, a shift record) committed, and tell on_record."""
        self._mark(seq, jr.COMMITTED)

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
        self.card.release()

