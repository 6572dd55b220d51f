"""Uplink frames -> verified records -> applied exactly once, one transaction per batch.

Lifecycle of a record at the hub (records.status):
(parkcard.domain.lifecycle.RecordStatus; the decisions are parkcard.domain.ingest_rules):
- `applied`: committed at the terminal, posted in the ledger.
- `voided`: the card was not written; stored for gap tracking, no ledger effect.
- `uncertain`: the terminal could not tell whether the card write landed.
  The card's counters decide (ingest_rules.decide_uncertain): a record of the
  same card holding its counter means it did not happen (voided); the record
  holding the next counter continuing its chain means it did, and it is
  applied then. A later upload of the same bytes as committed or voided (the
  terminal settled it on a re-tap) settles it the same way. Until then it has
  no ledger effect.
- `quarantined`: an authenticated record the rules refuse (credit kind from a
  booth, a booth refund that does not match its own sale, amounts that do not
  post); kept with its reason and counted as stored so the terminal's journal
  does not jam behind it.
- conflicting: same (terminal, seq) with other bytes; kept in `conflicts` with
  an alarm, never applied, the stored record stays.
- damaged: a record inside an authenticated upload that fails its own MAC,
  version or layout. Its bytes are kept in quarantine holding the seq read
  from them (offset 8, every record version), with a `damaged_record` alarm,
  so the ack moves past it; no ledger effect. Bytes too short for a seq, or
  naming another terminal, hold nothing and the ack stays below them.

Taps of blacklisted cards (SPEC.md §4.2): a lock record (the card was locked,
counter + 1) claims its counter like any card write; an attempt record (an
already locked card tapped again, nothing written) repeats the counter in
force, so it claims none and never meets the clone rule. Both are kept in
`attempts` (time, terminal, card) and move no value.

Clone rule (SPEC.md §1.5): two different records with the same (card,
counter): the offline sale is a fact and is applied, then an alarm is raised
and the card blacklisted. Chain rule: the previous counter's balance_after
plus this record's change must equal this balance_after (alarm otherwise).

Booth refunds (SPEC.md §4.4): a pos, ride or gate may credit a card only by
a REFUND whose ref_seq names one of its own applied DEBITs of the same card,
for at most that sale's amount, once per sale. The refund claims the sale
when it is stored applied or uncertain; an uncertain refund settled as not
happened frees it. Desk refunds are not matched (the cashier decides). A
give-back puts back the bonus its sale spent first (SPEC.md §4.12), read from
the sale's own bonus entry, staged in this batch or stored.

Replaced cards (SPEC.md §4.13): a late record of a lost card is settled against
its hold in the same transaction, a debit paid from it, a credit taken into it
for the new card.

Ack (SPEC.md §5.4): upto_seq = acked_upto, the highest seq with every seq <=
it stored; seqs above it are kept in `above` and their holes in terminal_gaps.
Every frame on an up topic that authenticates as its topic's terminal gets an
ack, a refused one too (replay, unexpected type, bad body), so its sender is
not left waiting (a frame that does not authenticate gets no answer);
`applied` counts records stored as sent or already held, `rejected` the
quarantined, damaged and conflicting ones.

Bounds: at most ABOVE_MAX seqs are kept above a terminal's hole (a record past
it is neither stored nor acknowledged, and the terminal sends it again);
Ingest.uncertain_cards holds at most UNCERTAIN_CARDS_MAX cards (past it every
applied card write looks its card up). Both are counted (`above_full`,
`uncertain_cards_full`).

Single process: a terminal's sequence state (counter_up, acked_upto, above)
is staged per batch and copied into the registry's TerminalState after
COMMIT (_commit). It is this process's memory, advanced by its one writer:
a second hub process on the same database would ack from a stale copy
(parkcard.hub_lock keeps it to one).

Uploads from a locked terminal are applied (its records are MACed facts,
possibly offline sales from before the lock) and raise a `locked_terminal`
alarm (SPEC.md §5.4).
"""

import gc
import logging
import struct
from collections import Counter
from contextlib import contextmanager

from protocol import desk as desk_frames
from protocol import frames, hub_frames
from protocol import record as R
from protocol.card import counter_newer
from protocol.errors import ProtocolError

from parkcard.domain import ingest_rules as rules
from parkcard.domain import accounts, ledger
from parkcard.domain import tickets as ticket_rules
from parkcard.domain.lifecycle import QuarantineReason as Q
from parkcard.domain.lifecycle import (ALARM_CLONE, ALARM_CREDIT_TWICE, ALARM_LATE_LOSS, ALARM_STAFF_UNKNOWN,
                                      RecordStatus, UncertainOutcome)
