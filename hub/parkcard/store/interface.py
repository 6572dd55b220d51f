"""What services and ingest may ask of a store: the contract every backend implements.

A store is the only place with SQL. Writes are whole batches: `await
store.write(fn, audit)` runs the plain function `fn(tx)` inside one
transaction, where `tx` (a `WriteTx`) offers the reads and staged writes the
rules need; the rules themselves stay synchronous and free of I/O. Reads are
coroutines returning the typed rows of `parkcard.store.rows`.

`audit=` on a write names the operator actions the change records:
audit(result) -> [(actor, action, details)] or None. They are appended to the
operator audit log (parkcard.oplog) in the change's own transaction, which also
moves the database's anchor of the log; `audited()` builds the usual one.

Errors: `NotIssued`, `PeriodOverlap`, `Refused` (a ValueError) for a refused
change (a person's mistake: the message says what to do, an Explained refusal a
page words in its own language); `DatabaseDamaged` for a file
the hub must not serve from; `is_transient(exc)` tells an unavailable store
(retry later) from bad data.
"""

import abc


def audited(actor, action, extra=None, when=bool, **details):
    """An `audit=` for a write: the operator's action, appended in the change's own transaction.

    Recorded when when(result) says the change happened (by default: a true result); extra(result)
    adds what only the change knows, such as the blacklist version it took.
    """
    def entries(result):
        if not when(result):
            return None
        return [(actor, action, {**details, **(extra(result) if extra else {})})]
    return entries


def version_detail(version):
    """The audit detail of a blacklist change (audited's extra=): the version it took."""
    return dict(version=version)


