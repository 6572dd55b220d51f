"""Ledger check: rebuilds what must hold from the stored facts and reports every discrepancy.

1. Every ledger transaction sums to zero.
2. Every applied value record has its ledger transaction.
3. Every card's shadow balance (balance_after of its newest counter) equals the
   SUM of its ledger account, when the card's counter chain is complete
   (counters first..last all known). An incomplete chain (records still
   offline on a terminal) is reported as pending, not as a discrepancy; a card
   with a clone alarm is reported as flagged (its two histories cannot both
   match the card) and is already blacklisted.
4. Counter chains: for consecutive known counters, balance_after(k-1) +
   delta(k) == balance_after(k).
"""

from protocol.card import COUNTER_MODULUS


class AuditReport:
    """Findings of one check; `ok` is False on any discrepancy."""

    def __init__(self):
        self.transactions = 0
        self.cards = 0
        self.unbalanced = []
        self.missing_tx = 0
        self.balance_mismatch = []
        self.chain_breaks = []
        self.pending = []
        self.flagged = []

    @property
    def ok(self):
        """True when no check found a discrepancy (pending and flagged cards are none)."""
        return not (self.unbalanced or self.missing_tx or self.balance_mismatch or self.chain_breaks)

    def lines(self):
        """The findings in words: what each check counts and why it matters, then the verdict."""
        out = ["ledger transactions: %d, unbalanced: %d  (each must sum to zero: money only moves between "
               "accounts, it never appears or vanishes)" % (self.transactions, len(self.unbalanced))]
        out += ["  transaction %d sums to %+d cents" % row for row in self.unbalanced[:20]]
        out.append("applied records without a ledger transaction: %d  (every payment, top-up or refund the hub "
                   "accepted must be booked)" % self.missing_tx)
        out.append("cards checked: %d" % self.cards)
        out.append("  balance mismatches: %d  (the hub's balance of the card differs from its ledger account)"
                   % len(self.balance_mismatch))
        out += ["    card %d: hub balance %d cents, ledger %d cents" % row for row in self.balance_mismatch[:20]]
        out.append("  chain breaks: %d  (a payment does not continue from the card's previous balance)"
                   % len(self.chain_breaks))
        out += ["    card %d counter %d: %d %+d != %d" % row for row in self.chain_breaks[:20]]
        out.append("  pending (incomplete chain): %d  (payments still on a terminal; checked once uploaded)"
                   % len(self.pending))
        out.append("  flagged (clone alarm): %d  (two cards with one history: blacklisted, left out of the check)"
                   % len(self.flagged))
        out.append("RESULT: OK: the ledger balances and every card agrees with it" if self.ok else
                   "RESULT: DISCREPANCIES FOUND: each non-zero count above needs looking into")
        return out


async def check(storage):
    """Run every check against an open Storage; return an AuditReport."""
    report = AuditReport()
    report.transactions = await storage.count("ledger_tx")
    report.unbalanced = [tuple(r) for r in await storage.unbalanced_transactions()]
    report.missing_tx = await storage.applied_without_tx()
    flagged = await storage.clone_alarm_cards()
    chains = {}
    for card_no, counter, delta, balance in await storage.card_chains():
        chains.setdefault(card_no, []).append((counter, delta, balance))
    for card_no, shadow, ledger_sum, known, first, last, _status in await storage.card_balances():
        report.cards += 1
        if card_no in flagged:
            report.flagged.append(card_no)
            continue
        if last is None:
            continue
        links = chains.get(card_no, [])
        for (k0, _d0, b0), (k1, d1, b1) in zip(links, links[1:]):
            if k1 == (k0 + 1) % COUNTER_MODULUS and b0 + d1 != b1:
                report.chain_breaks.append((card_no, k1, b0, d1, b1))
        span = (last - first) % COUNTER_MODULUS + 1 if first is not None else 0
        if first != 1 or known < span:
            report.pending.append(card_no)
            continue
        if shadow != ledger_sum:
            report.balance_mismatch.append((card_no, shadow, ledger_sum))
    return report
