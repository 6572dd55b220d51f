"""Ledger check: re-derives what must hold from the stored record bytes and reports every discrepancy.

Derived tables (ledger entries, shadow balances, the card row) are compared with
what the raw records say, never only with each other (TigerBeetle's auditor):

1. The file: the schema version is one this hub knows, and PRAGMA integrity_check passes.
2. Every stored record: its MAC verifies under its terminal's key (SPEC.md §2.3), it
   decodes, and its stored columns (terminal, seq, kind, card, counter, amount,
   balance after, time) equal the decoded fields (settlement sums the columns).
3. Every applied record: the posting rules (parkcard.domain.ledger) re-run on the decoded
   record give its ledger transaction entry by entry; a record not applied has none;
   a ledger transaction whose record is missing is a discrepancy, and so is an
   entry whose transaction is missing. Every transaction sums to zero.
   Commission: a merchant's rate can change (`merchant set`) and the database keeps
   only today's, so a sale or refund whose commission differs from today's rate is
   accepted when its card entry is exact, its merchant is the terminal's, merchant +
   commission make the sale's amount, and the commission is the amount at a rate the
   merchant has had by the operator audit log (merchant.add / merchant.set entries;
   any rate when the log names none for the merchant or cannot be read). Such
   sales are counted as "posted at another commission rate"; every other entry is
   compared exactly.
4. Terminals: every seq up to the one acknowledged is stored (a record or a
   damaged record held in quarantine): a deleted record leaves a hole there.
5. Bonus purses (SPEC.md §4.12): each card's bonus purse is re-derived by re-running the purse rule
   (parkcard.domain.ledger.bonus_change: cash spent first; a booth's give-back restores the bonus its sale
   spent first; a credit record brings its credits' bonus part) over its applied records in the order the hub
   booked them; every record's bonus:<no> entry and a returned card's bonus back to park:bonus must be what the
   rule gives. A grant from a replaced card's hold closes its purse, the credit carrying min(purse, amount) as
   its bonus part; each late record's settlement keeps the lost card's purse within what the hold holds, spent
   cash first, a give-back of a late debit bringing back the bonus that debit took from the hold (SPEC.md §4.13).
6. Cards: the balance re-derived from the chain of applied records (counter by
   counter: balance_after(k-1) + delta(k) == balance_after(k)) equals the hub's
   shadow balance and the card's ledger account once the chain is complete
   (counters 1..last); an incomplete chain (records still on a terminal) is
   pending. A card whose ledger account or card row shows a history with no
   records has lost its records. A card with a clone alarm is flagged (its two
   histories cannot both match, SPEC.md §4.7), not a mismatch.
6. Replacements (SPEC.md §4.13): the lost card's half of each replacement and each late
   debit's settlement, booked with no record, are re-derived from the replacement's
   figures; a replaced card's ledger account is its records' chain less what left it
   at the replacement plus what its late debits took from the hold and the park's
   losses; each hold account holds its hold less what late debits took and what was
   released, and a late debit's cover and loss make its amount, which its record (an
   applied debit of the replaced card) says. A late credit of the replaced card (a give-back,
   a credit delivered offline) is settled the other way round, both parts negative: what
   came back into the hold (and went on to the new card) and what made the losses good. A credit
   record delivering credits that had moved to the replacement posts none of their amount, and
   the lost card's chain holds that much more than its account.
7. Booth sales: each applied debit with its sale lines is priced again from the list
   and rules versions they name (SPEC.md §4.11); a difference is listed, and one
   that no repricing alarm tells an operator is a discrepancy.
"""

import itertools
import json
import time
import types
from typing import NamedTuple

from protocol import record as R
from protocol.errors import BadMac, ProtocolError

from parkcard.domain import accounts, ledger, purses, shifts
from parkcard.domain import ingest_rules as rules
from parkcard.domain.lifecycle import RecordStatus
from parkcard.oplog import AuditLogError
from parkcard.services import repricing
from parkcard.store import RESTORE_ADVICE, database_errors, store_for

SHOWN_MAX = 20      # findings listed per check; the counts are always whole
# The two sides of a replacement's bonus purse move, as purse steps (_bonus_moved_steps).
_BONUS_OUT, _BONUS_IN = "lost card's purse out", "new card's purse in"
_HOLD_OUT = "lost card's purse closed"      # a grant from its hold (_purse_closed_steps)
_HOLD_SPENT = "lost card's purse in its hold"   # a late record's settlement (_late_purse_steps)
_SALE_KINDS = (R.KIND_DEBIT, R.KIND_REFUND, R.KIND_REVERSAL)


