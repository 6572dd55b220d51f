"""The consumption rules a pos or ride terminal spends by, taken from its T_CONFIG tail (SPEC.md §5.10).

Only the spending roles import this: a gate's tail is its gate config (§5.8), a desk's is empty.
"""

from protocol.config import ROLE_POS, ROLE_RIDE
from protocol.errors import Malformed
from protocol.spend_rules import SpendRules, debit_cents
from terminal.compat import const

# terminal/journal.py's entry layout (its _APPEND and _APPEND_HEAD: an underscored const() has no name to import).
_JOURNAL_APPEND = const(0x41)
_JOURNAL_APPEND_HEAD = const(9)


class RulesTail:
    """Keeps the wallet's rules in step with the config's tail, parsing it only when it changed.

    With a runtime it watches every config the hub sends (terminal.sync), so the rules are in force
    from the moment the config is, whatever the terminal is doing; close() stops watching."""

    def __init__(self, wallet, runtime=None):
        self._tail = None
        self._wallet = wallet
        self._sync = runtime.sync if runtime is not None else None
        self._watcher = self.take       # one bound method: the same object to unwatch
        wallet.offline_spent = self.offline_spent
        if self._sync is not None:
            self._sync.watch_config(self._watcher)

    def offline_spent(self, card_no):
        """What card_no spent at this terminal that the hub has not acknowledged: its debits in the journal."""
        return unacked_total(self._wallet.journal, lambda buf, at: debit_cents(buf, at, card_no))

    def take(self, cfg):
        """Set the wallet's spend_rules from cfg.tail: None for another role, no tail or one that does not
        parse (a config without rules, as an older hub sends: the park's caps alone apply)."""
        tail = cfg.tail if cfg is not None and cfg.role in (ROLE_POS, ROLE_RIDE) else b""
        if tail is self._tail:
            return
        self._tail = tail
        rules = None
        if tail:
            try:
                rules = SpendRules.decode(tail)
            except Malformed:
                rules = None
        self._wallet.spend_rules = rules

    def close(self):
        """The role ends: its rules go with it."""
        if self._sync is not None:
            self._sync.unwatch_config(self._watcher)
        self._wallet.spend_rules = self._wallet.offline_spent = None
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
