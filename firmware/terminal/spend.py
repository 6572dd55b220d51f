"""The consumption rules a pos or ride terminal spends by, taken from its T_CONFIG tail (SPEC.md §5.10).

Only the spending roles import this: a gate's tail is its gate config (§5.8), a desk's is empty.
"""

from protocol.config import ROLE_POS, ROLE_RIDE
from protocol.errors import Malformed
from protocol.spend_rules import SpendRules, debit_cents
from terminal.compat import const
from terminal.purse import MEMBERS_ONLY, NOT_ALLOWED, OFFLINE_LIMIT, OVER_DAILY_CAP, OVER_TX_CAP

# terminal/journal.py's entry layout (its _APPEND and _APPEND_HEAD: an underscored const() has no name to import).
_JOURNAL_APPEND = const(0x41)
_JOURNAL_APPEND_HEAD = const(9)


class Limits:
    """The consumption rules as the purse applies them (SPEC.md §3.6 rules 10-13 and 16), over this journal."""

    def __init__(self, rules, journal):
        self.rules = rules
        self._journal = journal

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
        if limit and unacked_total(self._journal, lambda buf, at: debit_cents(buf, at, card_no)) + amount_cents \
                > limit:
            return OFFLINE_LIMIT
        return None


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


def unacked_total(journal, value):
    """Sum value(buffer, offset) over the journal's records the hub has not acknowledged, each read in place.

    A scan of terminal/journal.py's segments by its own reader, kept here rather than in the journal: every
    terminal loads the journal, only the spending roles need this, and the heap of the others has no room."""
    total = 0
    for r in journal._entries(0):
        if r.kind == _JOURNAL_APPEND and r.seq > journal._acked:
            total += value(r._buf, r._lo + _JOURNAL_APPEND_HEAD)
    return total