class AuditReport:
    """Findings of one check; `ok` is False on any discrepancy."""

    def __init__(self):
        self.file_problems = []     # schema version, integrity_check
        self.records = 0
        self.transactions = 0
        self.cards = 0
        self.bad_records = []       # MAC, decoding, stored columns
        self.posting_mismatch = []  # ledger transaction differs from the record's posting
        self.other_rate = 0         # sales posted at a commission rate other than today's (not a discrepancy)
        self.unbalanced = []        # (tx_id, sum)
        self.orphans = []           # ledger rows whose record or transaction is missing
        self.missing_seqs = []      # terminals with acknowledged seqs that no row holds
        self.lost_history = []      # cards with ledger entries or a card row but no records
        self.balance_mismatch = []  # (card_no, shadow, ledger, re-derived)
        self.chain_breaks = []      # (card_no, counter, before, delta, after)
        self.purse_mismatch = []    # a record whose bonus purse entries are not what the purse rule gives
        self.doubled = []           # (card_no, counter, n) applied twice without a clone alarm
        self.pending = []
        self.flagged = []
        self.hold_problems = []     # replacements whose hold account or late debits disagree with their figures
        self.repriced = 0           # booth sales priced again from their sale lines (SPEC.md §4.11)
        self.repriced_differently = []  # ... whose figures differ (the sale stands; an alarm says so)
        self.repricing_unalarmed = []   # ... and no repricing alarm tells an operator
        self.elapsed_s = 0.0

    @property
    def ok(self):
        """True when no check found a discrepancy (pending and flagged cards are none)."""
        return not (self.file_problems or self.bad_records or self.posting_mismatch or self.unbalanced
                    or self.orphans or self.missing_seqs or self.lost_history or self.balance_mismatch
                    or self.chain_breaks or self.doubled or self.repricing_unalarmed or self.purse_mismatch
                    or self.hold_problems)

    def lines(self):
        """The findings in words: what each check counts and why it matters, then the verdict."""
        out = ["database file: %s" % ("sound" if not self.file_problems else "DAMAGED (%s)" % RESTORE_ADVICE)]
        out += ["  %s" % p for p in self.file_problems[:SHOWN_MAX]]
        out.append("records checked: %d, bad: %d  (each stored record must carry its terminal's MAC and say what "
                   "the hub's columns say)" % (self.records, len(self.bad_records)))
        out += ["  %s" % p for p in self.bad_records[:SHOWN_MAX]]
        out.append("ledger transactions: %d, not what their record posts: %d  (each payment, top-up or refund is "
                   "booked exactly as the posting rules say)" % (self.transactions, len(self.posting_mismatch)))
        out += ["  %s" % p for p in self.posting_mismatch[:SHOWN_MAX]]
        out.append("  posted at another commission rate than today's: %d  (after a `merchant set`; merchant and "
                   "commission still make the sale's amount)" % self.other_rate)
        out.append("  unbalanced: %d  (each must sum to zero: money only moves between accounts, it never "
                   "appears or vanishes)" % len(self.unbalanced))
        out += ["    transaction %d sums to %+d cents" % row for row in self.unbalanced[:SHOWN_MAX]]
        out.append("  without their record: %d  (a booking whose payment record was removed)" % len(self.orphans))
        out += ["    %s" % p for p in self.orphans[:SHOWN_MAX]]
        out.append("terminals with acknowledged records missing: %d  (once acknowledged, a terminal drops a "
                   "record from its journal: only the database held these)" % len(self.missing_seqs))
        out += ["  %s" % p for p in self.missing_seqs[:SHOWN_MAX]]
        out.append("cards checked: %d" % self.cards)
        out.append("  history missing: %d  (the ledger or the card row knows payments no record holds)"
                   % len(self.lost_history))
        out += ["    %s" % p for p in self.lost_history[:SHOWN_MAX]]
        out.append("  balance mismatches: %d  (the hub's balance of the card differs from its ledger account or "
                   "from its records)" % len(self.balance_mismatch))
        out += ["    card %d: hub balance %d cents, ledger %d cents, records %d cents" % row
                for row in self.balance_mismatch[:SHOWN_MAX]]
        out.append("  chain breaks: %d  (a payment does not continue from the card's previous balance)"
                   % len(self.chain_breaks))
        out += ["    card %d counter %d: %d %+d != %d" % row for row in self.chain_breaks[:SHOWN_MAX]]
        out.append("  bonus purse not as re-derived: %d  (cash is spent first; the bonus is never paid out)"
                   % len(self.purse_mismatch))
        out += ["    %s" % p for p in self.purse_mismatch[:SHOWN_MAX]]
        out.append("  counters applied twice without a clone alarm: %d" % len(self.doubled))
        out += ["    card %d counter %d: %d records" % row for row in self.doubled[:SHOWN_MAX]]
        out.append("  pending (incomplete chain): %d  (payments still on a terminal; checked once uploaded)"
                   % len(self.pending))
        out.append("  flagged (clone alarm): %d  (two cards with one history: blacklisted, left out of the check)"
                   % len(self.flagged))
        out.append("replacements' holds that disagree with their figures: %d  (a lost card's balance moves to its "
                   "replacement minus a hold, which pays its late offline debits)" % len(self.hold_problems))
        out += ["  %s" % p for p in self.hold_problems[:SHOWN_MAX]]
        out.append("booth sales priced again: %d, differently from the terminal: %d  (from the list and discount "
                   "versions the sale names; the sale stands as paid)" % (self.repriced, len(self.repriced_differently)))
        out += ["  %s" % p for p in self.repriced_differently[:SHOWN_MAX]]
        out.append("  without a repricing alarm: %d  (an operator must be told of each)" % len(self.repricing_unalarmed))
        out += ["    %s" % p for p in self.repricing_unalarmed[:SHOWN_MAX]]
        out.append("RESULT: OK: the ledger balances and every card agrees with it" if self.ok else
                   "RESULT: DISCREPANCIES FOUND: each non-zero count above needs looking into")
        return out


