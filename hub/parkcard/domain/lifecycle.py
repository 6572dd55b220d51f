"""One enum per lifecycle at the hub, one name per state; the values are the strings the store keeps.

A record's life spans the terminal and the hub. On the terminal (firmware
journal) it is PENDING, then COMMITTED, VOIDED or UNCERTAIN, and HANDED_OVER
when the terminal hands the decision to the hub; it is uploaded with status
committed, voided or uncertain (SPEC.md §4.3). At the hub (RecordStatus) it
is applied, voided, uncertain or quarantined. The terminal's HANDED_OVER is the
hub's UNCERTAIN, and an uncertain record the hub decides did not happen
becomes VOIDED, the name the terminal uses for the same fact (the card was
not written).

Hubs before store migration 11 stored such a record as 'not_happened'; that
migration renames the stored rows, so one name remains.
"""

import enum

from protocol import record as R


class RecordStatus(enum.StrEnum):
    """A stored record at the hub (records.status)."""

    APPLIED = "applied"            # posted in the ledger
    VOIDED = "voided"              # the card was not written: kept for the seq, no ledger effect
    UNCERTAIN = "uncertain"        # the card write's outcome is open: decided by the card's counters
    QUARANTINED = "quarantined"    # authenticated, refused by a record rule; holds its seq



# Upload status (SPEC.md §4.3) -> the status a new record is stored with.
UPLOAD_STATUS = {R.STATUS_COMMITTED: RecordStatus.APPLIED, R.STATUS_VOIDED: RecordStatus.VOIDED,
                 R.STATUS_UNCERTAIN: RecordStatus.UNCERTAIN}


class UncertainOutcome(enum.Enum):
    """What the counter rule says of an uncertain record now (SPEC.md §4.8)."""

    HAPPENED = "happened"          # apply it
    VOIDED = "voided"              # another record holds its counter: it did not happen
    OPEN = "open"                  # no evidence yet either way: it stays uncertain


class CardStatus(enum.StrEnum):
    """A card at the hub (cards.status)."""

    ACTIVE = "active"
    BLACKLISTED = "blacklisted"
    RETURNED = "returned"       # taken back at the desk, balance and deposit paid out (SPEC.md §4.12)
    WIPED = "wiped"             # ... and its card made stock again: the number is retired


class TerminalStatus(enum.StrEnum):
    """A registered terminal, from its two flags (terminals.authorised, terminals.locked)."""

    UNAUTHORISED = "unauthorised"  # serves no card until a technician taps an admin card
    AUTHORISED = "authorised"      # holds the card keys and serves
    LOCKED = "locked"              # forgot its keys; no admin card authorises it until unlocked

    @classmethod
    def of(cls, authorised, locked):
        """The status a terminal's stored flags mean."""
        if locked:
            return cls.LOCKED
        return cls.AUTHORISED if authorised else cls.UNAUTHORISED


class AdminCardState(enum.StrEnum):
    """An admin system card (admin_cards.state); only a written card authorises a terminal."""

    PENDING = "pending"            # sealed, the desk has not reported it written
    WRITTEN = "written"
    FAILED = "failed"              # the desk reported a failure or did not answer in time
    ABANDONED = "abandoned"        # its request was cancelled before the desk reported

    @classmethod
    def settled(cls, cancelled, written):
        """The state a pending card ends in: abandoned when its request was cancelled (written or not: the operator
        was told it was), else written or failed."""
        if cancelled:
            return cls.ABANDONED
        return cls.WRITTEN if written else cls.FAILED

    def request_error(self, card_no, error):
        """What the card's request is finished with: None for a written card, else why it serves no terminal."""
        if self == AdminCardState.ABANDONED:
            return "cancelled: admin card %d is abandoned and authorises no terminal" % card_no
        return None if self == AdminCardState.WRITTEN else error


class DeskOpState(enum.StrEnum):
    """A front-desk operation (parkcard.services.desk)."""

    PENDING = "pending"            # the write is asked for (or about to be): posted only once confirmed
    POSTED = "posted"              # the card holds the write and its record is in the ledger
    FAILED = "failed"              # the card does not hold the write: nothing posted; a retry may try again


class QuarantineReason(enum.StrEnum):
    """Why the hub kept a frame or record in quarantine, beside the protocol's own codes
    (malformed, bad_mac, unsupported... from protocol.errors, and `record_` + those for a record)."""

    FOREIGN_TOPIC = "foreign_topic"
    UNKNOWN_TERMINAL = "unknown_terminal"
    WRONG_TOPIC = "wrong_topic"
    UNEXPECTED_TYPE = "unexpected_type"
    REPLAY = "replay"
    RECORD_TERMINAL = "record_terminal"
    RECORD_STATUS = "record_status"
    CREDIT_FROM_BOOTH = "credit_from_booth"
    REFUND_UNMATCHED = "refund_unmatched"
    REFUND_OVER_SALE = "refund_over_sale"
    REFUND_TWICE = "refund_twice"
    # A booth reversal (kind 19) that is not one whole sale of the open shift, authorised by its staff (SPEC.md §4.15).
    REVERSAL_UNMATCHED = "reversal_unmatched"
    REVERSAL_AMOUNT = "reversal_amount"
    REVERSAL_SHIFT = "reversal_shift"
    REVERSAL_STAFF = "reversal_staff"
    CREDIT_UNKNOWN = "credit_unknown"      # a credit record naming credits the hub did not grant that card
    CREDIT_MISMATCH = "credit_mismatch"    # ... or adding another amount than the hub granted
    HUB_ERROR = "hub_error"        # the hub failed on this message alone (a bug): kept so it cannot stop the hub


class BlacklistAction(enum.StrEnum):
    """What one blacklist version did to its card (blacklist_versions.action)."""

    ADD = "add"
    REMOVE = "remove"


# The alarm kind the clone rule raises; the auditor and the ledger check list its cards.
ALARM_CREDIT_TWICE = "credit_twice"   # a card received a pending credit again (a restored card, SPEC.md §8.4)
ALARM_CLONE = "clone"
ALARM_STAFF_UNKNOWN = "staff_unknown"     # a shift opened with a card that is no staff card of the merchant (§4.14)
ALARM_LATE_LOSS = "late_loss"     # a replaced card's late debit beyond its hold: the park's loss (SPEC.md §4.13)
ALARM_REPRICING = "repricing"     # a booth sale the hub prices differently from the same versions (SPEC.md §4.11)
