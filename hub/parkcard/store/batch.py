"""What a batch stages on every backend: the rows it will write at its end, kept in memory until the flush.

A backend's WriteTx subclasses StagedWriteTx and adds the reads (which see
what is staged here) and the flush that writes the staged rows its own way.
"""

import hashlib
import time

from protocol import record as R

from parkcard.domain import accounts
from parkcard.domain.lifecycle import RecordStatus
from parkcard.store import interface
from parkcard.store.rows import CounterClaim, SeqRecord, UncertainRecord

# Quarantine keeps evidence, not payloads: a prefix (a whole record or frame header and more) and the
# digest of the whole, so a flood of large publishes cannot fill the disk (the broker's own limit is
# the protocol's largest frame, parkcard.transport.broker).
QUARANTINE_KEPT_MAX = 4096
TOPIC_KEPT_MAX = 256

# Column positions in a staged records row (add_record).
ID, RAW, KIND, CARD, COUNTER, STATUS = 0, 3, 4, 5, 6, 10
RECORD_KIND_AT = 1          # a record's kind byte, every record version (SPEC.md §4.1)
MISSING = object()          # looked for by a prefetch and not stored


class StagedWriteTx(interface.WriteTx):
    """The staged half of a WriteTx: records, postings, claims, cards and the rest, flushed by the backend."""

    def __init__(self, conn, stats):
        """conn: the backend's writer connection; stats: the store's counters of bounds hit."""
        self.conn = conn
        self.stats = stats          # the store's counters (bounds hit), shared by every batch
        self.now = time.time()
        self.records = []
        self._batch_records = {}    # (terminal_id, seq) -> row of self.records
        self.record_status = {}     # record id -> new status, this batch
        self.ledger_tx = []
        self.entries = []
        self.accounts = set()
        self.counters = {}          # (card_no, counter) -> CounterClaim, this batch
        self.cards = {}             # card_no -> [uid, shadow, last_counter] to upsert
        self.quarantine = []
        self._held = {}             # (terminal_id, seq) -> raw of a damaged record held in quarantine, this batch
        self.conflicts = []
        self.alarms = []
        self.attempts = []
        self.passages = []
        self.terminal_updates = {}  # terminal_id -> {column: value}
        self.gaps = {}              # terminal_id -> [(from, to)]
        self.audits = []            # (actor, action, details) for the operator audit log, at commit
        self.refunds = {}           # (terminal_id, sale_seq) -> refund_seq claimed this batch; None = released
        self._record_rows = {}      # (terminal_id, seq) -> SeqRecord or MISSING, prefetched this batch
        self._counter_rows = {}     # (card_no, counter) -> CounterClaim or MISSING, prefetched or staged this batch
        self._balances = {}         # account -> cents as this batch leaves it so far (accounts read by account_cents)

    def counter_rows(self, card_no, counters):
        """Return {counter: CounterClaim} among the given counters of a card: staged, prefetched, else read."""
        out = {}
        missing = []
        known = self._counter_rows.get      # what claim_counter staged, over what the prefetch read
        for c in counters:
            row = known((card_no, c))
            if row is None:
                missing.append(c)
            elif row is not MISSING:
                out[c] = row
        if missing:
            out.update(self._read_counters(card_no, missing))
        return out

    def account_cents(self, account):
        """The account's balance with what this batch posted so far (read once per batch, then kept up)."""
        if account not in self._balances:
            stored = self.sql_row("SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM ledger_entries "
                                  "WHERE account=?", (account,))[0]
            self._balances[account] = stored + sum(c for _tx, a, c in self.entries if a == account)
        return self._balances[account]

    def uncertain_records(self, card_no):
        """Return [UncertainRecord] of the card's unresolved uncertain records, this batch's staged ones first."""
        rows = [UncertainRecord(r[ID], r[1], r[2], r[RAW], r[COUNTER]) for r in self.records
                if r[CARD] == card_no and r[STATUS] == RecordStatus.UNCERTAIN]
        seen = {r.id for r in rows}
        rows += [UncertainRecord(i, terminal_id, seq, bytes(raw), counter) for i, terminal_id, seq, raw, counter
                 in self.sql_rows("SELECT id, terminal_id, seq, raw, card_counter FROM records WHERE card_no=? "
                                  "AND status=?", (card_no, RecordStatus.UNCERTAIN)) if i not in seen]
        return [r for r in rows if r.id not in self.record_status]

    def records_at(self, card_no, kind, counter):
        """Return [raw] of the card's applied records of this kind claiming this card_counter, this batch's too."""
        found = [r[RAW] for r in self.records if r[CARD] == card_no and r[4] == kind and r[COUNTER] == counter
                 and self.record_status.get(r[ID], r[STATUS]) == RecordStatus.APPLIED]
        return found + [bytes(row[0]) for row in self.sql_rows(
            "SELECT raw FROM records WHERE card_no=? AND kind=? AND card_counter=? AND status=?",
            (card_no, kind, counter, RecordStatus.APPLIED))]

    def record_entry_cents(self, record_id, account):
        """What a record's ledger transaction booked to account (0 when none): staged by this batch, else stored."""
        staged = {tx_id for tx_id, rid, _kind, _at in self.ledger_tx if rid == record_id}
        if staged:
            return sum(c for tx_id, a, c in self.entries if tx_id in staged and a == account)
        return self.sql_row("SELECT CAST(COALESCE(SUM(e.amount_cents), 0) AS BIGINT) FROM ledger_tx t "
                            "JOIN ledger_entries e ON e.tx_id = t.id WHERE t.record_id=? AND e.account=?",
                            (record_id, account))[0]

    def may_hold_events(self):
        """True when the batch stored what may be a webhook event: a record, a record's new status, an alarm.

        Asked in the writer's thread once COMMIT returned, so that the batch's staged rows are freed there, not
        on the event loop whenever the future that would have carried the WriteTx is let go.
        """
        return bool(self.records or self.record_status or self.alarms)

    def _purses_read(self, card_nos, stored):
        """Keep the bonus purses a prefetch read ({account: stored cents}) of card_nos (0 when none stored)."""
        for card_no in card_nos:
            account = accounts.bonus_account(card_no)
            if account not in self._balances:
                self._balances[account] = stored.get(account, 0) + sum(
                    c for _tx, a, c in self.entries if a == account)

    def _read_counters(self, card_no, counters):
        """{counter: CounterClaim} of the stored claims among counters (the backend reads them)."""
        raise NotImplementedError

    def record(self, terminal_id, seq):
        """Return the stored record at (terminal, seq) as a SeqRecord, or None."""
        row = self._batch_records.get((terminal_id, seq))
        if row is not None:
            found = SeqRecord(row[ID], row[RAW], row[STATUS], row[CARD], row[COUNTER])
        else:
            found = self._stored_record(terminal_id, seq)
            if found is None:
                return None
        if self.record_status and found.id in self.record_status:  # settled earlier in this batch
            found = found._replace(status=self.record_status[found.id])
        return found

    def record_kind(self, terminal_id, seq):
        """The kind of the record stored at (terminal, seq), this batch's too, or None: no SeqRecord made for a
        staged one (a booth debit asks it of the record below it, most often the one staged just before)."""
        row = self._batch_records.get((terminal_id, seq))
        if row is not None:
            return row[KIND]
        found = self._stored_record(terminal_id, seq)
        return None if found is None else found.raw[RECORD_KIND_AT]

    def last_shift_seq(self, terminal_id, below_seq):
        """The seq of the terminal's last applied shift record (kind 18) below below_seq: staged, else stored."""
        staged = [row[2] for row in self.records if row[1] == terminal_id and row[4] == R.KIND_SHIFT
                  and row[2] < below_seq and row[STATUS] == RecordStatus.APPLIED]
        row = self.sql_row("SELECT MAX(seq) FROM records WHERE terminal_id=? AND kind=? AND seq<? AND status=?",
                           (terminal_id, R.KIND_SHIFT, below_seq, RecordStatus.APPLIED))
        found = staged + ([row[0]] if row is not None and row[0] is not None else [])
        return max(found) if found else None

    def staff_merchant(self, card_no):
        """The merchant whose staff member holds staff card card_no, or None (parkcard.store.staff)."""
        row = self.sql_row("SELECT merchant_id FROM staff WHERE card_no=?", (card_no,))
        return row[0] if row is not None else None

    def _stored_record(self, terminal_id, seq):
        """The backend's read of a record written before this batch: a SeqRecord, or None."""
        raise NotImplementedError

    # -- writes
    def add_record(self, record_id, terminal_id, seq, raw, rec, status):
        """Store a record (not yet in the ledger unless post() is called too)."""
        row = (record_id, terminal_id, seq, raw, rec.kind, rec.card_no, rec.card_counter, rec.amount_cents,
               rec.balance_after_cents, rec.time_s, status, self.now if status == RecordStatus.APPLIED else None)
        self.records.append(row)
        self._batch_records[(terminal_id, seq)] = row

    def set_record_status(self, record_id, status):
        """Change the status of a stored record (uncertain -> applied or voided)."""
        self.record_status[record_id] = status

    def post(self, record_id, kind, entries):
        """Append a ledger transaction for a record; entries sum to zero (checked by the caller)."""
        tx_id = self.next_id("ledger_tx")
        self.ledger_tx.append((tx_id, record_id, kind, self.now))
        append, named, balances = self.entries.append, self.accounts.add, self._balances
        for account, amount in entries:
            append((tx_id, account, amount))
            named(account)
            if account in balances:
                balances[account] += amount
        return tx_id

    def claim_counter(self, card_no, counter, terminal_id, seq, delta, balance_after):
        """Record that (card, counter) belongs to this record."""
        self.counters[(card_no, counter)] = self._counter_rows[(card_no, counter)] = CounterClaim(
            terminal_id, seq, delta, balance_after)

    def claim_refund(self, terminal_id, sale_seq, refund_seq):
        """Record that a refund reverses this sale (one refund per sale)."""
        self.refunds[(terminal_id, sale_seq)] = refund_seq

    def release_refund(self, terminal_id, sale_seq):
        """Free a sale whose refund turned out not to have happened."""
        self.refunds[(terminal_id, sale_seq)] = None

    def set_card(self, card_no, uid, shadow_balance_cents, last_counter):
        """Set the card's shadow balance and newest counter."""
        self.cards[card_no] = [uid, shadow_balance_cents, last_counter]

    def add_quarantine(self, raw, topic, terminal_id, reason, detail, seq=None):
        """Keep a frame or record that failed verification: its first QUARANTINE_KEPT_MAX bytes, size and
        digest; with seq, a damaged record holding that seq."""
        raw = bytes(raw)
        if len(raw) > QUARANTINE_KEPT_MAX:
            self.stats["quarantine_cut"] += 1
        self.quarantine.append((raw[:QUARANTINE_KEPT_MAX], len(raw), hashlib.sha256(raw).digest(),
                                topic[:TOPIC_KEPT_MAX], terminal_id, reason, detail, self.now, seq))
        if seq is not None:
            self._held[(terminal_id, seq)] = raw

    def add_conflict(self, terminal_id, seq, raw, existing_raw):
        """Keep a record whose key is taken by other bytes."""
        self.conflicts.append((terminal_id, seq, raw, existing_raw, self.now))

    def add_alarm(self, kind, card_no, terminal_id, seq, detail):
        """Raise an alarm for an operator."""
        self.alarms.append((kind, card_no, terminal_id, seq, detail, self.now))

    def add_passage(self, record_id, rec):
        """Keep an applied passage record's facts for occupancy (SPEC.md §4.9): kind, area, reason, product, time."""
        reason, area, _entries_left = R.passage_fields(rec)
        self.passages.append((record_id, rec.terminal_id, rec.card_no, rec.kind, area, reason, rec.item, rec.time_s))

    def add_attempt(self, rec):
        """Keep a tap of a blacklisted card (a lock or attempt record): when, where, which card."""
        self.attempts.append((rec.card_no, rec.terminal_id, rec.seq, rec.kind, rec.time_s, self.now))

    def audit(self, actor, action, **details):
        """Record an operator action in the audit log as part of this transaction (appended at commit)."""
        self.audits.append((actor, action, details))

    def update_terminal(self, terminal_id, **columns):
        """Set terminal columns at commit (last value wins)."""
        self.terminal_updates.setdefault(terminal_id, {}).update(columns)

    def set_gaps(self, terminal_id, gaps):
        """Replace the terminal's list of missing seq ranges."""
        self.gaps[terminal_id] = gaps