from parkcard.ingest.registry import Rejected
from parkcard.store import credits as credit_store
from parkcard.store import replacements as replacement_store

log = logging.getLogger("parkcard.ingest.pipeline")

_RECORD_TERMINAL_AT = 4   # terminal_id (2 bytes) and seq (4 bytes) sit here in every record version (SPEC.md §4.1)
_RECORD_SEQ_AT = 8
GAPS_STORED_MAX = 1000   # ranges of missing seqs kept per terminal (the count beyond is in the last one)
# Seqs stored above a terminal's hole (TerminalState.above), per terminal: a terminal sends its backlog
# oldest first in frames of a few records, so thousands past a hole mean the hole is not being resent; a
# record beyond this is not stored now and not acknowledged, and the terminal sends it again (SPEC.md §5.4).
ABOVE_MAX = 4096
# Cards known to have open uncertain records (Ingest.uncertain_cards): beyond this many, every applied
# card write looks its card's uncertain records up in the store (slower, nothing missed) until a restart.
UNCERTAIN_CARDS_MAX = 100_000
# The kinds _apply_value treats apart from a card write: passages, sale lines, shifts, locks and attempts.
_SPECIAL_KINDS = frozenset(R.PASSAGE_KINDS + (R.KIND_SALE_LINE, R.KIND_SHIFT, R.KIND_LOCK, R.KIND_ATTEMPT))
# Who grants the pending credit that takes a replaced card's late credit to its new card (SPEC.md §4.13).
LATE_CREDIT_ACTOR = "hub:ingest"


@contextmanager
def _collector_paused():
    """The cyclic garbage collector paused while a batch is written, back as it was once the batch is freed.

    A batch keeps every record it decodes and every row it stages alive until its commit: the collector's
    passes meanwhile (one per 700 new objects, and whole-heap ones as the survivors pile up) find next to
    nothing to free and cost a tenth of the rules' time, and one pass over the staged rows at the end
    would cost half of that again. The pass runs at the first allocation after the batch, when its rows
    are gone; the few cycles a batch makes (a refused record's error and its traceback), and those the
    event loop's other tasks make meanwhile, wait for it. The collector is process-wide: a batch that
    finds it paused (by another batch) leaves it to that one to resume.
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _bonus_before(tx, rec):
    """The bonus purse of the record's card as the ledger holds it now (0 for a kind that moves no value)."""
    return tx.account_cents(accounts.bonus_account(rec.card_no)) if ledger.card_delta(rec) or \
        rec.kind in ledger.BONUS_KINDS else 0


def _given_back_sale(tx, state, rec):
    """(the sale Record a give-back claims, the bonus that sale spent) for a refund or reversal (the caller tests the
    kind) of an applied debit of the same card at its terminal (SPEC.md §4.4, §4.15; the sale may be staged by this
    batch); else (None, 0)."""
    sale_seq = rules.given_back_seq(rec)
    found = tx.record(state.id, sale_seq) if sale_seq > 0 else None
    if found is None:
        return None, 0
    sale = R.Record.decode(bytes(found.raw))
    if found.status != RecordStatus.APPLIED or sale.kind != R.KIND_DEBIT or sale.card_no != rec.card_no:
        return sale, 0
    return sale, -tx.record_entry_cents(found.id, accounts.bonus_account(rec.card_no))


def _decoded(state, entries):
    """[(status, raw, Record or the ProtocolError that refuses it)] of an upload's [(status, raw)] from this
    terminal: each record is decoded and its MAC checked once, before the batch plans its reads."""
    mac = state.record_mac
    out = []
    for status, raw in entries:
        raw = bytes(raw)
        try:
            out.append((status, raw, R.Record.decode(raw, mac)))
        except ProtocolError as exc:
            out.append((status, raw, exc))
    return out


def _reads_of(uploads):
    """What applying [(TerminalState, decoded entries)] of uploads will read, for a store that loads it in one
    round trip.

    A record is looked up only where one can be stored: a seq the terminal's state holds already (a
    resend), a refund's sale, and the seq below a booth's upload (_apply_value asks whether a sale has lines to
    price again); a seq above them is new, or staged by this batch when it repeats.
    """
    records, cards, counters = [], set(), set()     # sets: a card's consecutive records share counters
    around, add = rules.counters_around, counters.add
    for state, entries in uploads:
        terminal_id, acked_upto, above = state.id, state.acked_upto, state.above
        if state.role == frames.ROLE_POS and entries and not isinstance(entries[0][2], ProtocolError):
            below = entries[0][2].seq - 1
            if below <= acked_upto or below in above:
                records.append((terminal_id, below))
        for _status, _raw, rec in entries:
            if isinstance(rec, ProtocolError):
                continue
            if rec.seq <= acked_upto or rec.seq in above:
                records.append((terminal_id, rec.seq))
            if rec.ref_seq:
                records.append((terminal_id, rec.ref_seq))
            card_no = rec.card_no
            cards.add(card_no)
            prev_k, k, next_k = around(rec.card_counter)
            add((card_no, prev_k))
            add((card_no, k))
            add((card_no, next_k))
    return dict(records=records, cards=cards, counters=counters, terminals=[state.id for state, _e in uploads])