def decode_stored(raw, record_mac, terminal_id, seq):
    """Decode a stored record with its terminal's MAC; return (Record, None) or (None, why it is bad)."""
    try:
        rec = R.Record.decode(bytes(raw), record_mac)
    except BadMac:
        return None, "its MAC does not verify under term-%d's key: its bytes were changed" % terminal_id
    except ProtocolError as exc:
        return None, "does not decode: %s" % exc
    if (rec.terminal_id, rec.seq) != (terminal_id, seq):
        return None, "its bytes are term-%d seq %d" % (rec.terminal_id, rec.seq)
    return rec, None


def posting_mismatch(rec, merchant_id, rate_bps, posted, rate_known=True, rates_had=(), sale=None):
    """Compare posted [(account, cents)] with the record's posting; return None, "other_rate" or why they differ.

    Who bore a booth sale's discount is read from the posting (a park:discounts entry or none) and its
    amount re-derived from the record (a refund's from its sale, the debit Record `sale`, SPEC.md §7.5).

    rate_known=False (the ledger check) accepts a sale or refund booked at another commission
    rate when every entry but the merchant/commission split is exact, the split makes the amount
    and, when rates_had names the merchant's past rates, the commission is one of theirs.
    """
    # The bonus purse entries depend on the purses before the record: re-derived card by card (_check_purses).
    memo = (accounts.bonus_account(rec.card_no), accounts.BONUS_PURSES)
    forfeit = ledger.by_account(posted).get(accounts.BONUS, 0) if rec.kind == R.KIND_CASHOUT else 0
    park_bears = any(account == accounts.DISCOUNTS for account, _c in posted)
    try:
        expected = sorted(e for e in ledger.postings(rec, merchant_id, rate_bps, forfeit, ledger.park_discount_cents(
            rec, park_bears, sale)) if e[0] not in memo)
    except ledger.PostingError as exc:
        return "an applied record the posting rules refuse (%s)" % exc
    posted = sorted(e for e in posted if e[0] not in memo)
    if posted == expected:
        return None
    why = "posted %s, its posting is %s" % (_entries(posted), _entries(expected))
    if rec.kind == R.KIND_CREDIT and _credited_again(rec, posted):
        return None
    if rate_known or rec.kind not in _SALE_KINDS:
        return why
    split = (accounts.merchant_account(merchant_id), accounts.COMMISSION)
    sign = 1 if rec.kind == R.KIND_DEBIT else -1
    rest = [e for e in posted if e[0] not in split]
    shares = dict(e for e in posted if e[0] in split)
    park_paid = -sign * dict(rest).get(accounts.DISCOUNTS, 0)
    if (rest != [e for e in expected if e[0] not in split] or len(shares) + len(rest) != len(posted)
            or sum(shares.values()) != sign * (rec.amount_cents + park_paid)
            or not 0 <= sign * shares.get(accounts.COMMISSION, 0) <= rec.amount_cents):
        return why
    fee = sign * shares.get(accounts.COMMISSION, 0)
    if rates_had and all(ledger.commission_cents(rec.amount_cents, r) != fee for r in rates_had):
        return "%s; the commission %d is the amount at none of the merchant's rates (%s bps)" % (
            why, fee, ", ".join(map(str, sorted(rates_had))))
    return "other_rate"


def hub_transactions(credit_rows, ticket_rows=(), shift_rows=((), ()), replacement_rows=(), cover_rows=()):
    """{tx_id: (what, expected entries)} of the ledger transactions the hub booked without a record: each
    pending credit's grant, and its cancel (re-derived from the credit's amount and source), each
    ticket's sale at the desk (from the ticket's price), each shift's over/short (from its Z report's
    cash expected and counted), each desk payment by another method than cash (from the operation), each
    replacement's lost-card half (from its balance and what moved) and each late debit's settlement (from its
    cover and loss)."""
    out = {}
    z_rows, paid_by_rows = shift_rows
    for over_short_tx, z_no, report in z_rows:
        figures = json.loads(report)
        out[over_short_tx] = ("the over/short of Z report %d" % z_no, ledger.cash_over_short(
            figures["cash_expected_cents"], figures["cash_counted_cents"]))
    for paid_by_tx, op_id, method, kind, amount, bonus, deposit, fee in paid_by_rows:
        name = "desk operation %s paid by %s" % (op_id, method)
        try:
            done = shifts.desk_op_of(kind, method, amount, bonus, deposit, fee)
            out[paid_by_tx] = (name, ledger.paid_by(method, done.received_cents - done.paid_cents))
        except (ledger.PostingError, shifts.ShiftError) as exc:
            out[paid_by_tx] = (name + " (%s)" % exc, [])
    for old, new, balance, moved, _hold, _covered, _loss, _released, move_tx in replacement_rows:
        name = "replacement of card %d by card %d" % (old, new)
        try:
            entries = ledger.replacement_out(old, balance, moved)
            if entries:         # a card lost with nothing on it: its half books no entry
                out[move_tx] = (name, entries)
        except ledger.PostingError as exc:
            out[move_tx] = (name + " (%s)" % exc, [])
    for old, terminal_id, seq, _amount, covered, loss, cover_tx, _bonus in cover_rows:
        name = "late record term-%d seq %d of replaced card %d" % (terminal_id, seq, old)
        try:
            out[cover_tx] = (name, ledger.late_settlement(old, covered, loss))
        except ledger.PostingError as exc:
            out[cover_tx] = (name + " (%s)" % exc, [])
    for sale_tx, price_cents, serial, card_no in ticket_rows:
        name = "ticket %d sold onto card %d" % (serial, card_no)
        try:
            out[sale_tx] = (name, ledger.ticket_sale(price_cents))
        except ledger.PostingError as exc:
            out[sale_tx] = (name + " (%s)" % exc, [])
    for grant_tx, cancel_tx, source, amount, card_no, credit_no, *_rest in credit_rows:
        name = "credit %d of card %d" % (credit_no, card_no)
        try:
            out[grant_tx] = (name + " granted", ledger.credit_grant(source, amount))
            if cancel_tx is not None:
                out[cancel_tx] = (name + " cancelled", ledger.credit_cancel(source, amount))
        except ledger.PostingError as exc:
            out[grant_tx] = (name + " (%s)" % exc, [])
    return out