class WriteTx(abc.ABC):
    """The statements a batch may run; lives only inside one `Store.write` call.

    Attributes: `now` (epoch seconds of the transaction), `stats` (the store's
    counters of bounds hit), `record_status` ({record id: new status} set in this
    batch). Writes are staged and flushed at the end of the batch.
    """

    def prefetch(self, records=(), cards=(), counters=(), terminals=()):
        """Hint what the batch will read ([(terminal_id, seq)], [card_no], [(card_no, counter)], [terminal_id]).

        A backend loads them ahead in a few statements (a statement per key costs more than its lookup);
        by default nothing happens.
        """

    # -- statements the shared methods (parkcard.store.reads) write once for every backend
    @abc.abstractmethod
    def sql_row(self, sql, params=()):
        """Run one statement with `?` placeholders; return its first row as a tuple, or None."""

    def sql_row_as(self, make, sql, params=()):
        """The first row sql reads made by make (a store.rows NamedTuple, or a function of its columns), or None."""
        row = self.sql_row(sql, params)
        return None if row is None else make(*row)

    def sql_rows(self, sql, params=()):
        """Run one statement with `?` placeholders; return every row as a tuple (a backend runs it at once)."""
        raise NotImplementedError

    @abc.abstractmethod
    def sql_rowcount(self, sql, params=()):
        """Run one statement with `?` placeholders; return how many rows it changed."""

    # -- reads inside the transaction (they see what this batch staged)
    @abc.abstractmethod
    def next_id(self, table):
        """Allocate the id of the next row of `records` or `ledger_tx` written by this batch."""

    @abc.abstractmethod
    def record(self, terminal_id, seq):
        """Return the stored record at (terminal, seq) as a rows.SeqRecord, or None."""

    @abc.abstractmethod
    def counter_rows(self, card_no, counters):
        """Return {counter: rows.CounterClaim} among the given counters of a card."""

    @abc.abstractmethod
    def card(self, card_no):
        """Return [uid, shadow_balance_cents, last_counter] of a card (None values when unknown)."""

    @abc.abstractmethod
    def account_cents(self, account):
        """Return a ledger account's balance with what this batch posted so far (a card's bonus purse, read by
        its postings; a prefetch of the card reads it too)."""

    @abc.abstractmethod
    def record_entry_cents(self, record_id, account):
        """Return what the ledger transaction of a record booked to account (a give-back reads its sale's bonus
        purse entry, SPEC.md §4.12), with what this batch posted; 0 when none."""

    @abc.abstractmethod
    def card_deposit(self, card_no):
        """Return the deposit in cents recorded for a card (0 when unknown)."""

    @abc.abstractmethod
    def uncertain_records(self, card_no):
        """Return [rows.UncertainRecord] of the card's unresolved uncertain records."""

    @abc.abstractmethod
    def records_at(self, card_no, kind, counter):
        """Return [raw] of the card's applied records of this kind claiming this card_counter."""

    @abc.abstractmethod
    def record_kind(self, terminal_id, seq):
        """Return the kind of the stored record at (terminal, seq), or None."""

    @abc.abstractmethod
    def held_damaged(self, terminal_id, seq):
        """Return the bytes of the damaged record holding (terminal, seq) in quarantine, or None."""

    @abc.abstractmethod
    def terminal_locked(self, terminal_id):
        """True when an operator locked the terminal (read now: the CLI may have changed it)."""

    @abc.abstractmethod
    def refund_of(self, terminal_id, sale_seq):
        """Return the seq of the refund that claimed this sale, or None."""

    @abc.abstractmethod
    def last_shift_seq(self, terminal_id, below_seq):
        """Return the seq of the terminal's last applied shift record (kind 18) below below_seq, or None."""

    @abc.abstractmethod
    def staff_merchant(self, card_no):
        """Return the merchant whose staff member holds staff card card_no, or None."""

    @abc.abstractmethod
    def next_card_no(self, first=100001):
        """Return an unused card number (the caller writes its row in this same transaction)."""

    @abc.abstractmethod
    def card_exists(self, card_no):
        """True when the card has a row (stored, or staged in this batch)."""

    @abc.abstractmethod
    def blacklisted(self, card_no):
        """True when the card is on the blacklist now."""

    # -- writes
    @abc.abstractmethod
    def add_record(self, record_id, terminal_id, seq, raw, rec, status):
        """Store a record (not yet in the ledger unless post() is called too)."""

    @abc.abstractmethod
    def set_record_status(self, record_id, status):
        """Change the status of a stored record (uncertain -> applied or voided)."""

    @abc.abstractmethod
    def post(self, record_id, kind, entries):
        """Append a ledger transaction for a record; entries sum to zero (checked by the caller)."""

    @abc.abstractmethod
    def claim_counter(self, card_no, counter, terminal_id, seq, delta, balance_after):
        """Record that (card, counter) belongs to this record."""

    @abc.abstractmethod
    def claim_refund(self, terminal_id, sale_seq, refund_seq):
        """Record that a refund reverses this sale (one refund per sale)."""

    @abc.abstractmethod
    def release_refund(self, terminal_id, sale_seq):
        """Free a sale whose refund turned out not to have happened."""

    @abc.abstractmethod
    def set_card_info(self, card_no, uid, tier, deposit_cents):
        """Write the desk's view of a new card (uid, tier, deposit, issued_at) now, in this transaction."""

    @abc.abstractmethod
    def set_card(self, card_no, uid, shadow_balance_cents, last_counter):
        """Set the card's shadow balance and newest counter."""

    @abc.abstractmethod
    def add_quarantine(self, raw, topic, terminal_id, reason, detail, seq=None):
        """Keep a refused frame or record (bounded prefix, size, digest); with seq, a damaged record holding it."""

    @abc.abstractmethod
    def add_conflict(self, terminal_id, seq, raw, existing_raw):
        """Keep a record whose key is taken by other bytes."""

    @abc.abstractmethod
    def add_alarm(self, kind, card_no, terminal_id, seq, detail):
        """Raise an alarm for an operator."""

    @abc.abstractmethod
    def add_passage(self, record_id, rec):
        """Keep an applied passage record's facts for occupancy (SPEC.md §4.9)."""

    @abc.abstractmethod
    def add_attempt(self, rec):
        """Keep a tap of a blacklisted card (a lock or attempt record): when, where, which card."""

    @abc.abstractmethod
    def audit(self, actor, action, **details):
        """Record an operator action in the audit log as part of this transaction (appended at commit)."""

    @abc.abstractmethod
    def update_terminal(self, terminal_id, **columns):
        """Set terminal columns at commit (last value wins)."""

    @abc.abstractmethod
    def set_gaps(self, terminal_id, gaps):
        """Replace the terminal's list of missing seq ranges."""

    @abc.abstractmethod
    def blacklist_add(self, card_no, reason):
        """Add a card to the blacklist under a new version; return the version or None if already listed."""

    @abc.abstractmethod
    def blacklist_remove(self, card_no, reason):
        """Take a card off the blacklist under a new version; return the version or None if not listed."""


