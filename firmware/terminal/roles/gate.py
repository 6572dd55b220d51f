"""The gate role: entry and exit on the ticket in the card's sector 3, decided from the card alone (SPEC.md §3.8-3.11).

A tap reads the wallet sector (who the card is, blacklist, the purse a timed
exit is paid from) and the ticket sector, settles the card's open records,
decides by terminal/gate_rules.py and then, journal first as the wallet does:
a passage record PENDING, the ticket's next state written over the slot not in
force, the record COMMITTED, the relay opened. A timed exit writes the exit
first, naming the wallet counter of its charge, then debits the wallet (an
ordinary debit record, terminal/wallet.py): any gate that finds such an exit
whose debit never landed collects it, once, whatever the day and whoever wrote
the wallet since (SPEC.md §3.13); an exit gate opens again for a plain exit of
its area under five minutes old, whose turnstile may not have turned (§3.14).
Refusals are journalled too (kind 22, one per card and reason a minute), so the
hub sees every one. Only a gate imports this module; its config is the tail of
the hub's T_CONFIG (protocol.ticket.GateConfig, SPEC.md §5.8).
"""

from protocol import card, record, ticket as t
from protocol.errors import BadMac, Malformed
from protocol.record import Record, passage_detail
from terminal import gate_rules
from terminal import journal as jr
from terminal import ui as screens
from terminal import wallet as w
from terminal.app import Role as _Role
from terminal.cards.classic import CardState
from terminal.compat import borrow, const, sleep_ms
from terminal.rc522 import AuthError, RC522Error

# The gate's money and rare paths (timed exits, owed charges, torn exits, a card to lock), loaded for the tap that
# needs one and dropped after it: a gate of day passes never holds their code (terminal/gate_owed.py).
_OWED = const("terminal.gate_owed")
_OPEN_MS = const(3000)      # the turnstile stays released this long after an approved tap
REFUSAL_REPEAT_S = 60       # one refusal record per card and reason a minute: a card held on the reader is one
ENTER = t.DIRECTION_ENTRY
LEAVE = t.DIRECTION_EXIT


class Passage:
    """What a gate tap did: passed or refused with a reason (a gate reason code, or a wallet reason string)."""

    def __init__(self, ok, reason=None, card_no=0, direction=ENTER, charge_cents=0, balance_cents=0, entries_left=0,
                 seq=0):
        self.ok = ok
        self.reason = reason
        self.card_no = card_no
        self.direction = direction
        self.charge_cents = charge_cents
        self.balance_cents = balance_cents
        self.entries_left = entries_left
        self.seq = seq