def _credited_again(rec, posted):
    """True when a credit record's entries are ledger.credit_postings: some credits delivered again (a restored
    card), booked as the park's loss instead of from park:pending_credits (SPEC.md §8.4)."""
    amounts = dict(posted)
    if len(amounts) != len(posted) or set(amounts) - {accounts.PENDING_CREDITS, accounts.LOSSES,
                                                       accounts.card_account(rec.card_no)}:
        return False
    fresh, again = -amounts.get(accounts.PENDING_CREDITS, 0), -amounts.get(accounts.LOSSES, 0)
    card = amounts.get(accounts.card_account(rec.card_no))
    return fresh >= 0 and again > 0 and card == rec.amount_cents == fresh + again


def merchant_rates(oplog):
    """Return {merchant_id: {commission_bps}} the operator audit log gave each merchant ({} when unreadable)."""
    rates = {}
    try:
        for entry in oplog.entries():
            details = entry["details"]
            if entry["action"] in ("merchant.add", "merchant.set") and isinstance(details.get("commission_bps"), int):
                rates.setdefault(details.get("merchant_id"), set()).add(details["commission_bps"])
    except (AuditLogError, OSError):
        return {}
    return rates


def _entries(entries):
    return ", ".join("%s %+d" % e for e in entries) or "nothing"


class _PurseStep(NamedTuple):
    """What the purse rule reads of an applied record, and what its transaction booked to the purse."""

    tx_id: int
    record: str
    kind: int
    amount_cents: int
    balance_after_cents: int
    discount_cents: int
    change_cents: int       # its bonus:<no> entry
    forfeit_cents: int      # a cash-out's bonus back to park:bonus
    key: tuple              # (terminal_id, seq) of the record
    claims: object          # (terminal_id, seq) of the sale a give-back claims, else None


class _Card:
    """What a card's records and ledger entries say, gathered while streaming."""

    __slots__ = ("links", "ledger_cents", "has_entries", "purse")

    def __init__(self):
        self.links = []         # (counter, delta, balance_after) of applied records
        self.ledger_cents = 0
        self.has_entries = False
        self.purse = []         # _PurseStep of applied records, in the order read


def run_checks(rows, rates_had=None):
    """Run every check over an AuditRows (parkcard.store.interface) in the reader's thread; return an AuditReport.

    rates_had: {merchant_id: commission rates it has had} (merchant_rates), for sales booked before a change.
    """
    report = AuditReport()
    started = time.perf_counter()
    problem = rows.schema_problem()
    if problem is not None:
        report.file_problems.append(problem)
        return report       # the tables may not be the ones the checks read
    try:
        problems = rows.integrity_check()
    except database_errors() as exc:
        problems = ["integrity_check: %s" % exc]
    if problems != ["ok"]:
        report.file_problems += ["integrity_check: %s" % p for p in problems]
    try:
        _check_contents(rows, report, rates_had or {})
    except database_errors() as exc:
        report.file_problems.append("reading stopped: %s" % exc)
    report.elapsed_s = time.perf_counter() - started
    return report


