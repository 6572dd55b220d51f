"""The auditor: re-derives what must hold from raw facts and reports every breach, step by step.

Raw facts are the stored record bytes (decoded and MAC-checked with each
terminal's key, re-posted with the posting rules), the terminals' journal
files (read by this module's own reader of the on-flash format), the virtual
cards' memory and the auditor's own log of every card write that landed.
Derived tables (ledger entries, shadow balances) are compared with those,
never only with each other.
"""

import hashlib
import os
import sqlite3
import struct
from binascii import crc32
from collections import Counter, defaultdict

from protocol import frames
from protocol.desk import DESK_SOURCE_ID
from protocol import record as R

from parkcard import audit
from parkcard.domain import accounts, ledger

_APPEND, _MARK = 0x41, 0x4D
_APPEND_HEAD = 9
_MARK_LEN = 10


class Violation:
    """One breach of an invariant: when, which, what."""

    def __init__(self, step, kind, detail):
        self.step = step
        self.kind = kind
        self.detail = detail

    def __repr__(self):
        return "step %d %s: %s" % (self.step, self.kind, self.detail)


def journal_records(dirpath, record_size=R.RECORD_SIZE):
    """Yield the raw records appended in a terminal's journal files (SPEC of terminal/journal.py), oldest first."""
    if not os.path.isdir(dirpath):
        return
    for name in sorted(n for n in os.listdir(dirpath) if n.endswith(".seg")):
        with open(os.path.join(dirpath, name), "rb") as f:
            data = f.read()
        at = 0
        while at < len(data):
            size = _APPEND_HEAD + record_size + 4 if data[at] == _APPEND else _MARK_LEN if data[at] == _MARK else 0
            entry = data[at:at + size]
            if not size or len(entry) < size or crc32(entry[:-4]) != struct.unpack(">I", entry[-4:])[0]:
                break       # a torn tail: recovery cuts it off
            if data[at] == _APPEND:
                yield entry[_APPEND_HEAD:_APPEND_HEAD + record_size]
            at += size


def fingerprint(payload):
    """Identity of a message's bytes."""
    return hashlib.sha256(bytes(payload)).digest()