def _upload_of(state, frame):
    """The decoded entries of a verified upload frame, the ProtocolError that refuses its body, or None for a
    frame that is no upload (or did not verify)."""
    if state is None or frame.type != frames.T_UPLOAD:
        return None
    try:
        return _decoded(state, hub_frames.parse_upload(frame.body))
    except ProtocolError as exc:
        return exc


# What a record's seq is to its terminal's staged state (_View.arrive).
KNOWN, FULL, NEW = "known", "full", "new"


class _View:
    """A terminal's sequence state staged during one batch; copied back after commit."""

    def __init__(self, state):
        self.state = state
        self.counter_up = state.counter_up
        self.acked_upto = state.acked_upto
        self.above = set(state.above)
        self.gaps_dirty = bool(state.above)

    def settle(self, seq):
        """Mark seq as durably stored and move acked_upto over the contiguous run."""
        if seq == self.acked_upto + 1:
            self.acked_upto = seq
            while self.acked_upto + 1 in self.above:
                self.acked_upto += 1
                self.above.discard(self.acked_upto)
        elif seq > self.acked_upto:
            self.above.add(seq)
        if self.above:  # in-order arrivals with nothing above leave the (empty) gaps as they are
            self.gaps_dirty = True

    def arrive(self, seq):
        """What a record's seq is to this terminal: KNOWN (stored), FULL (no room above the hole: not stored now),
        or NEW, settled (stored by this batch)."""
        if seq == self.acked_upto + 1 and not self.above:
            self.acked_upto = seq       # the next in order with nothing above: most records
            return NEW
        if self.known(seq):
            return KNOWN
        if not self.has_room(seq):
            return FULL
        self.settle(seq)
        return NEW

    def known(self, seq):
        """True when a record with this seq is stored."""
        return seq <= self.acked_upto or seq in self.above

    def has_room(self, seq):
        """False when storing seq would keep more than ABOVE_MAX seqs above the terminal's hole."""
        return seq <= self.acked_upto + 1 or seq in self.above or len(self.above) < ABOVE_MAX

    def gaps(self):
        """Return [(from_seq, to_seq)] of missing seqs below the highest stored one."""
        out = []
        expect = self.acked_upto + 1
        for seq in sorted(self.above):
            if seq > expect:
                out.append((expect, seq - 1))
                if len(out) >= GAPS_STORED_MAX:
                    break
            expect = seq + 1
        return out


class BatchResult:
    """What one batch did, for acks, downlinks and counters."""

    def __init__(self):
        self.views = {}
        self.acks = {}              # terminal_id -> [applied, rejected]
        self.blacklist_versions = []
        self.syncs = []             # (terminal_id, blacklist_version, config_version, chunk_cards_max, credits, prices)
        self.auths = []             # (terminal_id, admin_card_no, uid)
        self.card_results = []      # (terminal_id, request_id, uid, status, block)
        self.booth_sales = []       # (terminal_id, merchant_id, seq) of applied booth debits, priced again after commit
        self.desk_reports = []      # (terminal_id, request_id, status, uid, {block: bytes}): protocol.desk
        self.counts = Counter()
        self.quarantined = []       # (reason, terminal_id, detail)
        self.uncertain_add = set()  # cards left with an open uncertain record
        self.uncertain_looked = set()   # cards whose uncertain records were all looked at (and decided, or added)
        self.credits_granted = False    # a pending credit was granted (a replaced card's late credit): push the list