def _check_contents(rows, report, rates_had):
    terminals = rows.terminals()
    macs = {tid: R.record_mac_for(bytes(t[2])) for tid, t in terminals.items()}
    cards = {}
    seqs_acked = dict.fromkeys(terminals, 0)    # records stored at or below the terminal's acked_upto
    entries = itertools.groupby(rows.ledger_entries(), key=lambda r: (r[0], r[1]))
    group = next(entries, None)
    replacements, covers = rows.replacements(), rows.replacement_covers()
    credit_rows = rows.credits()
    hub_tx = hub_transactions(credit_rows, rows.paid_tickets(), rows.shift_postings(), replacements, covers)
    credits = _Credits(credit_rows, {row[0] for row in replacements})
    holds = {}
    discounted = {}     # (terminal, seq) -> applied booth sale with a discount: what its give-back takes back
    moves = {row[8]: row for row in replacements}   # move_tx -> the replacement it books the lost card's half of
    settles = {row[6]: row for row in covers}       # cover_tx -> the late record's settlement it books

    def take_orphans_below(record_id):
        nonlocal group
        while group is not None and (group[0][0] is None or record_id is None or group[0][0] < record_id):
            (rid, tx_id), grp = group
            tx_entries = [(a, c) for _r, _t, a, c in grp]
            _tally(report, cards, tx_id, tx_entries, holds)
            if rid is None and tx_id in hub_tx:
                what, expected = hub_tx.pop(tx_id)
                if tx_id in moves:      # its bonus purse entries are re-derived card by card (_check_purse)
                    tx_entries = _bonus_moved_steps(cards, tx_id, tx_entries, moves[tx_id], what)
                elif tx_id in credits.hold_grants:      # so are those of a grant from a hold
                    tx_entries = _purse_closed_steps(cards, tx_id, tx_entries, credits.hold_grants[tx_id], what)
                elif tx_id in settles:      # and of a late record's settlement, within the hold it leaves
                    tx_entries = _late_purse_steps(cards, tx_id, tx_entries, settles[tx_id], what, holds)
                if sorted(tx_entries) != sorted(expected):
                    report.posting_mismatch.append("transaction %d (%s): posted %s, its posting is %s" % (
                        tx_id, what, _entries(sorted(tx_entries)), _entries(sorted(expected))))
            else:
                report.orphans.append("transaction %d belongs to record %s, which does not exist" % (tx_id, rid))
            group = next(entries, None)

    covered = {(c[1], c[2]): c for c in covers}     # each late debit's settlement, by its record's key
    for row in rows.records():
        record_id, terminal_id, seq, raw = row[:4]
        report.records += 1
        if (terminal_id, seq) in covered:
            _check_cover(report, covered.pop((terminal_id, seq)), row)
        take_orphans_below(record_id)
        posted = []
        while group is not None and group[0][0] == record_id:
            (_rid, tx_id), grp = group
            tx_entries = [(a, c) for _r, _t, a, c in grp]
            _tally(report, cards, tx_id, tx_entries, holds)
            posted.append((tx_id, tx_entries))
            group = next(entries, None)
        terminal = terminals.get(terminal_id)
        if terminal is None:
            report.bad_records.append("record %d: its terminal %d is not registered" % (record_id, terminal_id))
            continue
        if seq <= terminal[3]:
            seqs_acked[terminal_id] += 1
        _check_record(report, cards, row, terminal, macs[terminal_id], posted, rates_had.get(terminal[0], ()),
                      discounted, credits)
    take_orphans_below(None)
    for tx_id, (what, _expected) in sorted(hub_tx.items()):
        report.posting_mismatch.append("%s: its transaction %d is not booked" % (what, tx_id))
    for entry_id, tx_id, account, cents in rows.entries_without_tx():
        report.orphans.append("entry %d (%s %+d) belongs to transaction %d, which does not exist" % (
            entry_id, account, cents, tx_id))
    held = rows.held_seqs()
    for terminal_id, (_merchant, _rate, _key, acked_upto) in sorted(terminals.items()):
        if seqs_acked[terminal_id] + held.get(terminal_id, 0) < acked_upto:
            missing = rows.missing_seqs(terminal_id, acked_upto)
            report.missing_seqs.append("term-%d acknowledged seqs 1..%d; no record holds seq %s" % (
                terminal_id, acked_upto, ", ".join(map(str, missing))))
    for old, terminal_id, seq, *_rest in covered.values():
        report.hold_problems.append("late debit term-%d seq %d of card %d was settled, and no record holds it"
                                    % (terminal_id, seq, old))
    _check_holds(report, replacements, covers, holds)
    _check_cards(report, cards, rows.cards(), rows.clone_cards(), _replaced_moves(replacements, covers,
                                                                                  credits.unbooked))


def _bonus_moved_steps(cards, tx_id, tx_entries, replacement, what):
    """A replacement's lost-card half: its bonus purse entries become purse steps of both cards; return the rest."""
    old, new, _balance, moved = replacement[:4]
    booked = ledger.by_account(tx_entries)
    for card_no, side in ((old, _BONUS_OUT), (new, _BONUS_IN)):
        cards.setdefault(card_no, _Card()).purse.append(_PurseStep(
            tx_id, what, ledger.TX_REPLACEMENT_OUT, moved, 0, 0, booked.get(accounts.bonus_account(card_no), 0), 0,
            (side, old), None))
    purses = (accounts.bonus_account(old), accounts.bonus_account(new))
    return [e for e in tx_entries if e[0] not in purses]


def _replaced_moves(replacements, covers, unbooked):
    """{old card: what the hub's replacement transactions moved on its account (no record holds it), less what its
    late credit records delivered that had moved to its replacement (unbooked: {card: cents} its account never
    received)}."""
    moves = {row[0]: -row[2] for row in replacements}
    for old, _tid, _seq, _amount, covered, loss, _tx, _bonus in covers:
        moves[old] = moves.get(old, 0) + covered + loss
    for card_no, cents in unbooked.items():
        moves[card_no] = moves.get(card_no, 0) - cents
    return moves