class Auditor:
    """Invariants of the whole park, checked as the simulation goes."""

    def __init__(self, db_path, plans, roots, visitors, suppressed=()):
        """plans: TerminalPlan of every terminal; roots: {terminal_id: its flash directory};
        suppressed: violation kinds only counted (known and reported elsewhere)."""
        self.db_path = db_path
        self.roots = roots
        self.plans = {p.terminal_id: p for p in plans}
        self.record_macs = {p.terminal_id: R.record_mac_for(p.key) for p in plans}
        # The hub's desk source posts as the desk's merchant would (its key is the hub's: record_mac()).
        self.plans.update({DESK_SOURCE_ID: p for p in plans if p.role == frames.ROLE_DESK})
        self.frame_macs = {p.terminal_id: frames.frame_mac_for(p.key) for p in plans}
        self.visitors = {v.card_no: v for v in visitors}
        self.landed = defaultdict(list)   # card_no -> [(counter, balance_before, balance_after, terminal_id)]
        self.restored = set()             # cards a fraud restored from a dump (value made on purpose)
        self.genuine = set()              # fingerprints of every message a terminal produced
        self.violations = []
        self.step = 0
        self.acks_checked = 0
        self.repeats = 0
        self.suppressed = frozenset(suppressed)
        self.suppressed_counts = Counter()
        self._seen = set()
        self._db = None

    # -- plumbing
    def db(self):
        """A read-only connection of the auditor's own to the hub database."""
        if self._db is None:
            self._db = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True)
        return self._db

    def close(self):
        """Release the database."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def fail(self, kind, detail):
        """Record a violation at the current step (the same one again only counts)."""
        if kind in self.suppressed:
            self.suppressed_counts[kind] += 1
            return
        if (kind, detail) in self._seen:
            self.repeats += 1
            return
        self._seen.add((kind, detail))
        self.violations.append(Violation(self.step, kind, detail))

    # -- facts as they happen
    def on_downlink(self, topic, payload):
        """Every frame the hub sends passes here before it leaves: an ack must cover only durable records."""
        try:
            self._check_ack(payload)
        except Exception as exc:  # noqa: BLE001 - the auditor's own trouble must not look like the hub's
            self.fail("auditor_error", "downlink on %s: %r" % (topic, exc))

    def _check_ack(self, payload):
        terminal_id = frames.peek_terminal(payload)[1]
        mac = self.frame_macs.get(terminal_id)
        if mac is None:
            return
        frame = frames.decode(mac, payload)
        if frame.type != frames.T_ACK:
            return
        upto = frames.parse_ack(frame.body)[0]
        stored = self.db().execute("SELECT COUNT(*) FROM records WHERE terminal_id=? AND seq<=?",
                                   (terminal_id, upto)).fetchone()[0]
        self.acks_checked += 1
        if stored != upto:
            self.fail("ack_not_durable", "term-%d acked up to seq %d with %d of them stored" % (
                terminal_id, upto, stored))

    def on_card_write(self, card_no, terminal_id, before, after):
        """A write landed on a card (its slot in force moved): it must be backed by a durable record."""
        self.landed[card_no].append((after.counter, before.balance_cents, after.balance_cents, terminal_id))
        if card_no in self.restored:
            return
        if terminal_id == DESK_SOURCE_ID and self._desk_operation_holds(card_no, after):
            return
        for raw in self._durable_records(terminal_id):
            rec = R.Record.decode(raw)
            # Voided records may carry the same counter: the card MAC of the written slot is the one that landed.
            if rec.card_no == card_no and rec.card_counter == after.counter and rec.card_mac == after.mac:
                if rec.balance_after_cents != after.balance_cents:
                    self.fail("record_mismatch", "card %d counter %d: card holds %d, record says %d" % (
                        card_no, after.counter, after.balance_cents, rec.balance_after_cents))
                return
        self.fail("value_without_record", "card %d went %d -> %d (counter %d) at term-%d with no durable record" % (
            card_no, before.balance_cents, after.balance_cents, after.counter, terminal_id))

    def record_mac(self, terminal_id):
        """The record Mac of a terminal of the plan, or of the hub's desk source (its key is the hub's own)."""
        if terminal_id not in self.record_macs and terminal_id == DESK_SOURCE_ID:
            row = self.db().execute("SELECT key FROM terminals WHERE id=?", (terminal_id,)).fetchone()
            if row is None:
                return None
            self.record_macs[terminal_id] = R.record_mac_for(bytes(row[0]))
        return self.record_macs.get(terminal_id)

    def _desk_operation_holds(self, card_no, after):
        """True when a desk operation kept (pending or posted) asked for exactly this slot: its durable record."""
        for counter, blocks in self.db().execute("SELECT counter_after, blocks FROM desk_operations WHERE card_no=? "
                                                 "AND state IN ('pending', 'posted')", (card_no,)):
            if counter == after.counter and blocks is not None and after.mac in bytes(blocks):
                return True
        return False

    def on_card_not_written(self, card_no, terminal_id, seq):
        """A write of this record never reached the card: the hub must not have applied it."""
        row = self.db().execute("SELECT status FROM records WHERE terminal_id=? AND seq=?",
                                (terminal_id, seq)).fetchone()
        if row is not None and row[0] == "applied":
            self.fail("applied_not_written", "card %d: term-%d seq %d is applied, its card write never happened" % (
                card_no, terminal_id, seq))

    def _durable_records(self, terminal_id):
        root = self.roots.get(terminal_id)
        if root is not None:
            yield from journal_records(os.path.join(root, "data", "journal"))
        for (raw,) in self.db().execute("SELECT raw FROM records WHERE terminal_id=?", (terminal_id,)):
            yield bytes(raw)

    def produced(self, payloads):
        """Messages made by real terminals: the hub must never quarantine one as its own error."""
        self.genuine.update(fingerprint(p) for p in payloads)

    def hub_stopped(self, exc, explained):
        """The hub process ended by itself."""
        if not explained:
            self.fail("hub_stopped", "the hub's consumer died: %r" % (exc,))

    def hub_stalled(self, detail):
        """The hub was up with work to do and did not finish it."""
        self.fail("hub_stalled", detail)

    # -- checks over the database
    def check_ledger(self):
        """Re-decode every stored record, re-post the applied ones, compare with the ledger entry by entry.

        The decoding and the comparison are the product's ledger check's (parkcard.audit); the keys and
        rates are the plans', facts of the simulation's own.
        """
        db = self.db()
        posted = defaultdict(list)
        for record_id, account, amount in db.execute(
                "SELECT t.record_id, e.account, e.amount_cents FROM ledger_entries e "
                "JOIN ledger_tx t ON t.id = e.tx_id"):
            posted[record_id].append((account, amount))
        applied = set()
        applied_counters = Counter()
        for record_id, terminal_id, seq, raw, status in db.execute(
                "SELECT id, terminal_id, seq, raw, status FROM records"):
            mac = self.record_mac(terminal_id)
            rec, why = audit.decode_stored(raw, mac, terminal_id, seq) if mac else (None, "no such terminal")
            if rec is None:
                self.fail("stored_record_bad", "record %d (term-%d seq %d): %s" % (record_id, terminal_id, seq, why))
                continue
            if status != "applied":
                continue
            applied.add(record_id)
            plan = self.plans[terminal_id]
            if rec.kind != R.KIND_ATTEMPT:
                applied_counters[(rec.card_no, rec.card_counter)] += 1
            why = audit.posting_mismatch(rec, plan.merchant_id, plan.rate_bps, posted.get(record_id, []))
            if why is not None:
                self.fail("ledger_mismatch", "record %d: %s" % (record_id, why))
        for record_id in sorted(set(posted) - applied, key=str):
            self.fail("ledger_mismatch", "record %s: posted %s, it is not an applied record" % (
                record_id, sorted(posted[record_id])))
        clones = {r[0] for r in db.execute("SELECT DISTINCT card_no FROM alarms WHERE kind='clone'")}
        for (card_no, counter), n in applied_counters.items():
            if n > 1 and card_no not in clones:
                self.fail("applied_twice", "card %d counter %d applied %d times without a clone alarm" % (
                    card_no, counter, n))

    async def check_product_ledger(self):
        """The hub's own `ledger check` finds no discrepancy in the drained park's database."""
        report = await audit.check_file(self.db_path)
        if not report.ok:
            self.fail("ledger_check", "; ".join(line for line in report.lines() if not line.startswith("  ")
                                                and not line.endswith(": 0")) or "discrepancies")

    def check_quarantine(self):
        """No message a terminal really sent is quarantined as the hub's own failure."""
        for qid, raw, topic in self.db().execute("SELECT id, raw, topic FROM quarantine WHERE reason='hub_error'"):
            if fingerprint(raw) in self.genuine:
                self.fail("good_message_quarantined", "quarantine %d: a genuine message on %s kept as hub_error"
                          % (qid, topic))

    def check_settled(self, cards_now, locked=()):
        """Once drained: card memory = hub shadow = re-posted ledger account, and what landed = what was applied.

        cards_now: {card_no: slot in force on the card}; locked: cards locked on the card, which no later
        tap can move past an uncertain record (the hub cannot decide those, by design).
        """
        self.check_ledger()
        db = self.db()
        undecided = {r[0] for r in db.execute("SELECT DISTINCT card_no FROM records WHERE status='uncertain'")}
        clones = {r[0] for r in db.execute("SELECT DISTINCT card_no FROM alarms WHERE kind='clone'")}
        reposted = defaultdict(int)
        counters = defaultdict(set)
        for terminal_id, raw, status in db.execute("SELECT terminal_id, raw, status FROM records"):
            rec = R.Record.decode(bytes(raw), self.record_mac(terminal_id))
            if status != "applied":
                continue
            plan = self.plans[terminal_id]
            for account, amount in ledger.postings(rec, plan.merchant_id, plan.rate_bps):
                if account == accounts.card_account(rec.card_no):
                    reposted[rec.card_no] += amount
            if rec.kind != R.KIND_ATTEMPT:
                counters[rec.card_no].add((rec.card_counter, rec.balance_after_cents))
        shadows = dict(db.execute("SELECT card_no, shadow_balance_cents FROM cards"))
        for card_no, slot in sorted(cards_now.items()):
            if card_no in clones and card_no not in self.restored:
                self.fail("false_clone_alarm", "card %d was never copied or restored, yet the hub raised a clone "
                          "alarm and blacklisted it" % card_no)
            if card_no in self.restored or card_no in clones:
                continue
            visitor = self.visitors[card_no]
            landed = {(c, b1) for c, _b0, b1, _t in self.landed[card_no]}
            landed.add((visitor.issued_counter, visitor.issued_cents))
            if card_no in undecided and card_no in locked:
                continue
            if card_no in undecided:
                self.fail("undecided", "card %d still has an uncertain record at the hub after the drain" % card_no)
                continue
            if counters[card_no] != landed:
                self.fail("applied_not_landed", "card %d: (counter, balance) applied but not on the card %s, "
                          "on the card but not applied %s" % (card_no, sorted(counters[card_no] - landed),
                                                               sorted(landed - counters[card_no])))
            if not slot.balance_cents == shadows.get(card_no) == reposted[card_no]:
                self.fail("value_mismatch", "card %d: card %d, hub shadow %s, records re-posted %d" % (
                    card_no, slot.balance_cents, shadows.get(card_no), reposted[card_no]))
        alarmed = {r[0] for r in db.execute("SELECT DISTINCT card_no FROM alarms WHERE kind IN ('clone', 'chain')")}
        for card_no in sorted(self.restored - alarmed):
            for counter, balances in self.reused_counters(card_no).items():
                # Detectable only when the hub holds every write of the counter as a certain fact: a write
                # its terminal could not confirm (uncertain, then voided) looks like one that
                # never landed, and a restore after it is indistinguishable from an honest retry.
                statuses = [r[0] for b in balances for r in db.execute(
                    "SELECT status FROM records WHERE card_no=? AND card_counter=? AND balance_after_cents=?",
                    (card_no, counter, b))]
                if len(statuses) >= len(balances) and all(s == "applied" for s in statuses):
                    self.fail("clone_missed", "card %d was restored from a dump and reused counter %d: the hub "
                              "applied both writes and raised no alarm" % (card_no, counter))

    def reused_counters(self, card_no):
        """{counter: [balance_after of each write]} of the counters that landed more than once on this card."""
        writes = defaultdict(list)
        for counter, _b0, b1, _t in self.landed[card_no]:
            writes[counter].append(b1)
        return {c: b for c, b in writes.items() if len(b) > 1}