class AuditRows(abc.ABC):
    """The reads of the ledger check (parkcard.audit), synchronous, run off the event loop by audit_scan.

    The large ones are generators: the check streams a park's records and entries instead of loading them.
    """

    @abc.abstractmethod
    def schema_version(self):
        """Return the database's schema version."""

    @abc.abstractmethod
    def schema_problem(self):
        """Return why this hub cannot read the database's schema version, or None when it can."""

    @abc.abstractmethod
    def integrity_check(self, max_errors=20):
        """Return the messages of the backend's page check (["ok"] for a sound database)."""

    @abc.abstractmethod
    def terminals(self):
        """Return {terminal_id: (merchant_id, commission_bps now, key, acked_upto)}."""

    @abc.abstractmethod
    def records(self):
        """Yield (id, terminal_id, seq, raw, kind, card_no, counter, amount, balance_after, time_s, status) by id."""

    @abc.abstractmethod
    def ledger_entries(self):
        """Yield (record_id, tx_id, account, amount_cents) of every ledger entry, by record then transaction."""

    @abc.abstractmethod
    def entries_without_tx(self):
        """Return [(entry id, tx_id, account, amount_cents)] of entries whose transaction row is missing."""

    @abc.abstractmethod
    def held_seqs(self):
        """Return {terminal_id: number of seqs held by damaged records in quarantine}."""

    @abc.abstractmethod
    def missing_seqs(self, terminal_id, upto, limit=20):
        """Return up to `limit` seqs in 1..upto of a terminal with neither a record nor a quarantined hold."""

    @abc.abstractmethod
    def credits(self):
        """Return [(grant_tx, cancel_tx, source, amount_cents, card_no, credit_no)] of every pending credit."""

    @abc.abstractmethod
    def paid_tickets(self):
        """Return [(sale_tx, price_cents, serial, card_no)] of every ticket whose price was booked."""

    @abc.abstractmethod
    def shift_postings(self):
        """Return ([(over_short_tx, z_no, report JSON)], [(paid_by_tx, op_id, method, kind, amount_cents,
        bonus_cents, deposit_cents)]): the ledger transactions of shift closes and of non-cash desk payments."""

    @abc.abstractmethod
    def replacements(self):
        """Return [(old_card_no, new_card_no, balance_cents, moved_cents, hold_cents, covered_cents, loss_cents,
        released_cents, move_tx)] of every replacement (SPEC.md §4.13)."""

    @abc.abstractmethod
    def replacement_covers(self):
        """Return [(old_card_no, terminal_id, seq, amount_cents, covered_cents, loss_cents, cover_tx, bonus_cents)]
        of every late record settled against a hold."""

    @abc.abstractmethod
    def cards(self):
        """Return {card_no: (shadow_balance_cents, last_counter)}."""

    @abc.abstractmethod
    def clone_cards(self):
        """Return the cards with a clone alarm."""