class _Credits:
    """What the ledger check reads of the pending credits beside their grants and cancels (SPEC.md §8.1, §4.13)."""

    def __init__(self, credit_rows, replaced):
        self.rows = {}          # (card_no, credit_no) -> (amount, bonus, moved, (delivered terminal, seq))
        self.hold_grants = {}   # grant_tx -> (lost card, amount, bonus part) of a grant from a replaced card's hold,
        #                         not a move (parkcard.store.credits.grant)
        self.unbooked = {}      # card -> cents its late credit records delivered that had moved to its replacement
        targets = {(row[7], row[8]) for row in credit_rows if row[8] is not None}
        for grant_tx, _cancel, source, amount, card_no, credit_no, bonus, _to_card, to_credit, tid, seq in credit_rows:
            self.rows[(card_no, credit_no)] = (amount, bonus, to_credit is not None, (tid, seq))
            number = source[len(accounts.HOLD_PREFIX):] if source.startswith(accounts.HOLD_PREFIX) else ""
            lost = int(number) if number.isdigit() else None
            if lost in replaced and (card_no, credit_no) not in targets:
                self.hold_grants[grant_tx] = (lost, amount, bonus)

    def delivered(self, rec):
        """(bonus it brings the purse, cents moved to the card in use) of the credits a credit record delivers."""
        bonus = moved = 0
        for credit_no in range(rec.discount_cents + 1, rec.item + 1):
            amount, part, was_moved, by = self.rows.get((rec.card_no, credit_no), (0, 0, False, None))
            if was_moved:
                moved += amount
            elif by == (rec.terminal_id, rec.seq):
                bonus += part
        return bonus, moved


def _purse_closed_steps(cards, tx_id, tx_entries, grant, what):
    """A grant from a replaced card's hold: its closing of the lost card's bonus purse becomes a purse step of that
    card (the rule: the whole purse closes, the credit carries min(purse, amount)); return the rest."""
    old, amount, bonus = grant
    booked = ledger.by_account(tx_entries)
    closed = booked.get(accounts.bonus_account(old), 0)
    cards.setdefault(old, _Card()).purse.append(_PurseStep(
        tx_id, what, ledger.TX_CREDIT_GRANT, amount, 0, 0, closed, bonus, (_HOLD_OUT, old), None))
    if booked.get(accounts.BONUS_PURSES, 0) != -closed:
        return tx_entries       # left whole: the comparison names the purse entries booked otherwise
    return [e for e in tx_entries if e[0] not in (accounts.bonus_account(old), accounts.BONUS_PURSES)]


def _late_purse_steps(cards, tx_id, tx_entries, cover, what, holds):
    """A late record's settlement: its bonus purse entries become a purse step of the lost card (the rule: the purse
    within what the hold holds after it, purses.held_bonus), with what the settlement says it spent; return the rest."""
    old, terminal_id, seq, amount = cover[:4]
    booked = ledger.by_account(tx_entries)
    change = booked.get(accounts.bonus_account(old), 0)
    cards.setdefault(old, _Card()).purse.append(_PurseStep(
        tx_id, what, ledger.TX_LATE_DEBIT_COVER, amount, holds.get(old, 0), 0, change, cover[7], (terminal_id, seq),
        (_HOLD_SPENT, old)))
    if booked.get(accounts.BONUS_PURSES, 0) != -change:
        return tx_entries       # left whole: the comparison names the purse entries booked otherwise
    return [e for e in tx_entries if e[0] not in (accounts.bonus_account(old), accounts.BONUS_PURSES)]


def _check_cover(report, cover, row):
    """A late debit's settlement is for its record: an applied debit of the replaced card, for its amount."""
    old, terminal_id, seq, amount = cover[:4]
    kind, card_no, status, record_amount = row[4], row[5], row[10], row[7]
    moves = ledger.card_delta(types.SimpleNamespace(kind=kind, amount_cents=record_amount))
    if (card_no, status, moves) != (old, RecordStatus.APPLIED, -amount):
        report.hold_problems.append("late debit term-%d seq %d of card %d: settled for %d cents, its record is "
                                    "kind %d of card %d for %d cents (%s)" % (terminal_id, seq, old, amount, kind,
                                                                             card_no, record_amount, status))


def _check_holds(report, replacements, covers, holds):
    """Each hold account: its hold less late debits covered and what was released; each cover makes its debit."""
    settled = {}
    for old, terminal_id, seq, amount, covered, loss, _tx, _bonus in covers:
        if covered + loss != amount:
            report.hold_problems.append("late debit term-%d seq %d of card %d: %d cents, settled as %d covered + "
                                        "%d lost" % (terminal_id, seq, old, amount, covered, loss))
        total = settled.setdefault(old, [0, 0])
        total[0] += covered
        total[1] += loss
    for old, new, balance, moved, hold, covered, loss, released, _tx in replacements:
        name = "replacement of card %d by card %d" % (old, new)
        if settled.get(old, [0, 0]) != [covered, loss]:
            report.hold_problems.append("%s: its late debits were settled as %s, it says %d covered, %d lost" % (
                name, settled.get(old, [0, 0]), covered, loss))
        if hold != max(0, balance - moved) or covered + released > hold:
            report.hold_problems.append("%s: hold %d of a balance of %d with %d moved, %d covered, %d released" % (
                name, hold, balance, moved, covered, released))
        if holds.get(old, 0) != hold - covered - released:
            report.hold_problems.append("%s: its hold account holds %d cents, its figures say %d" % (
                name, holds.get(old, 0), hold - covered - released))


def _tally(report, cards, tx_id, tx_entries, holds):
    """Count a transaction, check it sums to zero, and add its card and hold entries to their accounts' sums."""
    report.transactions += 1
    total = sum(c for _a, c in tx_entries)
    if total:
        report.unbalanced.append((tx_id, total))
    for account, cents in tx_entries:
        if account.startswith(accounts.CARD_PREFIX) and account[len(accounts.CARD_PREFIX):].isdigit():
            card = cards.setdefault(int(account[len(accounts.CARD_PREFIX):]), _Card())
            card.ledger_cents += cents
            card.has_entries = True
        elif account.startswith(accounts.HOLD_PREFIX) and account[len(accounts.HOLD_PREFIX):].isdigit():
            old = int(account[len(accounts.HOLD_PREFIX):])
            holds[old] = holds.get(old, 0) + cents


