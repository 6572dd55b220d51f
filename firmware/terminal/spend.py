"""The consumption rules a pos or ride terminal spends by, taken from its T_CONFIG tail (SPEC.md §5.10).

Only the spending roles import this: a gate's tail is its gate config (§5.8), a desk's is empty.
"""

from protocol.config import ROLE_POS, ROLE_RIDE
from protocol.errors import Malformed
from protocol.spend_rules import SpendRules, debit_cents, debit_of
from terminal.compat import const
from terminal.purse import MEMBERS_ONLY, NOT_ALLOWED, OFFLINE_LIMIT, OVER_DAILY_CAP, OVER_TX_CAP

# Cards whose unacknowledged sales here the offline limit keeps counted; past it a card not among them is
# summed by one scan of the unacknowledged records (each read in place).
CARDS_COUNTED_MAX = const(64)


class Limits:
    """The consumption rules as the purse applies them (SPEC.md §3.6 rules 10-13 and 16), over this journal."""

    def __init__(self, rules, journal):
        self.rules = rules
        self._journal = journal
        # A running count of the unacknowledged debits by card, made at the journal's ack point _acked and
        # brought up to _seen at each tap by reading the records since: a tap reads only the journal's newest.
        self._acked = -1
        self._seen = 0
        self._cents = {}
        self._whole = True      # _cents holds every card: a card not in it has no unacknowledged sale here

    def refusal(self, info, spent_today_cents, amount_cents, member_only):
        """not_allowed, members_only, over_tx_cap or over_daily_cap by these rules, or None."""
        rules = self.rules
        if not rules.allows(info.tier, info.flags):
            return NOT_ALLOWED
        if member_only and not rules.member(info.tier):
            return MEMBERS_ONLY
        if rules.tx_cap_cents and amount_cents > rules.tx_cap_cents:
            return OVER_TX_CAP
        if rules.daily_cap_cents and spent_today_cents + amount_cents > rules.daily_cap_cents:
            return OVER_DAILY_CAP
        return None

    def offline_refusal(self, card_no, amount_cents):
        """offline_limit when card_no's sales here the hub has not acknowledged and this one pass the limit."""
        limit = self.rules.offline_cents
        if limit and self.unacked_cents(card_no) + amount_cents > limit:
            return OFFLINE_LIMIT
        return None

    def unacked_cents(self, card_no):
        """What card_no's debits here the hub has not acknowledged add up to, in cents."""
        journal = self._journal
        if journal.acked() != self._acked:      # an ack: the count starts again from the new ack point
            self._acked = self._seen = journal.acked()
            self._cents = {}
            self._whole = True
        if journal.last_seq() > self._seen:
            journal.each_after(self._seen, self._count)
            self._seen = journal.last_seq()
        if self._whole or card_no in self._cents:
            return self._cents.get(card_no, 0)
        total = [0]

        def add(_seq, buf, at):
            total[0] += debit_cents(buf, at, card_no)
        journal.each_after(self._acked, add)
        return total[0]

    def _count(self, _seq, buf, at):
        debit = debit_of(buf, at)
        if debit is None:
            return
        card_no, amount_cents = debit
        cents = self._cents
        if card_no in cents:
            cents[card_no] += amount_cents
        elif len(cents) < CARDS_COUNTED_MAX:
            cents[card_no] = amount_cents
        else:
            self._whole = False


class RulesTail:
    """Keeps the wallet's rules in step with the config's tail, parsing it only when it changed.

    With a runtime it watches every config the hub sends (terminal.sync), so the rules are in force
    from the moment the config is, whatever the terminal is doing; close() stops watching."""

    def __init__(self, wallet, runtime=None):
        self._tail = None
        self._wallet = wallet
        self._sync = runtime.sync if runtime is not None else None
        self._watcher = self.take       # one bound method: the same object to unwatch
        if self._sync is not None:
            self._sync.watch_config(self._watcher)

    def take(self, cfg):
        """Set the wallet's spend_rules from cfg.tail: None for another role, no tail or one that does not
        parse (a config without rules, as an older hub sends: the park's caps alone apply)."""
        tail = cfg.tail if cfg is not None and cfg.role in (ROLE_POS, ROLE_RIDE) else b""
        if tail is self._tail:
            return
        self._tail = tail
        limits = None
        if tail:
            try:
                limits = Limits(SpendRules.decode(tail), self._wallet.journal)
            except Malformed:
                limits = None
        self._wallet.spend_rules = limits

    def close(self):
        """The role ends: its rules go with it."""
        if self._sync is not None:
            self._sync.unwatch_config(self._watcher)
        self._wallet.spend_rules = None
        self._tail = None

