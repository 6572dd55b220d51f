"""Posting rules: a record becomes ledger entries that sum to zero. Pure, integer cents.

Sign convention (one rule for every account, named in parkcard.domain.accounts):
an entry's amount is what the park owes to, or has earned for, the account
holder. Positive = credit: customer funds on a card, money owed to a
merchant, commission earned, deposits held. Negative = debit: cash taken in
at the desk and bonus given away (an expense). Every transaction sums to zero.

Record fields used beyond amount (SPEC.md §4.1):
- TOPUP and ISSUE: `amount_cents` is the value added to the card, bonus
  included; `discount_cents` is that bonus, so the cash paid is amount - discount.
- ISSUE and CASHOUT: `deposit_cents` (record version 2) is the card deposit;
  ISSUE takes it in, CASHOUT pays it back. A version 1 ISSUE or CASHOUT has no
  deposit field and is refused (`record_unsupported`): its `item` is the
  price-list item, never money.
- REFUND: reverses a sale with the same commission rate; which sale it may
  reverse is ingest's rule (SPEC.md §4.4), not a posting rule.
- TRANSFER_OUT / TRANSFER_IN go through the clearing account `park:transfers`,
  which nets to zero once both halves are posted.
"""

from protocol import record as R
from protocol.card import TIER_GOLD, TIER_SILVER, TIER_STANDARD

from parkcard.domain.accounts import BONUS, CASH, COMMISSION, DEPOSITS, TRANSFERS, card_account, merchant_account

# Top-up bonus by card tier, in percent of the cash paid (config, not code).
TIER_BONUS_PERCENT = {TIER_STANDARD: 0, TIER_SILVER: 0, TIER_GOLD: 10}

# Kinds only a desk terminal may produce (SPEC.md §3.2: no credit path at a booth). A booth's REFUND
# is allowed only against its own sale (SPEC.md §4.4, checked by ingest).
DESK_ONLY_KINDS = (R.KIND_TOPUP, R.KIND_ISSUE, R.KIND_TRANSFER_IN, R.KIND_CASHOUT, R.KIND_TRANSFER_OUT)
# Kinds that move a deposit: they need the deposit_cents field of record version 2.
DEPOSIT_KINDS = (R.KIND_ISSUE, R.KIND_CASHOUT)

_CARD_SIGN = {R.KIND_DEBIT: -1, R.KIND_TOPUP: 1, R.KIND_REFUND: 1, R.KIND_CASHOUT: -1, R.KIND_TRANSFER_OUT: -1,
              R.KIND_TRANSFER_IN: 1, R.KIND_ISSUE: 1, R.KIND_LOCK: 0,
              R.KIND_ATTEMPT: 0}


class PostingError(ValueError):
    """A record whose amounts do not make a valid posting; `reason` is a stable code."""

    def __init__(self, reason, detail):
        ValueError.__init__(self, detail)
        self.reason = reason


def bonus_cents(tier, cash_cents, table=TIER_BONUS_PERCENT):
    """Bonus added on top of a cash top-up for a card tier (rounded down)."""
    return cash_cents * table.get(tier, 0) // 100


def commission_cents(amount_cents, rate_bps):
    """Commission kept by the park on a sale: amount * rate // 10,000."""
    return amount_cents * rate_bps // 10000


def card_delta(rec):
    """Signed change of the card's balance made by a record."""
    return _CARD_SIGN[rec.kind] * rec.amount_cents


def postings(rec, merchant_id, rate_bps):
    """Return [(account, cents)] for a record at a terminal of merchant_id with commission rate_bps."""
    amount = rec.amount_cents
    card = card_account(rec.card_no)
    kind = rec.kind
    if kind in DEPOSIT_KINDS and rec.version < R.RECORD_V2:
        raise PostingError("record_unsupported", "deposit kinds need record version 2")
    if rec.deposit_cents and kind not in DEPOSIT_KINDS:
        raise PostingError("bad_amounts", "deposit_cents on a kind that moves no deposit")
    if rec.ref_seq and kind != R.KIND_REFUND:
        raise PostingError("bad_fields", "ref_seq on a kind that is not a refund")
    if kind in (R.KIND_DEBIT, R.KIND_REFUND):
        fee = commission_cents(amount, rate_bps)
        sign = 1 if kind == R.KIND_DEBIT else -1
        entries = [(card, -sign * amount), (merchant_account(merchant_id), sign * (amount - fee)),
                   (COMMISSION, sign * fee)]
    elif kind in (R.KIND_TOPUP, R.KIND_ISSUE):
        bonus = rec.discount_cents
        if bonus > amount:
            raise PostingError("bad_amounts", "bonus %d over the amount %d" % (bonus, amount))
        deposit = rec.deposit_cents if kind == R.KIND_ISSUE else 0
        entries = [(CASH, -(amount - bonus + deposit)), (BONUS, -bonus), (DEPOSITS, deposit), (card, amount)]
    elif kind == R.KIND_CASHOUT:
        if rec.balance_after_cents != 0:
            raise PostingError("bad_amounts", "a cash-out leaves the card at 0")
        deposit = rec.deposit_cents
        entries = [(card, -amount), (DEPOSITS, -deposit), (CASH, amount + deposit)]
    elif kind == R.KIND_TRANSFER_OUT:
        entries = [(card, -amount), (TRANSFERS, amount)]
    elif kind == R.KIND_TRANSFER_IN:
        entries = [(TRANSFERS, -amount), (card, amount)]
    else:  # KIND_LOCK and KIND_ATTEMPT move no value
        return []
    entries = [e for e in entries if e[1] != 0]
    if sum(e[1] for e in entries) != 0:
        raise PostingError("unbalanced", "entries do not sum to zero")
    return entries