def _check_record(report, cards, row, terminal, record_mac, posted, rates_had, discounted, credits):
    record_id, terminal_id, seq, raw, kind, card_no, counter, amount, balance_after, time_s, status = row
    name = "record %d (term-%d seq %d)" % (record_id, terminal_id, seq)
    rec, why = decode_stored(raw, record_mac, terminal_id, seq)
    if rec is None:
        report.bad_records.append("%s: %s" % (name, why))
        return
    stored = (kind, card_no, counter, amount, balance_after, time_s)
    decoded = (rec.kind, rec.card_no, rec.card_counter, rec.amount_cents, rec.balance_after_cents, rec.time_s)
    if stored != decoded:
        fields = ("kind", "card_no", "card_counter", "amount_cents", "balance_after_cents", "time_s")
        report.bad_records.append("%s: stored %s, its bytes say %s" % (name, ", ".join(
            "%s=%s" % (f, s) for f, s, d in zip(fields, stored, decoded) if s != d), ", ".join(
            "%s=%s" % (f, d) for f, s, d in zip(fields, stored, decoded) if s != d)))
    if status != RecordStatus.APPLIED:
        if posted:
            report.posting_mismatch.append("%s is %s, yet booked in transaction %d" % (name, status, posted[0][0]))
        return
    if rec.kind != R.KIND_ATTEMPT and rec.kind not in ledger.NO_WALLET_KINDS:   # no wallet counter claimed
        card = cards.setdefault(rec.card_no, _Card())
        card.links.append((rec.card_counter, ledger.card_delta(rec), rec.balance_after_cents))
        if posted:
            booked = ledger.by_account(posted[0][1])
            claims = (terminal_id, rules.given_back_seq(rec)) if rec.kind in ledger.GIVE_BACK_KINDS else None
            card.purse.append(_PurseStep(
                posted[0][0], name, rec.kind, rec.amount_cents, rec.balance_after_cents, rec.discount_cents,
                booked.get(accounts.bonus_account(rec.card_no), 0),
                booked.get(accounts.BONUS, 0) if rec.kind == R.KIND_CASHOUT else 0, (terminal_id, seq),
                credits.delivered(rec)[0] if rec.kind == R.KIND_CREDIT else claims))
    if len(posted) > 1:
        report.posting_mismatch.append("%s is booked %d times" % (name, len(posted)))
    merchant_id, rate_bps = terminal[0], terminal[1] or 0
    if rec.kind == R.KIND_DEBIT and rec.discount_cents:
        discounted[(terminal_id, seq)] = rec
    sale = None
    if rec.kind in ledger.GIVE_BACK_KINDS:      # the sale it gives back (SPEC.md §4.4, §4.15)
        sale = discounted.get((terminal_id, rec.ref_seq if rec.kind == R.KIND_REFUND else seq - rec.item))
    moved = credits.delivered(rec)[1] if rec.kind == R.KIND_CREDIT else 0
    if moved:       # a lost card's credits that moved to its replacement: the rest is posted (SPEC.md §4.13)
        credits.unbooked[rec.card_no] = credits.unbooked.get(rec.card_no, 0) + moved
        outcome = _moved_mismatch(rec, posted[0][1] if posted else [], moved)
    else:
        outcome = posting_mismatch(rec, merchant_id, rate_bps, posted[0][1] if posted else [], rate_known=False,
                                   rates_had=rates_had, sale=sale)
    if outcome == "other_rate":
        report.other_rate += 1
    elif outcome is not None:
        report.posting_mismatch.append("%s: %s" % (name, outcome))


def _moved_mismatch(rec, posted, moved_cents):
    """None, or why a credit record delivering moved credits onto a lost card is booked otherwise than the rest of
    its amount from park:pending_credits (its bonus purse entries are re-derived by _check_purse)."""
    memo = (accounts.bonus_account(rec.card_no), accounts.BONUS_PURSES)
    posted = sorted(e for e in posted if e[0] not in memo)
    expected = sorted(ledger.credit_postings(rec.card_no, rec.amount_cents - moved_cents, 0))
    if posted == expected:
        return None
    return "posted %s, its posting is %s (%d cents of its credits moved to the card's replacement)" % (
        _entries(posted), _entries(expected), moved_cents)