class Gate:
    """Passages on one reader: the wallet's card session, journal and blacklist, the gate's relay."""

    def __init__(self, wallet, relay):
        self.wallet = wallet
        self.relay = relay
        self.config = None           # protocol.ticket.GateConfig
        self._last_refusal = None    # (card_no, reason, time) of the last refusal journalled
        self._retry = None           # (card_no, seq) of a passage whose ticket write was uncertain

    def tap(self, direction=0):
        """Serve the card in the field; direction 0 lets the card decide (inside: exit). Never raises for card trouble."""
        wa = self.wallet
        if wa.park_keys is None or wa.config is None or self.config is None:
            return Passage(False, w.NOT_READY)
        if wa.journal.free_records() < 3:
            return Passage(False, w.JOURNAL_FULL)
        cr, refused = wa._tap()
        if refused:
            return Passage(False, refused.reason)
        reader = wa.card.reader
        try:
            # Sector 3 of the card whose wallet sector was just read (a nested authentication, MF1S50yyX §10.1),
            # as a CardState (info None: no valid ticket) so that ClassicSession.landed reads its slots.
            reader.auth(t.INFO_BLOCK, cr.keys.key_a(t.TICKET_SECTOR), cr.uid)
            raw_info = reader.read_block(t.INFO_BLOCK)
            slots = t.decode_slots(reader.read_block(t.SLOT_BLOCKS[0]), reader.read_block(t.SLOT_BLOCKS[1]), cr.keys)
            try:
                tk = CardState(cr.uid, cr.keys, t.TicketInfo.decode(raw_info, cr.keys), slots, *t.pick_slot(slots))
            except (BadMac, Malformed):
                tk = CardState(cr.uid, cr.keys, None, slots, None, 0)
        except AuthError:
            # A card that left answers no authentication either: only one still in the field has no ticket.
            if not self._reselect(cr.uid, card.INFO_BLOCK, cr.keys.key_a()):
                wa._finish()
                return Passage(False, w.READ_FAILED, cr.info.card_no)
            tk = CardState(cr.uid, cr.keys, None, [None, None], None, 0)   # sector 3 not keyed for us: no ticket sold
        except RC522Error:
            wa._finish()
            return Passage(False, w.READ_FAILED, cr.info.card_no)
        wa._resolve_uncertain(cr)
        if tk.slot is not None:
            # Settle this card's uncertain passages by the ticket slots on the card (SPEC.md §3.5, §3.9).
            for seq, raw in list(wa.journal.uncertain()):
                rec = Record.decode(raw)
                if rec.kind not in (record.KIND_ENTRY, record.KIND_EXIT, record.KIND_TIMED_EXIT) \
                        or rec.card_no != cr.info.card_no or rec.uid != cr.uid:
                    continue
                on_card = wa.card.landed(tk, rec.card_counter, rec.card_mac)
                if on_card is not None:
                    wa._mark(seq, jr.COMMITTED if on_card else jr.VOIDED)
        card_no = cr.info.card_no
        retry = self._retry
        if retry is not None and retry[0] == card_no:
            self._retry = None
            if wa.journal.status(retry[1]) == jr.COMMITTED and tk.slot.pay_counter is None:
                # SPEC.md §3.5: the uncertain write of this passage is on the card; let the visitor through.
                # A charged exit goes on to the decision below, which collects its charge if it never landed (§3.13).
                wa._finish()
                return self._opened(cr, tk.slot, retry[1], 0)
        gate = self.config
        now = wa.clock()
        info, slot = tk.info, tk.slot
        listed = cr.slot.locked or bool(cr.info.flags & card.FLAG_RETURNED) or wa.blacklist.contains(cr.info.card_no)
        torn = None if listed else gate_rules.torn_exit(info, tk.slots, slot, gate, cr, now)
        if not direction:
            # An owed charge of an earlier day is collected before the entry its visitor came for (SPEC.md §3.11).
            direction = gate.direction if gate.direction != t.DIRECTION_BOTH else (
                LEAVE if slot is not None and gate.park_day(slot.last_time_s) == gate.park_day(now) and (
                    slot.inside or (torn is not None and slot.pay_counter is not None)) else ENTER)
        if torn is not None and slot.pay_counter is None and direction != LEAVE:
            torn = None         # a plain exit not walked opens again at an exit only (SPEC.md §3.14)
        if torn is not None and (direction == LEAVE or torn):
            return borrow(_OWED, "finish", self, cr, tk, torn, listed, direction, now)
        charge = 0
        if direction == LEAVE:
            reason, new, charge = gate_rules.exit_(info, slot, gate, now, listed, cr.slot.counter)
            if not reason and charge:
                return borrow(_OWED, "charged_exit", self, cr, tk, new, charge, listed, now)
        else:
            reason, new = gate_rules.entry(info, slot, gate, now, listed)
        if reason:
            self._refusal(cr, tk, reason, now)
            if (reason == t.REASON_BLACKLISTED and not cr.slot.locked and not cr.info.flags & card.FLAG_RETURNED
                    and wa.blacklist.contains(cr.info.card_no)):
                borrow(_OWED, "lock", self, cr, now)
            else:
                wa._finish()
            return Passage(False, reason, cr.info.card_no, direction, 0, cr.slot.balance_cents,
                           slot.entries_left if slot is not None else 0)
        kind = record.KIND_ENTRY if direction == ENTER else (
            record.KIND_TIMED_EXIT if info.type == t.TYPE_TIMED else record.KIND_EXIT)
        return self._pass(cr, tk, new, kind, 0, cr.slot.balance_cents, now, direction)

    def _reselect(self, uid, block, key_a):
        """Select the released card uid again and open the sector of block: False when it is gone or refuses."""
        reader = self.wallet.card.reader
        try:
            found = reader.detect(True)
            if found is None or found[0] != uid:
                return False
            reader.auth(block, key_a, uid)
        except RC522Error:
            return False
        return True

    def _pass(self, cr, tk, new, kind, charge, balance, now, direction):
        """Journal the passage PENDING, write the ticket state, commit and open (SPEC.md §1.1 order)."""
        wa = self.wallet
        seq, failed = self._write_ticket(cr, tk, new, kind, charge, balance, now)
        if failed is not None:
            return failed
        wa._finish()
        wa._mark(seq, jr.COMMITTED)
        return self._opened(cr, new, seq, charge, balance, direction)

    def _write_ticket(self, cr, tk, new, kind, charge, balance, now):
        """Journal the passage PENDING and write the ticket state: (its seq, None), or (seq, the Passage of a failed
        write); the card stays in session after a write it acknowledged."""
        wa = self.wallet
        direction = ENTER if new.inside else LEAVE
        sealed = new.encode(tk.keys, tk.write_block)
        try:
            seq = self._journal(cr, kind, new.counter, new.mac, charge, balance, tk.info.product,
                                passage_detail(0, self.config.area, new.entries_left), now)
        except jr.JournalFull:
            wa._finish()
            return 0, Passage(False, w.JOURNAL_FULL, cr.info.card_no, direction)
        try:
            wa.card.reader.write_block(tk.write_block, sealed)
        except RC522Error:
            try:
                wa.journal.mark(seq, jr.UNCERTAIN)
            except jr.JournalFull:
                pass     # still PENDING, open just the same: the card's next read settles it
            self._retry = (cr.info.card_no, seq)
            wa._finish()
            return seq, Passage(False, w.UNCERTAIN, cr.info.card_no, direction, charge, balance, new.entries_left, seq)
        return seq, None

    def _opened(self, cr, slot, seq, charge, balance=None, direction=0):
        self.relay.open(_OPEN_MS)
        if not direction:
            direction = ENTER if slot.inside else LEAVE
        return Passage(True, None, cr.info.card_no, direction, charge,
                       cr.slot.balance_cents if balance is None else balance, slot.entries_left, seq)

    def _refusal(self, cr, tk, reason, now):
        """Journal a refusal (nothing written to the card), at most one per card and reason a minute."""
        last = self._last_refusal
        if last is not None and last[0] == cr.info.card_no and last[1] == reason and now - last[2] < REFUSAL_REPEAT_S:
            return
        if self.wallet.journal.free_records() < 2:
            return     # room is kept for passages: a full journal refuses them anyway
        self._last_refusal = (cr.info.card_no, reason, now)
        slot = tk.slot
        try:
            seq = self._journal(cr, record.KIND_REFUSAL, slot.counter if slot is not None else 0,
                                slot.mac if slot is not None else b"\x00" * 4, 0,
                                cr.slot.balance_cents, tk.info.product if tk.info is not None else 0,
                                passage_detail(reason, self.config.area, slot.entries_left if slot is not None else 0),
                                now)
        except jr.JournalFull:
            return
        self.wallet._mark(seq, jr.COMMITTED)

    def _journal(self, cr, kind, counter, mac, amount, balance, product, detail, now):
        wa = self.wallet
        seq = wa.journal.last_seq() + 1
        online = wa.link is not None and wa.link.connected
        wa.journal.append(seq, now, record.seal(wa.record_mac, kind, wa.terminal_id, seq, now, cr.info.card_no, cr.uid,
                                                counter, amount, balance, product, detail,
                                                0 if online else record.FLAG_OFFLINE, wa.config.version, mac))
        return seq