class Ingest:
    """Applies uplink batches through the storage writer."""

    def __init__(self, storage, registry):
        self.storage = storage
        self.registry = registry
        self.stats = Counter()
        self.uncertain_cards = set()
        self.uncertain_every_card = False   # past UNCERTAIN_CARDS_MAX: look every card up
        # Lost cards replaced (SPEC.md §4.13): their late debits are settled against the hold. Added to by the
        # desk inside the write that books a replacement, so the next batch already sees it.
        self.replaced_cards = set()

    async def load(self):
        """Read the cards that still have uncertain records, and the replaced ones."""
        self.replaced_cards = set(await self.storage.replaced_cards())
        self.uncertain_cards = set(await self.storage.uncertain_cards())
        self.uncertain_every_card = False
        self._bound_uncertain_cards()

    def _bound_uncertain_cards(self):
        """Past UNCERTAIN_CARDS_MAX, forget the set and look every card up (counted as uncertain_cards_full)."""
        if len(self.uncertain_cards) > UNCERTAIN_CARDS_MAX:
            self.uncertain_cards = set()
            self.uncertain_every_card = True
            self.stats["uncertain_cards_full"] += 1
            log.warning("event=uncertain_cards_full max=%d action=looking_every_card_up", UNCERTAIN_CARDS_MAX)

    async def apply(self, messages):
        """Verify and apply [(topic, payload)] from parkcard/+/up in one transaction; return BatchResult."""
        with _collector_paused():
            result = await self.storage.write(lambda tx: self._apply_frames(tx, messages))
        self._commit(result)
        return result

    async def apply_local(self, terminal_id, entries):
        """Apply [(status, raw)] made inside the hub (desk) as if uploaded by terminal_id."""
        def run(tx):
            res, state, view = self._local(terminal_id)
            decoded = _decoded(state, entries)
            tx.prefetch(**_reads_of([(state, decoded)]))
            self._upload(tx, res, state, view, decoded, "local/desk")
            self._finish(tx, res)
            return res
        result = await self.storage.write(run)
        self._commit(result)
        return result

    async def apply_built(self, terminal_id, build, applied=None, audit=None):
        """Apply one record that build(tx, seq) makes inside the write transaction; return (BatchResult, made).

        build returns (status, raw, made) for terminal_id's next seq; when the record is applied,
        applied(tx, made) runs in the same transaction, so what it writes exists only with the record
        (as do the operator actions audit(result) names: parkcard.store.audited).
        """
        def run(tx):
            res, state, view = self._local(terminal_id)
            status, raw, made = build(tx, max([view.acked_upto, *view.above]) + 1)
            decoded = _decoded(state, [(status, raw)])
            tx.prefetch(**_reads_of([(state, decoded)]))
            self._upload(tx, res, state, view, decoded, "local/desk")
            if applied is not None and res.counts[RecordStatus.APPLIED] == 1:
                applied(tx, made)
            self._finish(tx, res)
            return res, made
        result, made = await self.storage.write(run, audit)
        self._commit(result)
        return result, made

    # -- inside the writer thread
    def _local(self, terminal_id):
        """Start a batch of records made inside the hub: (BatchResult, terminal state, its view)."""
        res = BatchResult()
        state = self.registry.get(terminal_id)
        return res, state, self._view(res, state)

    def _view(self, res, state):
        view = res.views.get(state.id)
        if view is None:
            view = res.views[state.id] = _View(state)
        return view

    def _quarantine(self, tx, res, raw, topic, terminal_id, reason, detail, seq=None):
        tx.add_quarantine(raw, topic, terminal_id, reason, detail, seq)
        res.quarantined.append((reason, terminal_id, detail))
        res.counts["quarantined"] += 1

    def _apply_frames(self, tx, messages):
        res = BatchResult()
        checked = [self._verified(topic, payload) for topic, payload in messages]
        uploads = [_upload_of(state, frame) for state, frame in checked]
        tx.prefetch(**_reads_of([(state, up) for (state, _f), up in zip(checked, uploads) if isinstance(up, list)]))
        for (topic, payload), (state, frame), upload in zip(messages, checked, uploads):
            if isinstance(frame, Rejected):
                exc = frame
                self._quarantine(tx, res, payload, topic, exc.terminal_id, exc.reason, exc.detail)
                continue
            view = self._view(res, state)
            if frame.counter <= view.counter_up:
                self._quarantine(tx, res, payload, topic, state.id, Q.REPLAY,
                                 "counter %d <= %d" % (frame.counter, view.counter_up))
                res.acks.setdefault(state.id, [0, 0])   # authenticated: answered with the current upto_seq
                continue
            view.counter_up = frame.counter
            tx.update_terminal(state.id, counter_up=frame.counter, last_seen=tx.now)
            res.counts["frames"] += 1
            try:
                if frame.type == frames.T_UPLOAD:
                    if isinstance(upload, ProtocolError):
                        raise upload
                    self._upload(tx, res, state, view, upload, topic)
                elif frame.type == frames.T_SYNC:
                    res.syncs.append((state.id, *hub_frames.parse_sync(frame.body),
                                      hub_frames.sync_credits_version(frame.body),
                                      hub_frames.parse_sync_prices(frame.body)))
                elif frame.type == frames.T_AUTH:
                    res.auths.append((state.id, *hub_frames.parse_auth(frame.body)))
                elif frame.type == frames.T_CARD_RESULT:
                    res.card_results.append((state.id, *hub_frames.parse_card_result(frame.body)))
                elif frame.type == frames.T_DESK_REPORT:
                    res.desk_reports.append((state.id, *desk_frames.parse_report(frame.body)))
                else:
                    raise Rejected(Q.UNEXPECTED_TYPE, "frame type 0x%02x on an up topic" % frame.type)
            except (ProtocolError, Rejected) as exc:
                self._quarantine(tx, res, payload, topic, state.id, exc.reason, str(exc))
                res.acks.setdefault(state.id, [0, 0])
        self._finish(tx, res)
        return res

    def _verified(self, topic, payload):
        """(TerminalState, Frame) of a verified uplink, or (None, the Rejected that refuses it)."""
        try:
            return self.registry.verify(topic, payload, "up")
        except Rejected as exc:
            return None, exc

    def _finish(self, tx, res):
        for tid, view in res.views.items():
            if view.acked_upto != view.state.acked_upto:
                tx.update_terminal(tid, acked_upto=view.acked_upto)
            if view.gaps_dirty:
                tx.set_gaps(tid, view.gaps())

    def _upload(self, tx, res, state, view, entries, topic):
        """Apply an upload's decoded entries (_decoded) in order; the caller prefetched what they read (_reads_of)."""
        ack = res.acks.setdefault(state.id, [0, 0])
        new_seqs = []
        for status, raw, rec in entries:
            if isinstance(rec, ProtocolError):
                self._damaged(tx, res, state, view, raw, topic, "record_" + rec.reason, rec.detail)
                ack[1] += 1
                continue
            if rec.terminal_id != state.id or rec.seq == 0:
                self._quarantine(tx, res, raw, topic, state.id, Q.RECORD_TERMINAL,
                                 "record of term-%d seq %d in a frame of term-%d" % (rec.terminal_id, rec.seq,
                                                                                    state.id))
                ack[1] += 1
                continue
            arrival = view.arrive(rec.seq)
            if arrival is KNOWN:
                ack[self._resent(tx, res, state, rec, raw, status)] += 1
                continue
            if arrival is FULL:
                res.counts["above_full"] += 1     # not stored, not acknowledged: sent again later
                continue
            new_seqs.append(rec.seq)
            ack[self._new(tx, res, state, rec, raw, status, topic)] += 1
        if new_seqs and tx.terminal_locked(state.id):
            tx.add_alarm("locked_terminal", None, state.id, new_seqs[0],
                         "upload from a locked terminal: seqs %d..%d applied" % (new_seqs[0], new_seqs[-1]))
            res.counts["locked_uploads"] += 1

    def _damaged(self, tx, res, state, view, raw, topic, reason, detail):
        """Quarantine a record that fails its own checks; when its bytes name a seq of this terminal, hold it."""
        seq = None
        if len(raw) >= _RECORD_SEQ_AT + 4:
            terminal_id, = struct.unpack_from(">H", raw, _RECORD_TERMINAL_AT)
            seq, = struct.unpack_from(">I", raw, _RECORD_SEQ_AT)
            if terminal_id != state.id or seq == 0:
                seq = None
        if seq is not None and not view.known(seq) and not view.has_room(seq):
            res.counts["above_full"] += 1         # not held now, not acknowledged: sent again later
            return
        if seq is not None and view.known(seq):
            if tx.held_damaged(state.id, seq) == raw:
                res.counts["duplicates"] += 1      # sent again: already held
                return
            seq = None                             # the seq is taken: kept, holds nothing
        if seq is None:
            self._quarantine(tx, res, raw, topic, state.id, reason, detail + "; holds no seq")
            return
        view.settle(seq)
        self._quarantine(tx, res, raw, topic, state.id, reason, detail, seq)
        tx.add_alarm("damaged_record", None, state.id, seq,
                     "%s (%s): seq %d kept in quarantine and acknowledged, no value applied" % (reason, detail, seq))
        res.counts["damaged"] += 1

    def _resent(self, tx, res, state, rec, raw, status):
        """A seq already stored: duplicate (0 = success) or conflict (1 = rejected)."""
        existing = tx.record(state.id, rec.seq)
        if existing is None:        # held by a damaged record: a valid one now is other bytes for the key
            tx.add_conflict(state.id, rec.seq, raw, tx.held_damaged(state.id, rec.seq) or b"")
            tx.add_alarm("conflict", rec.card_no, state.id, rec.seq, "seq held by a damaged record: not applied")
            res.counts["conflicts"] += 1
            return 1
        existing = rules.StoredRecord(*existing)
        verdict = rules.resent(existing, raw, status)
        if verdict.outcome == rules.CONFLICT:
            tx.add_conflict(state.id, rec.seq, raw, existing.raw)
            tx.add_alarm("conflict", rec.card_no, state.id, rec.seq, "same terminal and seq, other bytes: not applied")
            res.counts["conflicts"] += 1
            return 1
        res.counts["duplicates"] += 1
        if verdict.settles is not None:
            self._settle_uncertain(tx, res, existing.id, rec, state, verdict.settles)
        return 0

    def _new(self, tx, res, state, rec, raw, status, topic):
        """Store a new record, its seq settled (_View.arrive); return 0 when stored as sent, 1 when quarantined."""
        record_id = tx.next_id("records")
        kind = rec.kind
        name = rules.new_status(rec, status)
        reason = None
        if name is None:
            reason, detail = Q.RECORD_STATUS, "upload status %d" % status
        else:
            reason, detail = rules.booth_refusal(tx, state.role, state.id, rec)
        if reason is None and kind == R.KIND_REVERSAL and name != RecordStatus.VOIDED:
            reason, detail = rules.reversal_refusal(tx, state.id, state.merchant_id, rec)
        if reason is None and kind == R.KIND_CREDIT and name != RecordStatus.VOIDED:
            _delivery, reason, detail = rules.credit_delivery(credit_store.card_credits(tx, rec.card_no), rec)
        if reason is None:
            try:
                entries = self._postings(tx, state, rec)
            except ledger.PostingError as exc:
                reason, detail = exc.reason, str(exc)
        if reason is not None:
            tx.add_record(record_id, state.id, rec.seq, raw, rec, RecordStatus.QUARANTINED)
            self._quarantine(tx, res, raw, topic, state.id, reason, detail)
            return 1
        tx.add_record(record_id, state.id, rec.seq, raw, rec, name)
        if kind in ledger.GIVE_BACK_KINDS and state.role != frames.ROLE_DESK and name != RecordStatus.VOIDED:
            tx.claim_refund(state.id, rules.given_back_seq(rec), rec.seq)
        res.counts[name] += 1
        if name == RecordStatus.APPLIED:
            self._apply_value(tx, res, state, record_id, rec, entries)
        elif name == RecordStatus.UNCERTAIN and rec.kind not in ledger.NO_WALLET_KINDS:
            self._decide_uncertain(tx, res, record_id, rec, state)    # a passage waits for its copy, §4.9
        elif name == RecordStatus.UNCERTAIN and rec.kind in ticket_rules.WRITE_KINDS:
            happened = self._passage_evidence(tx, rec)      # another gate's record of the card, §4.16, §4.17
            if happened is None:
                res.uncertain_add.add(rec.card_no)
            else:
                self._settle_uncertain(tx, res, record_id, rec, state, happened)
        return 0

    def _passage_evidence(self, tx, rec):
        """What the card's applied passages say of an uncertain passage (ticket_rules.passage_landed), or None."""
        for counter in ticket_rules.evidence_counters(rec):
            for kind in R.PASSAGE_KINDS:
                for raw in tx.records_at(rec.card_no, kind, counter):
                    happened = ticket_rules.passage_landed(rec, R.Record.decode(raw))
                    if happened is not None:
                        return happened
        return None

    def _postings(self, tx, state, rec):
        """The record's ledger entries: the card's bonus purse moved (SPEC.md §4.12; a give-back restores what its
        sale spent of it), the park paying the discounts its merchant does not bear (SPEC.md §7.5)."""
        sale, sale_bonus = _given_back_sale(tx, state, rec) if rec.kind in ledger.GIVE_BACK_KINDS else (None, 0)
        return ledger.postings(rec, state.merchant_id, state.rate_bps, _bonus_before(tx, rec),
                               ledger.park_discount_cents(rec, state.park_bears_discount, sale), sale_bonus)

    def _apply_value(self, tx, res, state, record_id, rec, entries):
        kind = rec.kind
        if kind in _SPECIAL_KINDS:      # one test for the common kinds, which are none of these
            if kind in R.PASSAGE_KINDS:
                # A passage moves no value and its counter is the ticket's, not the wallet's (SPEC.md §4.9).
                tx.add_passage(record_id, rec)
                res.counts["passages"] += 1
                self._passage_settles(tx, res, rec)
                return
            if kind == R.KIND_SALE_LINE:
                return      # the detail of the debit after it (SPEC.md §4.11): no value, no wallet counter
            if kind == R.KIND_SHIFT:
                self._shift(tx, state, rec)     # no value, no wallet counter (SPEC.md §4.14)
                return
            tx.add_attempt(rec)     # a lock or an attempt
            res.counts["attempts"] += 1
            if kind == R.KIND_ATTEMPT:
                return      # the counter in force belongs to the card's last write
        card_no = rec.card_no
        write = rules.card_write(tx, rec)
        k = write.counter
        if write.clone_of is not None:
            detail = rules.clone_detail(rec, write.clone_of)
            tx.add_alarm(ALARM_CLONE, card_no, state.id, rec.seq, detail)
            version = tx.blacklist_add(card_no, "clone: " + detail)
            if version is not None:
                res.blacklist_versions.append(version)
            res.counts["clones"] += 1
            log.warning("event=clone card_no=%d counter=%d terminal=%d seq=%d", card_no, k, state.id, rec.seq)
        else:
            tx.claim_counter(card_no, k, state.id, rec.seq, write.delta_cents, rec.balance_after_cents)
        for terminal_id, seq, detail in write.chain_breaks:
            tx.add_alarm("chain", card_no, terminal_id, seq, detail)
        if kind == R.KIND_CREDIT:
            entries = self._deliver_credits(tx, res, state, rec, entries)
        if entries:
            tx.post(record_id, kind, entries)
        # What the record put on the card's account: a lost card's credit moved to its replacement puts nothing.
        delta = ledger.by_account(entries).get(accounts.card_account(card_no), 0) if kind == R.KIND_CREDIT \
            else write.delta_cents
        if card_no in self.replaced_cards and delta:
            self._settle_late(tx, res, state, rec, delta)
        if kind == R.KIND_DEBIT and state.role == frames.ROLE_POS and tx.record_kind(state.id, rec.seq - 1) in (
                None, R.KIND_SALE_LINE):
            # Priced again after commit unless the record below is stored and is no sale line: a sale keyed as
            # an amount has nothing to price again (SPEC.md §4.11).
            res.booth_sales.append((state.id, state.merchant_id, rec.seq))
        card = tx.card(card_no)
        if card[2] is None or counter_newer(k, card[2]):
            tx.set_card(card_no, rec.uid, rec.balance_after_cents, k)
        if self.uncertain_every_card or card_no in self.uncertain_cards or card_no in res.uncertain_add:
            res.uncertain_looked.add(card_no)     # each one left open is added back by _decide_uncertain
            for u_id, u_tid, u_seq, u_raw, u_counter in tx.uncertain_records(card_no):
                # Applying one of them decides the card's others in a nested call: one settled there
                # must not be decided again here, where it would meet its own counter claim.
                if u_id != record_id and u_id not in tx.record_status:
                    u_rec = R.Record.decode(u_raw)
                    if u_rec.kind not in ledger.NO_WALLET_KINDS:     # the ticket's counters are not the wallet's
                        self._decide_uncertain(tx, res, u_id, u_rec, self.registry.get(u_tid))
                    else:
                        res.uncertain_add.add(card_no)      # a passage waits for its card's next passage (§4.17)

    def _passage_settles(self, tx, res, rec):
        """An applied passage settles the card's uncertain passages its ticket counter decides (SPEC.md §4.16,
        §4.17); the card stays among the uncertain ones while any record of it is left open."""
        card_no = rec.card_no
        if not (self.uncertain_every_card or card_no in self.uncertain_cards or card_no in res.uncertain_add):
            return
        res.uncertain_looked.add(card_no)
        for u_id, u_tid, _u_seq, u_raw, _u_counter in tx.uncertain_records(card_no):
            if u_id in tx.record_status:
                continue        # settled in this batch by a nested call
            u_rec = R.Record.decode(u_raw)
            happened = ticket_rules.passage_landed(u_rec, rec)
            if happened is None:
                res.uncertain_add.add(card_no)
            else:
                self._settle_uncertain(tx, res, u_id, u_rec, self.registry.get(u_tid), happened)

    def _shift(self, tx, state, rec):
        """A shift opened with a card that is no staff card of the terminal's merchant: alarmed, the sales stand."""
        if tx.staff_merchant(rec.card_no) != state.merchant_id:
            tx.add_alarm(ALARM_STAFF_UNKNOWN, rec.card_no, state.id, rec.seq,
                         "card %d opened or closed a shift at term-%d but is no staff card of merchant %d" % (
                             rec.card_no, state.id, state.merchant_id))

    def _settle_late(self, tx, res, state, rec, delta_cents):
        """A replaced card's late record (SPEC.md §4.13), delta_cents on its account: a debit paid from its hold,
        beyond it the park's loss, alarmed; a credit taken into the hold for the new card (granted to it at once
        after the release)."""
        done = replacement_store.settle_late_in(tx, rec.card_no, state.id, rec.seq, delta_cents, LATE_CREDIT_ACTOR)
        if done is None:
            return
        settled, credit = done
        if credit is not None:
            res.credits_granted = True
        res.counts["late_debits" if delta_cents < 0 else "late_credits"] += 1
        if settled.alarm:
            detail = "replaced card %d spent %d cents beyond its hold (term-%d seq %d): the park's loss" % (
                rec.card_no, settled.loss_cents, state.id, rec.seq)
            tx.add_alarm(ALARM_LATE_LOSS, rec.card_no, state.id, rec.seq, detail)
            log.warning("event=late_loss %s", detail)

    def _deliver_credits(self, tx, res, state, rec, entries):
        """Mark the credits a credit record delivers; return its entries (SPEC.md §8.4).

        A credit the card received before (only a card restored from an old dump shows it again) is on the
        card all the same: it is booked as the park's loss, alarmed, and the card blacklisted, as a clone.
        A lost card's credit that moved to its replacement (SPEC.md §4.13) carries its value there: delivered
        late onto the lost card it moves none. A credit's bonus part goes to the card's bonus purse (§8.1).
        """
        delivery, _reason, _detail = rules.credit_delivery(credit_store.card_credits(tx, rec.card_no), rec)
        if delivery is None:    # checked when stored, and a credit a terminal holds cannot be cancelled
            delivery = rules.CreditDelivery((), 0, rec.amount_cents)
        credit_store.deliver(tx, rec.card_no, delivery.credit_nos, state.id, rec.seq)
        if not (delivery.again_cents or delivery.moved_cents or delivery.bonus_cents):
            return entries
        change = ledger.bonus_change(rec, _bonus_before(tx, rec), delivery.bonus_cents)
        purse = [(accounts.bonus_account(rec.card_no), change), (accounts.BONUS_PURSES, -change)] if change else []
        if not delivery.again_cents:
            return ledger.credit_postings(rec.card_no, delivery.fresh_cents, 0) + purse
        detail = "card %d received credits %d..%d again (term-%d seq %d): %d cents" % (
            rec.card_no, rec.discount_cents + 1, rec.item, state.id, rec.seq, delivery.again_cents)
        tx.add_alarm(ALARM_CREDIT_TWICE, rec.card_no, state.id, rec.seq, detail)
        version = tx.blacklist_add(rec.card_no, "credit twice: " + detail)
        if version is not None:
            res.blacklist_versions.append(version)
        log.warning("event=credit_twice %s", detail)
        return ledger.credit_postings(rec.card_no, delivery.fresh_cents, delivery.again_cents) + purse

    def _decide_uncertain(self, tx, res, record_id, rec, state):
        """Apply the counter rule to one uncertain record (parkcard.domain.ingest_rules.decide_uncertain)."""
        outcome = rules.decide_uncertain(tx, rec)
        if outcome is UncertainOutcome.OPEN:
            res.uncertain_add.add(rec.card_no)
        else:
            self._settle_uncertain(tx, res, record_id, rec, state, outcome is UncertainOutcome.HAPPENED)

    def _settle_uncertain(self, tx, res, record_id, rec, state, happened):
        if happened:
            tx.set_record_status(record_id, RecordStatus.APPLIED)
            res.counts["uncertain_applied"] += 1
            self._apply_value(tx, res, state, record_id, rec, self._postings(tx, state, rec))
        else:
            tx.set_record_status(record_id, RecordStatus.VOIDED)
            res.counts["uncertain_void"] += 1
            if rec.kind in ledger.GIVE_BACK_KINDS and tx.refund_of(state.id, rules.given_back_seq(rec)) == rec.seq:
                tx.release_refund(state.id, rules.given_back_seq(rec))

    # -- back in the event loop, after COMMIT
    def _commit(self, res):
        for view in res.views.values():
            view.state.counter_up = view.counter_up
            view.state.acked_upto = view.acked_upto
            view.state.above = view.above
        # A stale member costs one query, a missing one a fact: a card leaves only when every uncertain
        # record of it was looked at and none was left open.
        self.uncertain_cards -= res.uncertain_looked - res.uncertain_add
        if not self.uncertain_every_card:
            self.uncertain_cards |= res.uncertain_add
            self._bound_uncertain_cards()
        self.stats.update(res.counts)
        if res.counts["above_full"]:
            log.warning("event=above_full records=%d max=%d action=left_for_the_terminal_to_resend",
                        res.counts["above_full"], ABOVE_MAX)
        for reason, terminal_id, detail in res.quarantined:
            self.stats["quarantined." + reason] += 1
            log.warning("event=quarantine reason=%s terminal=%s detail=%r", reason, terminal_id, detail)