def _check_cards(report, cards, card_rows, clones, replaced_moves):
    moved_bonus = {}
    for card_no in sorted(set(cards) | set(card_rows)):
        report.cards += 1
        card = cards.get(card_no) or _Card()
        shadow, last_counter = card_rows.get(card_no, (None, None))
        if card_no in clones:
            report.flagged.append(card_no)
            continue
        _check_purse(report, card_no, card.purse, moved_bonus)
        if not card.links:
            if card.has_entries or last_counter is not None:
                report.lost_history.append("card %d: %s, and no applied record" % (card_no, "; ".join(
                    ([("its ledger account holds %d cents" % card.ledger_cents)] if card.has_entries else [])
                    + ([("the hub's card row is at counter %d" % last_counter)] if last_counter is not None
                       else []))))
            continue
        links = sorted(card.links)
        counts = itertools.groupby(k for k, _d, _b in links)
        for counter, same in counts:
            n = len(list(same))
            if n > 1:
                report.doubled.append((card_no, counter, n))
        for (k0, _d0, b0), (k1, d1, b1) in zip(links, links[1:]):
            if k1 == k0 + 1 and b0 + d1 != b1:
                report.chain_breaks.append((card_no, k1, b0, d1, b1))
        first, last, derived = links[0][0], links[-1][0], links[-1][2]
        if last_counter is not None and last_counter != last:
            report.lost_history.append("card %d: the hub's card row is at counter %d, the newest record at %d"
                                       % (card_no, last_counter, last))
        if first != 1 or len({k for k, _d, _b in links}) < last - first + 1:
            report.pending.append(card_no)
            continue
        # A replaced card's records still say what the card itself holds; its account lost what moved.
        booked = card.ledger_cents - replaced_moves.get(card_no, 0)
        if not shadow == booked == derived:
            report.balance_mismatch.append((card_no, shadow if shadow is not None else 0, card.ledger_cents,
                                            derived))


async def check(storage):
    """Run every check against an open store (parkcard.store); return an AuditReport."""
    rates_had = merchant_rates(storage.oplog)
    report = await storage.audit_scan(lambda rows: run_checks(rows, rates_had))
    if not report.file_problems:
        priced, unalarmed = await repricing.reprice_all(storage)
        report.repriced = len(priced)
        report.repriced_differently = [r.difference for r in priced if r.difference is not None]
        report.repricing_unalarmed = [r.difference for r in unalarmed]
    return report


async def check_file(path):
    """Open the database at path read-only (no start-up checks, no migrations), run every check, close it."""
    storage = await store_for(path).open_for_audit()
    try:
        return await check(storage)
    finally:
        await storage.close()


def _purse_rule(step, bonus, spent, moved_bonus, late):
    """(change, forfeit) the purse rule gives a step of a card whose purse holds bonus before it."""
    if step.kind == ledger.TX_REPLACEMENT_OUT:     # the lost card's purse goes with the balance moved (§4.13)
        side, old = step.key
        if side == _BONUS_OUT:
            moved_bonus[old] = ledger.bonus_moved(bonus, step.amount_cents)
            return -moved_bonus[old], 0
        return moved_bonus.get(old, step.change_cents), 0     # booked, when the lost card was not re-derived
    if step.kind == ledger.TX_CREDIT_GRANT:      # the hold goes out: the purse closes, the credit carries its part
        return -bonus, min(bonus, step.amount_cents)
    if step.kind == ledger.TX_LATE_DEBIT_COVER:     # the purse within the hold left (balance_after_cents), §4.13
        given_back = ()
        record = late.get(step.key)
        if record is not None and record.kind in ledger.GIVE_BACK_KINDS and (_HOLD_SPENT, record.claims) in late:
            on_card = spent.get(record.claims, 0)
            given_back = (record.amount_cents, on_card + late[(_HOLD_SPENT, record.claims)],
                          ledger.bonus_given_back(record, on_card))
        after = purses.held_bonus(bonus, step.balance_after_cents, *given_back)
        return after - bonus, bonus - after
    if step.kind == R.KIND_CREDIT:      # claims: the bonus part of the credits it delivers (SPEC.md §8.1)
        return ledger.bonus_change(step, bonus, step.claims), 0
    return ledger.bonus_change(step, bonus, spent.get(step.claims, 0)), ledger.bonus_forfeited(step, bonus)


def _check_purse(report, card_no, steps, moved_bonus):
    """Re-run the purse rule over a card's applied records in booking order; list each step booked otherwise.

    A give-back restores the bonus its sale spent as the rule re-derives it (the sale is an applied debit of
    this card at the give-back's terminal, booked before it); a credit record brings its credits' bonus part, and
    a grant from a lost card's hold closes its purse, the credit carrying min(purse, amount). A replacement moves
    the lost card's purse, up to the balance moved, to the new card (moved_bonus: {lost card: what its re-derived purse gave}; a new card
    is numbered after the card it replaces, so it is checked after it)."""
    bonus = 0
    spent = {}      # (terminal, seq) of the card's debits -> the bonus each spent, re-derived
    late = {}       # (terminal, seq) of the card's records -> their step, and of its late debits -> (hold, bonus spent)
    for step in sorted(steps):
        change, forfeit = _purse_rule(step, bonus, spent, moved_bonus, late)
        if step.kind == R.KIND_DEBIT:
            spent[step.key] = -change
        if step.kind == ledger.TX_LATE_DEBIT_COVER:
            late[(_HOLD_SPENT, step.key)] = forfeit
        else:
            late[step.key] = step
        if (step.change_cents, step.forfeit_cents) != (change, forfeit):
            # A grant from a hold: forfeit is the bonus part the credit carries to the new card (_purse_closed_steps);
            # a late record's settlement: the bonus it says it took from the hold (_late_purse_steps).
            part = {ledger.TX_CREDIT_GRANT: "the credit's bonus part",
                    ledger.TX_LATE_DEBIT_COVER: "taken in the hold"}.get(step.kind, "back to the park")
            report.purse_mismatch.append("card %d, %s: bonus purse %d, booked %+d (%s %d), the rule gives %+d (%s %d)"
                                         % (card_no, step.record, bonus, step.change_cents, part, step.forfeit_cents,
                                            change, part, forfeit))
        bonus += step.change_cents