class Role(_Role):
    """A gate: waits for a card, decides, opens the relay or shows the reason."""

    def __init__(self, app):
        _Role.__init__(self, app)
        # The board's relay (a host harness without a runtime hands the app one before serving).
        self.gate = Gate(app.wallet, app.runtime.board.relay() if app.runtime is not None else None)
        self._tail = None
        self._direction = 0

    def configure(self, cfg):
        """Take the gate config from the T_CONFIG tail; None when there is none or it is malformed."""
        if cfg.tail is not self._tail:
            self._tail = cfg.tail
            try:
                self.gate.config = t.GateConfig.decode(cfg.tail)
            except Malformed:
                self.gate.config = None
        return self.gate.config

    async def serve(self, cfg):
        """One step: wait for a card and serve it."""
        app = self.app
        gate = self.configure(cfg)
        if gate is None:
            app.ui.prompt("gate", "no_gate")
            await sleep_ms(1000)
            return None
        if self.gate.relay is None:
            self.gate.relay = app.relay
        key = app.keypad.get_key()
        if gate.direction == t.DIRECTION_BOTH and key in ("1", "2"):
            self._direction = ENTER if key == "1" else LEAVE
        app.ui.prompt("entry" if (self._direction or gate.direction) == ENTER else (
            "exit" if (self._direction or gate.direction) == LEAVE else "both"), "tap")
        if app.wallet.park_keys is not None and not await app.wallet.card_near():
            await app.poll()
            return None
        result = self.gate.tap(self._direction)
        if result.reason == w.NO_CARD:
            await app.poll()
            return None
        self._direction = 0
        self.show(result)
        app.taps += 1
        await app.pause()
        return result

    def show(self, result):
        """The passage on the screen and the buzzer."""
        ui = self.app.ui
        if result.ok:
            line2 = ("Paid " + screens.money(result.charge_cents)) if result.charge_cents else (
                "Entries %d" % result.entries_left if result.entries_left != t.ENTRIES_UNLIMITED else "")
            ui.message(screens.reason_text("welcome" if result.direction == ENTER else "goodbye"), line2)
            ui.buzzer.play(screens.BEEP_APPROVED)
        else:
            # A gate reason code is its number in the reason table (a wallet's reasons are words).
            reason = result.reason
            ui.message("REFUSED", screens.reason_text(str(reason) if type(reason) is int else reason))
            ui.buzzer.play(screens.BEEP_REFUSED)