class Store(abc.ABC):
    """The hub database: one writer (a batch per call), reads that never wait behind a batch.

    Attributes: `path` (where it is, for messages), `oplog` (the operator audit log it anchors),
    `stats` (counters of bounds hit), `events_added` (an asyncio.Event set after each commit that stored
    records or alarms or changed a record's status: the webhook sender's wake-up).
    """

    # -- lifecycle
    @property
    @abc.abstractmethod
    def is_open(self):
        """True from open() until close(): a connection or the writer's thread is still held."""

    @abc.abstractmethod
    async def open(self):
        """Open (creating and migrating) the database and return self; on failure nothing stays open."""

    @abc.abstractmethod
    async def open_for_audit(self):
        """Open for reading only: no checks, no migrations, nothing written (`ledger check`); return self."""

    @abc.abstractmethod
    async def close(self):
        """Close every connection (safe to call twice, or after a failed open)."""

    @abc.abstractmethod
    async def schema_version(self):
        """Return the schema version of the open database (migrations applied)."""

    # -- the writer
    @abc.abstractmethod
    async def write(self, fn, audit=None):
        """Run fn(WriteTx) in one transaction by the single writer; return its result (audit= as above)."""

    @abc.abstractmethod
    async def audit(self, actor, action, **details):
        """Append an operator action to the audit log in a transaction of its own (anchored)."""

    @abc.abstractmethod
    async def audit_anchor(self):
        """Return the audit log's head as the database knows it (rows.AuditAnchor), or None."""

    @abc.abstractmethod
    async def audit_scan(self, fn):
        """Run fn(AuditRows) off the event loop and return its result: the ledger check streams rows there."""

    # -- park and merchants
    @abc.abstractmethod
    async def park_currency(self, park_id=1):
        """Return the park's ISO 4217 currency code (the default until the park is set up)."""

    @abc.abstractmethod
    async def set_park_currency(self, park_id, currency, audit=None):
        """Set the park's currency (creating the park); ValueError once the park has taken money in another."""

    @abc.abstractmethod
    async def park_opening_hours(self, park_id=1):
        """Return the park's (opens_min, closes_min) after local midnight, or None when none are set."""

    @abc.abstractmethod
    async def set_park_opening_hours(self, park_id, opens_min, closes_min, audit=None):
        """Set (or with None, None clear) the park's opening hours, creating the park; True if they changed."""

    @abc.abstractmethod
    async def park_time_zone(self, park_id=1):
        """Return the park's IANA time zone name, or None when none is set (the park runs on UTC)."""

    @abc.abstractmethod
    async def set_park_time_zone(self, park_id, time_zone, audit=None):
        """Set the park's IANA time zone, creating the park; True if it changed."""

    @abc.abstractmethod
    async def add_merchant(self, merchant_id, name, commission_bps, park_id=1, audit=None):
        """Create a merchant; True, or False if it exists with these very values (ValueError if other values)."""

    @abc.abstractmethod
    async def update_merchant(self, merchant_id, name=None, commission_bps=None, audit=None):
        """Change a merchant's name and/or commission; return ((name, bps) before, after). ValueError if unknown."""

    @abc.abstractmethod
    async def sales_by_day(self, start_s, end_s, offset_s=0, merchant_id=None):
        """Return [SalesDay] of applied sales and refunds in [start_s, end_s), days shifted by offset_s."""

    @abc.abstractmethod
    async def booth_records(self, start_s, end_s, merchant_id=None):
        """Return [rows.BoothRecord]: applied sales and refunds and the sale lines in [start_s, end_s)."""

    @abc.abstractmethod
    async def sales_by_terminal(self, start_s, end_s, merchant_id=None):
        """Return [rows.TerminalSales] of applied sales and refunds in [start_s, end_s), by terminal."""

    @abc.abstractmethod
    async def top_ups_by_day(self, start_s, end_s, offset_s=0):
        """Return [rows.TopUpDay] of applied top-ups and issues in [start_s, end_s), days shifted by offset_s."""

    @abc.abstractmethod
    async def liabilities(self):
        """Return rows.Liabilities: the ledger's balances of what the park owes, by kind."""

    @abc.abstractmethod
    async def merchants(self):
        """Return [rows.Merchant] by id."""

    @abc.abstractmethod
    async def merchant_list(self):
        """Return [rows.MerchantListing] (each merchant with its terminal ids) by id."""

    # -- terminals
    @abc.abstractmethod
    async def add_terminal(self, terminal_id, merchant_id, role, key, name, fixed_price_cents=0, category=0,
                           broker_password=None, audit=None):
        """Register a terminal; raise ValueError for an unknown merchant or a taken id."""

    @abc.abstractmethod
    async def terminals(self, terminal_id=None):
        """Return [rows.Terminal] of every terminal (or only terminal_id's), by id."""

    @abc.abstractmethod
    async def terminal_ids(self):
        """Return the registered terminal ids, ascending."""

    @abc.abstractmethod
    async def terminal_flags(self, terminal_id):
        """Return rows.TerminalFlags as stored now (the CLI may have changed them), or None."""

    @abc.abstractmethod
    async def broker_credentials(self):
        """Return {terminal_id: broker password} of every terminal that has one."""

    @abc.abstractmethod
    async def set_terminal(self, terminal_id, **columns):
        """Update terminal columns now (fleet status, authorisation, config)."""

    @abc.abstractmethod
    async def terminal_command(self, terminal_id, command, actor, audit=None, **columns):
        """Set terminal columns and queue a command (unless None) in one transaction; False when nothing changed."""

    @abc.abstractmethod
    async def pending_commands(self):
        """Return [rows.PendingCommand] not sent yet, oldest first."""

    @abc.abstractmethod
    async def terminal_commands(self):
        """Return every rows.TerminalCommand, sent or not, oldest first."""

    @abc.abstractmethod
    async def command_sent(self, command_id):
        """Mark a queued terminal command as sent."""

    @abc.abstractmethod
    async def reserve_down_counters(self, terminal_id, reserved):
        """Persist a new high-water mark of downlink counters for a terminal."""

    @abc.abstractmethod
    async def seqs_above_ack(self, terminal_id=None):
        """Return {terminal_id: [seq]} stored above each terminal's ack (damaged records held count)."""

    @abc.abstractmethod
    async def terminal_gaps(self, terminal_id):
        """Return [(from_seq, to_seq)] of the seq ranges the terminal still owes, ascending."""

    # -- admin system cards and their issue at a desk
    @abc.abstractmethod
    async def add_admin_card(self, uid, desk, issued_by, first, last, audit=None):
        """Record a new pending admin card under the next number in [first, last]; return it (ValueError when full)."""

    @abc.abstractmethod
    async def admin_card(self, card_no):
        """Return the rows.AdminCard, or None."""

    @abc.abstractmethod
    async def admin_cards(self):
        """Return every rows.AdminCard, by number."""

    @abc.abstractmethod
    async def revoke_admin_card(self, card_no, reason, audit=None):
        """Revoke an admin card; True if revoked now, False if it already was; ValueError if unknown."""

    @abc.abstractmethod
    async def settle_admin_card(self, card_no, written, request_id=None, error=None):
        """End a pending admin card: written (the desk said so) or failed, or abandoned if cancelled; return its state."""

    @abc.abstractmethod
    async def request_admin_card(self, desk_terminal_id, uid, desk, actor):
        """Queue an admin card issue for the running hub; return the request id."""

    @abc.abstractmethod
    async def start_card_requests(self):
        """Claim the queued admin card issues: [rows.StartedCardRequest], marked started."""

    @abc.abstractmethod
    async def cancel_card_request(self, request_id):
        """Cancel an admin card issue nobody waits for any more; False if it had finished already."""

    @abc.abstractmethod
    async def cancelled_card_requests(self):
        """Return the ids of started, unfinished admin card issues that were cancelled."""

    @abc.abstractmethod
    async def finish_card_request(self, request_id, card_no=None, error=None):
        """Record how an admin card issue ended."""

    @abc.abstractmethod
    async def card_request(self, request_id):
        """Return rows.CardRequest of an admin card issue, or None."""

    @abc.abstractmethod
    async def card_write_requests(self):
        """Return every rows.CardWriteRequest, oldest first."""

    # -- front-desk operations (parkcard.store.desk_ops; posted_in(tx, ...) marks one posted inside a write)
    @abc.abstractmethod
    async def desk_settings(self, park_id=1):
        """Return the park's rows.DeskSettings: card type deposits and refund rules (0 until set)."""

    @abc.abstractmethod
    async def set_desk_settings(self, park_id=1, audit=None, **settings):
        """Set some of the park's desk settings (rows.DeskSettings field names); return the new DeskSettings."""

    @abc.abstractmethod
    async def set_park_offline_rules(self, offline_window_s, daily_cap_cents, hold_release_s, park_id=1, audit=None):
        """Set the park's offline rules and hold release delay, moving their version; return the new DeskSettings."""

    @abc.abstractmethod
    async def card_stocked(self, card_no, audit=None):
        """Mark a returned card wiped (its card is stock again; the number is retired)."""

    @abc.abstractmethod
    async def tiers(self):
        """Return the park's tier table as [rows.TierRow] by code."""

    @abc.abstractmethod
    async def put_tier(self, tier, new, audit=None):
        """Add (new) or change a tier (rows.TierRow); ValueError on a taken or unknown code, or a taken name."""

    @abc.abstractmethod
    async def desk_operation(self, op_id):
        """Return the rows.DeskOperation kept under op_id, or None."""

    @abc.abstractmethod
    async def desk_operations(self, state=None):
        """Return [rows.DeskOperation] (only those in `state` when given), oldest first."""

    @abc.abstractmethod
    async def keep_desk_operation(self, op, audit=None, method=None, shift_owner=None):
        """Keep a rows.DeskOperation as pending (a failed one under its id is tried again); return it as stored.

        With method, the operation is tied to its desk's open shift in the same transaction (NoOpenShift else;
        ShiftOfAnother when shift_owner is given and did not open it).
        """

    # -- cashier shifts (parkcard.store.shifts)
    @abc.abstractmethod
    async def add_shift(self, desk_terminal_id, float_cents, opened_by, audit=None):
        """Open a shift at a desk with its counted float; return the rows.Shift (ValueError if one is open)."""

    @abc.abstractmethod
    async def open_shift_at(self, desk_terminal_id):
        """Return the rows.Shift open at the desk, or None."""

    @abc.abstractmethod
    async def shift(self, shift_no):
        """Return the rows.Shift numbered shift_no, or None."""

    @abc.abstractmethod
    async def shifts(self, desk_terminal_id=None, open_only=False):
        """Return [rows.Shift], newest first."""

    @abc.abstractmethod
    async def shift_operations(self, shift_no):
        """Return [rows.ShiftOperation] of a shift, oldest first."""

    @abc.abstractmethod
    async def close_shift_with_report(self, shift_no, closed_by, make_report, audit=None):
        """Close an open shift with the report make_report(ops, pending) makes; return the rows.StoredZReport."""

    @abc.abstractmethod
    async def z_report(self, z_no):
        """Return the rows.StoredZReport numbered z_no, or None."""

    @abc.abstractmethod
    async def z_report_of_shift(self, shift_no):
        """Return the rows.StoredZReport of a closed shift, or None."""

    @abc.abstractmethod
    async def z_reports(self, start_s=None, end_s=None, desk_terminal_id=None, opened_by=None, limit=100):
        """Return [(rows.StoredZReport, rows.Shift)] made in [start_s, end_s), of a desk or operator, newest first."""

    @abc.abstractmethod
    async def park_pay_methods(self, park_id=1):
        """Return the payment methods the park's desks take besides cash."""

    @abc.abstractmethod
    async def set_park_pay_methods(self, methods, park_id=1, audit=None):
        """Set the payment methods the park's desks take besides cash; True if changed."""

    @abc.abstractmethod
    async def desk_day(self, start_s, end_s, by):
        """Return [rows.DeskDayLine] of desk operations posted in [start_s, end_s), by operator or desk."""

    @abc.abstractmethod
    async def prefix_balance(self, prefix):
        """Return the sum in cents of the ledger accounts named prefix... (every bonus purse, every card)."""

    @abc.abstractmethod
    async def queue_desk_request(self, op_id, kind, desk_terminal_id, params, actor, roles, audit=None):
        """Queue a desk operation for the running hub; return the rows.DeskRequest as stored."""

    @abc.abstractmethod
    async def start_desk_requests(self):
        """Claim the queued desk requests: [rows.DeskRequest], marked started."""

    @abc.abstractmethod
    async def requeue_started_desk_requests(self):
        """Queue again the desk requests a stopped hub had started; return how many."""

    @abc.abstractmethod
    async def finish_desk_request(self, op_id, state, result):
        """Record how a desk request ended (done or refused) and what the cashier reads."""

    @abc.abstractmethod
    async def desk_request(self, op_id):
        """Return the rows.DeskRequest under op_id, or None."""

    @abc.abstractmethod
    async def counter_claim(self, card_no, counter):
        """(terminal_id, seq) of the applied record that holds the card's counter, or None."""

    @abc.abstractmethod
    async def keep_desk_blocks(self, op_id, blocks):
        """Keep the write of a pending operation that had none yet; return the operation as stored."""

    @abc.abstractmethod
    async def fail_desk_operation(self, op_id, error, audit=None):
        """Mark a pending operation failed; False if it was not pending."""

    # -- cards, records, ledger
    @abc.abstractmethod
    async def card(self, card_no):
        """Return the rows.Card, or None."""

    @abc.abstractmethod
    async def card_numbers(self):
        """Return the numbers of every card the hub has a row for, ascending."""

    @abc.abstractmethod
    async def account_balance(self, account):
        """Return the sum of the account's ledger entries in cents."""

    @abc.abstractmethod
    async def records(self, terminal_id=None):
        """Return [rows.StoredRecord] (of one terminal, if given) by terminal and seq."""

    @abc.abstractmethod
    async def records_between(self, terminal_id, first_seq, last_seq):
        """Return [rows.StoredRecord] of one terminal with first_seq <= seq <= last_seq, by seq."""

    @abc.abstractmethod
    async def card_trace(self, card_no, limit):
        """Return the newest `limit` rows.CardUse of a card (its records), newest first."""

    @abc.abstractmethod
    async def uncertain_cards(self):
        """Return the card numbers that have unresolved uncertain records."""

    @abc.abstractmethod
    async def refunds(self):
        """Return [rows.Refund] by terminal and sale."""

    @abc.abstractmethod
    async def counts(self):
        """Return rows.StoreCounts: how many rows of each kind the store holds."""

    # -- blacklist
    @abc.abstractmethod
    async def blacklist_change(self, card_no, reason, add=True, issued_only=False, audit=None):
        """Add (or remove) a card under a new blacklist version; the version, or None if unchanged (NotIssued)."""

    @abc.abstractmethod
    async def blacklist_version(self):
        """Return the current blacklist version (0 = empty history)."""

    @abc.abstractmethod
    async def blacklist_changes(self, after_version):
        """Return [rows.BlacklistChange] newer than after_version, oldest first."""

    @abc.abstractmethod
    async def blacklist_cards(self):
        """Return the card numbers on the blacklist now, ascending."""

    @abc.abstractmethod
    async def blacklist_entries(self):
        """Return [rows.BlacklistEntry] of the cards on the blacklist now, by card."""

    @abc.abstractmethod
    async def attempt_counts(self):
        """Return {card_no: number of lock and attempt records}."""

    @abc.abstractmethod
    async def attempts(self, card_no, limit):
        """Return the last `limit` rows.Attempt of a card, newest first."""

    # -- what ingest refused or flagged
    @abc.abstractmethod
    async def add_alarm_once(self, kind, detail, card_no=None, terminal_id=None):
        """Raise an alarm unless the same one (kind, card, terminal, detail) is listed; True if new."""

    @abc.abstractmethod
    async def alarms(self):
        """Return [rows.Alarm] by id."""

    @abc.abstractmethod
    async def quarantined(self):
        """Return [rows.Quarantined] by id; size is the whole payload's."""

    @abc.abstractmethod
    async def conflicts(self):
        """Return [rows.Conflict] by id."""

    # -- settlement
    # -- API keys of third parties and the idempotency keys of their POSTs
    @abc.abstractmethod
    async def add_api_key(self, name, secret_sha256, scopes, actor, audit=None):
        """Store a new API key (the secret's SHA-256 and its scopes); return its id. ValueError if the name is taken."""

    @abc.abstractmethod
    async def api_keys(self):
        """Return every ApiKey, revoked ones included, by id."""

    @abc.abstractmethod
    async def api_key_by_hash(self, secret_sha256):
        """Return the ApiKey whose secret has this SHA-256, or None."""

    @abc.abstractmethod
    async def revoke_api_key(self, name, actor, audit=None):
        """Revoke an API key by name; return False if it was revoked already. ValueError if there is none."""

    @abc.abstractmethod
    async def idempotent_response(self, api_key_id, key):
        """Return the IdempotentResponse stored for this key's Idempotency-Key, or None."""

    @abc.abstractmethod
    async def keep_idempotent_response(self, api_key_id, key, request_sha256, status, body):
        """Store the first response to an Idempotency-Key; return the stored IdempotentResponse (the first one)."""

    # -- operator accounts
    @abc.abstractmethod
    async def add_operator(self, username, password_hash, roles, actor, display_name=None, merchant_id=None,
                           audit=None):
        """Store a new operator account; return its id. ValueError if the name is taken or the merchant unknown."""

    @abc.abstractmethod
    async def operators(self):
        """Return every rows.Operator, disabled ones included, by id."""

    @abc.abstractmethod
    async def operator(self, username):
        """Return the rows.Operator with this login name, or None."""

    @abc.abstractmethod
    async def update_operator(self, username, audit=None, **changes):
        """Change an operator's password_hash, roles, active, display_name or last_login_at; ValueError if unknown."""

    @abc.abstractmethod
    # -- pending credits (parkcard.store.credits, SPEC.md §8)
    @abc.abstractmethod
    async def add_pending_credit(self, card_no, amount_cents, reason, source, actor, audit=None,
                                 desk_terminal_id=None, grant_id=None):
        """Grant a credit to an issued card, funded from source; return its PendingCredit (NotIssued if unknown;
        the first grant's GrantedBefore for a grant_id sent again)."""

    @abc.abstractmethod
    async def cancel_pending_credit(self, card_no, credit_no, audit=None):
        """Cancel a credit no terminal was sent yet; return its amount (NotCancellable otherwise)."""

    @abc.abstractmethod
    async def pending_credits(self, card_no=None):
        """[PendingCredit] of one card or of every card, by card and number."""

    @abc.abstractmethod
    async def credits_list(self):
        """(version, [(card_no, credit_no, amount_cents)]) of the credits not yet delivered."""

    @abc.abstractmethod
    async def credits_sent(self, keys):
        """The credits [(card_no, credit_no)] went out in a list: no longer cancellable."""

    async def unsettled(self, merchant_id, start_s, end_s):
        """Return rows.SettlementTotals of what closing [start, end) would take now."""

    @abc.abstractmethod
    async def settlement(self, merchant_id, start_s, end_s):
        """Return the rows.Settlement closed for exactly this period, or None."""

    @abc.abstractmethod
    async def settlements(self):
        """Return every closed rows.Settlement, by id."""

    @abc.abstractmethod
    async def settlement_records(self, settlement_id):
        """Return the ids of the records a closed settlement paid, ascending."""

    @abc.abstractmethod
    async def close_settlements(self, merchant_ids, start_s, end_s, audit=None):
        """Close the merchants' period in one transaction (all or none); return [(rows.Settlement, newly_closed)].

        Takes each merchant's applied sales and refunds of [start, end) that no
        settlement holds yet, and the late ones (records of its closed periods
        that arrived after they closed). An exactly matching closed period is
        returned as it is. PeriodOverlap when the period overlaps another closed
        period of a merchant, ValueError when a merchant does not exist.
        audit(details of each new close) -> entries, appended in the closing transaction.
        """

    # -- members, lost cards (parkcard.store.members) and replacements (parkcard.store.replacements, SPEC.md §4.13)
    @abc.abstractmethod
    async def add_member(self, name, phone, note, tier, audit=None):
        """Register a member; return the rows.Member (MemberTaken when the phone number has one)."""

    @abc.abstractmethod
    async def member(self, member_no=None, phone=None, card_no=None):
        """The rows.Member by number, phone or one of their cards; None when there is none."""

    @abc.abstractmethod
    async def members(self):
        """[rows.Member] by number."""

    @abc.abstractmethod
    async def member_cards(self, member_no):
        """[card_no] of the member's cards, oldest first."""

    @abc.abstractmethod
    async def set_member_tier(self, member_no, tier, audit=None):
        """Set a member's tier and the hub's tier of their cards; return the cards changed (None: no member)."""

    @abc.abstractmethod
    async def set_member_details(self, member_no, name, phone, note, audit=None):
        """Change a member's name, phone and note; return the Member (None: no member; MemberTaken: phone taken)."""

    @abc.abstractmethod
    async def tiers_on_cards(self, card_nos=None):
        """{card_no: tier its info block holds} of the cards whose hub tier is not written on them yet."""

    @abc.abstractmethod
    async def tier_written(self, card_no, tier, audit=None):
        """The desk wrote tier onto the card's info block (no value moved): nothing is pending if it is the hub's."""

    @abc.abstractmethod
    async def card_member(self, card_no):
        """The member number a card is issued to, or None."""

    @abc.abstractmethod
    async def report_loss(self, card_no, reason, actor, audit=None):
        """Blacklist a card as lost; return (rows.CardLoss, blacklist version or None if listed already)."""

    @abc.abstractmethod
    async def report_found(self, card_no, reason, audit=None):
        """Un-report a lost card not yet replaced; return the blacklist version (None: it was not listed)."""

    @abc.abstractmethod
    async def card_loss(self, card_no):
        """The rows.CardLoss of a card, or None when it was never reported lost."""

    @abc.abstractmethod
    async def lost_cards(self):
        """[rows.CardLoss] of the cards reported lost and not yet found or replaced, by card."""

    @abc.abstractmethod
    async def replacement(self, old_card_no=None, new_card_no=None):
        """The rows.Replacement of a lost card (or the one that made new_card_no), or None."""

    @abc.abstractmethod
    async def replacements(self, open_only=False):
        """[rows.Replacement] by old card; open_only: those whose hold is not released yet."""

    @abc.abstractmethod
    async def replaced_cards(self):
        """The old card numbers of every replacement."""

    @abc.abstractmethod
    async def lagging_terminals(self, blacklist_version, since_s):
        """[(terminal_id, last_seen, online)] of terminals that may still hold unsent records of a card lost then."""

    @abc.abstractmethod
    async def release_hold(self, old_card_no, now_s, lagging, actor, audit=None):
        """Release a replaced card's hold onto its new card, once; (rows.Replacement, PendingCredit or None) or None."""

    # -- booth sales (parkcard.store.booth): versions are appended, never changed
    @abc.abstractmethod
    async def price_list(self, merchant_id, version=None):
        """Return the merchant's rows.PriceListVersion (the newest, or this version), or None."""

    @abc.abstractmethod
    async def price_list_versions(self, merchant_id):
        """Return [(version, created_at, created_by)] of a merchant's price list, oldest first."""

    @abc.abstractmethod
    async def add_price_list(self, merchant_id, after, free_amount, entries, actor, audit=None):
        """Append version after + 1 of a merchant's list; ValueError (unknown merchant), VersionMoved (after is stale)."""

    @abc.abstractmethod
    async def discount_rules(self, version=None):
        """Return the park's rows.DiscountRulesVersion (the newest, or this version), or None."""

    @abc.abstractmethod
    async def add_discount_rules(self, after, rules, actor, audit=None):
        """Append version after + 1 of the park's discount rules (JSON text); VersionMoved when after is stale."""

    @abc.abstractmethod
    async def spend_rules(self, version=None):
        """Return the park's consumption rules (rows.DiscountRulesVersion: version and JSON text), or None."""

    @abc.abstractmethod
    async def add_spend_rules(self, after, rules, actor, audit=None):
        """Append version after + 1 of the park's consumption rules (JSON text); VersionMoved when after is stale."""

    @abc.abstractmethod
    async def discount_bearer(self, merchant_id):
        """Return 'park' or 'merchant': who bears the merchant's discounts; None for an unknown merchant."""

    @abc.abstractmethod
    async def set_discount_bearer(self, merchant_id, bearer, audit=None):
        """Set who bears the merchant's discounts; return the bearer before. ValueError for an unknown merchant."""

    # -- web sessions, webhooks and their outbox (parkcard.store.web)
    @abc.abstractmethod
    async def park_session_limits(self, park_id=1):
        """The park's SessionLimits (their defaults before the park is set up)."""

    @abc.abstractmethod
    async def set_park_session_limits(self, park_id, limits, audit=None):
        """Set the park's SessionLimits, creating the park; True if they changed."""

    @abc.abstractmethod
    async def keep_web_session(self, token_sha256, username, csrf, locale, expires_at):
        """Keep a new operator web session (by its token's SHA-256) until expires_at."""

    @abc.abstractmethod
    async def web_session(self, token_sha256, now):
        """The rows.WebSession of a token's SHA-256 not expired at now, or None."""

    @abc.abstractmethod
    async def set_web_session_locale(self, token_sha256, locale):
        """A kept session's language changed."""

    @abc.abstractmethod
    async def end_web_sessions(self, token_sha256=None, username=None, expired_before=None):
        """Forget one session, every session of username, or those expired before a time; return how many."""

    @abc.abstractmethod
    async def add_webhook(self, url, events, secret, actor, audit=None):
        """Register a webhook for the events from now on; return its id."""

    @abc.abstractmethod
    async def webhooks(self, with_removed=False):
        """[rows.Webhook] by id."""

    @abc.abstractmethod
    async def remove_webhook(self, webhook_id, audit=None):
        """Stop a webhook and give up its due deliveries; True when it was active."""

    @abc.abstractmethod
    async def fill_webhook_outbox(self, event_of, batch_max, hooks=None):
        """Queue the events past each active webhook's cursors (records, records applied late, alarms), advancing
        them with the events; return how many."""

    @abc.abstractmethod
    async def next_webhook_due_at(self):
        """The earliest next_at of a delivery due to an active webhook, or None."""

    @abc.abstractmethod
    async def due_webhook_deliveries(self, now, limit):
        """[(rows.WebhookDelivery, url, secret)] due at now, oldest first."""

    @abc.abstractmethod
    async def webhook_delivery_counts(self):
        """{webhook id: {state: count}} of the outbox."""

    @abc.abstractmethod
    async def webhook_deliveries(self, webhook_id=None):
        """[rows.WebhookDelivery] of one webhook or all, by id."""

    @abc.abstractmethod
    async def webhook_attempted(self, attempts):
        """Record one attempt of each [(delivery id, delivered, next_at, error, give_up)] in one transaction."""
