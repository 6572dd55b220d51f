"""What people call each record kind (protocol/record.py KIND_*, SPEC.md §4.2): the one table every screen shows.

The names are the English source text of the web app's message catalogs (each has its 简体中文 entry in
hub/parkcard/web/locale/); a kind this hub does not know yet is shown by its number with UNKNOWN_KIND.
"""

from protocol import record as R

KIND_NAMES = {
    R.KIND_DEBIT: "sale", R.KIND_TOPUP: "top-up", R.KIND_REFUND: "refund", R.KIND_CASHOUT: "card returned",
    R.KIND_TRANSFER_OUT: "balance moved off", R.KIND_TRANSFER_IN: "balance moved on", R.KIND_ISSUE: "issued",
    R.KIND_LOCK: "locked (blacklisted)", R.KIND_ATTEMPT: "tap of a locked card",
    R.KIND_PAYOUT: "cash refunded at the desk", R.KIND_CREDIT: "pending credit received",
    R.KIND_SALE_LINE: "sale line (item and quantity)", R.KIND_SHIFT: "staff shift at a booth",
    R.KIND_REVERSAL: "sale reversed by the booth", R.KIND_ENTRY: "gate entry", R.KIND_EXIT: "gate exit",
    R.KIND_REFUSAL: "gate refusal", R.KIND_TIMED_EXIT: "timed gate exit",
    R.KIND_EXIT_FINISHED: "timed gate exit finished",
}
UNKNOWN_KIND = "record kind %(kind)d"


def kind_name(kind, gettext=lambda text: text):
    """What a record kind is called, translated by gettext; an unknown kind by its number."""
    if kind in KIND_NAMES:
        return gettext(KIND_NAMES[kind])
    return gettext(UNKNOWN_KIND) % {"kind": kind}
