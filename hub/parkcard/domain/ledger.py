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
  ISSUE takes it in, CASHOUT pays it back.
- PAYOUT (a desk refund) and CASHOUT (a card returned): `discount_cents` is the
  refund fee the park keeps (SPEC.md §4.12).
- The bonus purse (parkcard.domain.purses: cash spent first): `card:<no>` is the
  card's whole balance; `bonus:<no>` says how much of it is bonus, against
  `park:bonus_purses`. A record's bonus part depends on the purse before it
  (bonus_change); a returned card's unspent bonus goes back to `park:bonus`,
  never paid out. A version 1 ISSUE or CASHOUT has no
  deposit field and is refused (`record_unsupported`): its `item` is the
  price-list item, never money.
- REFUND and REVERSAL: reverse a sale with the same commission rate; which
  sale they may reverse is ingest's rule (SPEC.md §4.4, §4.15), not a posting rule.
  What the sale spent of the bonus purse comes back to the purse first
  (bonus_given_back): a give-back never turns bonus into refundable cash.
- DEBIT, REFUND and REVERSAL at a booth whose discounts the park bears (SPEC.md
  §7.5): the park pays the merchant the discount from `park:discounts`, so the
  merchant is owed the list price less commission; a give-back takes back its
  share of the sale's discount (`refund_discount_share`). Who bears it is the
  caller's (the merchant's setting when the record is applied).
- TRANSFER_OUT / TRANSFER_IN go through the clearing account `park:transfers`,
  which nets to zero once both halves are posted.
"""

from operator import itemgetter

from protocol import record as R

from parkcard.domain.accounts import (API_PAYMENTS, BONUS, BONUS_PURSES, CASH, COMMISSION, DEPOSITS, DISCOUNTS,
                                      HOLD_PREFIX, LOSSES, OVER_SHORT, PENDING_CREDITS, REFUND_FEES, TICKET_REVENUE,
                                      TRANSFERS, bonus_account, card_account, hold_account, merchant_account,
                                      paid_by_account)
from parkcard.domain.cents import whole
from parkcard.domain.tiers import DEFAULT_TIERS

# Kinds only a desk terminal may produce (SPEC.md §3.2: no credit path at a booth). A booth's REFUND
# is allowed only against its own sale (SPEC.md §4.4, checked by ingest).
DESK_ONLY_KINDS = (R.KIND_TOPUP, R.KIND_ISSUE, R.KIND_TRANSFER_IN, R.KIND_CASHOUT, R.KIND_TRANSFER_OUT,
                   R.KIND_PAYOUT)
# Kinds that move a deposit: they need the deposit_cents field of record version 2.
DEPOSIT_KINDS = (R.KIND_ISSUE, R.KIND_CASHOUT)

# Kinds whose discount is bonus added to the card (the rest of the amount is cash paid in).
BONUS_KINDS = (R.KIND_TOPUP, R.KIND_ISSUE)
# Kinds whose discount is the refund fee kept by the park (SPEC.md §4.12).
FEE_KINDS = (R.KIND_PAYOUT, R.KIND_CASHOUT)

# Kinds that claim no wallet counter: a passage's counter is the ticket's, a sale line repeats its sale's, a
# shift record writes no card (SPEC.md §4.14).
NO_WALLET_KINDS = R.PASSAGE_KINDS + (R.KIND_SALE_LINE, R.KIND_SHIFT)
# Kinds that give a booth's sale back to its card: each claims the sale, once (SPEC.md §4.4, §4.15).
GIVE_BACK_KINDS = (R.KIND_REFUND, R.KIND_REVERSAL)

_CARD_SIGN = {R.KIND_DEBIT: -1, R.KIND_TOPUP: 1, R.KIND_REFUND: 1, R.KIND_CASHOUT: -1, R.KIND_TRANSFER_OUT: -1,
              R.KIND_TRANSFER_IN: 1, R.KIND_ISSUE: 1, R.KIND_LOCK: 0, R.KIND_REVERSAL: 1, R.KIND_PAYOUT: -1,
              R.KIND_ATTEMPT: 0, R.KIND_CREDIT: 1, **{kind: 0 for kind in NO_WALLET_KINDS}}

# Ledger transactions the hub books with no record (ledger_tx.kind): a pending credit's grant and its cancel.
TX_CREDIT_GRANT = 1015
TX_CREDIT_CANCEL = 1016
# ... and a ticket written onto a card at the desk, its price paid in cash there (SPEC.md §3.8).
TX_TICKET_SALE = 1020
# ... and a cashier's shift: a desk operation paid by another method than cash, and the drawer's over/short.
TX_PAID_BY = 1030
TX_SHIFT_CLOSE = 1031
# ... and the two halves of a replacement the hub books with no record (SPEC.md §4.13): the lost card's balance
# taken off it (the new card's transfer-in record is the other half), and a late record of it settled (a debit
# paid from the hold, a credit taken into it).
TX_REPLACEMENT_OUT = 1023
TX_LATE_DEBIT_COVER = 1024
# Where a pending credit's value comes from (credit_grant's source): cash at a desk, a payment through the
# API, or a replaced card's hold (hold:<card_no>).
CREDIT_SOURCES = (CASH, API_PAYMENTS)


class PostingError(ValueError):
    """A record whose amounts do not make a valid posting; `reason` is a stable code."""

    def __init__(self, reason, detail):
        ValueError.__init__(self, detail)
        self.reason = reason


def bonus_cents(tier, cash_cents, table=DEFAULT_TIERS):
    """Bonus added on top of a cash top-up for a card tier, by a tier table (the desk passes the park's stored one,
    parkcard.services.tiers)."""
    return table.bonus_cents(tier, cash_cents)


def commission_cents(amount_cents, rate_bps):
    """Commission kept by the park on a sale: amount * rate // 10,000."""
    return amount_cents * rate_bps // 10000


def refund_discount_share(sale_amount_cents, sale_discount_cents, refund_cents):
    """The part of a sale's discount a refund of refund_cents takes back: in proportion, floored (SPEC.md §7.5)."""
    if refund_cents >= sale_amount_cents:
        return sale_discount_cents
    return sale_discount_cents * refund_cents // sale_amount_cents


def park_discount_cents(rec, park_bears, sale=None):
    """The discount the park pays the merchant for a booth sale or refund (SPEC.md §7.5): a sale's whole
    discount, a refund's share of its sale's (sale: the debit Record it refunds); 0 when the merchant bears it."""
    if not park_bears:
        return 0
    if rec.kind == R.KIND_DEBIT:
        return rec.discount_cents
    if rec.kind in GIVE_BACK_KINDS and sale is not None:
        return refund_discount_share(sale.amount_cents, sale.discount_cents, rec.amount_cents)
    return 0


def card_delta(rec):
    """Signed change of the card's balance made by a record."""
    return _CARD_SIGN[rec.kind] * rec.amount_cents


def bonus_given_back(rec, sale_bonus_cents):
    """The bonus a booth's give-back restores: the bonus its sale spent (sale_bonus_cents, >= 0) first, up to the
    give-back's amount; the rest of it is cash (SPEC.md §4.12). 0 for every other kind."""
    if rec.kind not in GIVE_BACK_KINDS:
        return 0
    return min(max(0, sale_bonus_cents), rec.amount_cents)


def bonus_change(rec, bonus_before_cents, sale_bonus_cents=0):
    """Signed change of the card's bonus purse by a record, from the purse before it: cash is spent first, so
    the bonus is touched only when the balance after falls below it (parkcard.domain.purses); a give-back
    restores the bonus its sale spent (sale_bonus_cents: minus the sale's bonus:<no> entry, bonus_given_back); a
    credit record brings its credits' bonus part (sale_bonus_cents: their bonus_cents, SPEC.md §8.1)."""
    if not _CARD_SIGN.get(rec.kind):
        return 0
    if rec.kind == R.KIND_CREDIT:
        gained = min(max(0, sale_bonus_cents), rec.amount_cents)
    else:
        gained = rec.discount_cents if rec.kind in BONUS_KINDS else bonus_given_back(rec, sale_bonus_cents)
    return min(bonus_before_cents + gained, rec.balance_after_cents) - bonus_before_cents


def bonus_forfeited(rec, bonus_before_cents):
    """A returned card's unspent bonus that goes back to the park: its purse, within what the cash-out takes."""
    if rec.kind != R.KIND_CASHOUT:
        return 0
    return max(0, min(bonus_before_cents, rec.amount_cents - rec.discount_cents))


# The booth-sale kinds (SPEC.md §4.4, §4.15): a sale and the give-backs that reverse it, with the commission rate.
SALE_KINDS = (R.KIND_DEBIT,) + GIVE_BACK_KINDS


def postings(rec, merchant_id, rate_bps, bonus_before_cents=0, park_discount=0, sale_bonus_cents=0):
    """Return [(account, cents)] for a record at a terminal of merchant_id with commission rate_bps, on a card
    whose bonus purse held bonus_before_cents before it; park_discount: the cents of a sale's or give-back's
    discount the park bears (park_discount_cents); sale_bonus_cents: the bonus a give-back's sale spent."""
    amount = rec.amount_cents
    kind = rec.kind
    if kind in DEPOSIT_KINDS and rec.version < R.RECORD_V2:
        raise PostingError("record_unsupported", "deposit kinds need record version 2")
    if rec.deposit_cents and kind not in DEPOSIT_KINDS:
        raise PostingError("bad_amounts", "deposit_cents on a kind that moves no deposit")
    if rec.ref_seq and kind != R.KIND_REFUND:
        raise PostingError("bad_fields", "ref_seq on a kind that is not a refund")
    if kind in FEE_KINDS and rec.discount_cents > amount:
        raise PostingError("bad_amounts", "fee %d over the amount %d" % (rec.discount_cents, amount))
    if park_discount and (kind not in SALE_KINDS or park_discount < 0
                          or (kind == R.KIND_DEBIT and park_discount != rec.discount_cents)):
        raise PostingError("bad_amounts", "a park discount of %d on a kind %d record with discount %d"
                           % (park_discount, kind, rec.discount_cents))
    card_no = rec.card_no
    card = card_account(card_no)
    if kind in SALE_KINDS:
        # Six accounts of distinct names: nothing to add up (_merged), only the zero entries to leave out.
        fee = commission_cents(amount, rate_bps)
        sign = 1 if kind == R.KIND_DEBIT else -1
        # An empty purse and no bonus given back: nothing to move (bonus_change is 0 then), most sales.
        change = bonus_change(rec, bonus_before_cents, sale_bonus_cents) if bonus_before_cents or \
            sale_bonus_cents else 0
        owed = sign * (amount - fee + park_discount)
        # Each amount is booked against its counterpart, so these sum to zero whatever the record holds: only
        # the zero entries are left out (_balanced's sum would test what cannot fail, once per sale).
        entries = [(card, -sign * amount)] if amount else []
        if owed:
            entries.append((merchant_account(merchant_id), owed))
        if fee:
            entries.append((COMMISSION, sign * fee))
        if park_discount:
            entries.append((DISCOUNTS, -sign * park_discount))
        if change:
            entries += [(bonus_account(card_no), change), (BONUS_PURSES, -change)]
        return entries
    if kind in BONUS_KINDS:
        bonus = rec.discount_cents
        if bonus > amount:
            raise PostingError("bad_amounts", "bonus %d over the amount %d" % (bonus, amount))
        deposit = rec.deposit_cents if kind == R.KIND_ISSUE else 0
        entries = [(CASH, -(amount - bonus + deposit)), (BONUS, -bonus), (DEPOSITS, deposit), (card, amount)]
    elif kind == R.KIND_CASHOUT:
        if rec.balance_after_cents != 0:
            raise PostingError("bad_amounts", "a cash-out leaves the card at 0")
        deposit, fee = rec.deposit_cents, rec.discount_cents
        forfeit = bonus_forfeited(rec, bonus_before_cents)
        entries = ([(DEPOSITS, -deposit), (CASH, deposit)] + refund_payout(card_no, amount - forfeit, fee)
                   + bonus_forfeit(card_no, forfeit))
    elif kind == R.KIND_PAYOUT:
        entries = refund_payout(card_no, amount, rec.discount_cents)
    elif kind == R.KIND_TRANSFER_OUT:
        entries = [(card, -amount), (TRANSFERS, amount)]
    elif kind == R.KIND_TRANSFER_IN:
        entries = [(TRANSFERS, -amount), (card, amount)]
    elif kind == R.KIND_CREDIT:
        # Which credits it delivers, and whether they were delivered before, is ingest's rule (SPEC.md §8.4).
        entries = [(PENDING_CREDITS, -amount), (card, amount)]
    else:  # KIND_LOCK, KIND_ATTEMPT, the passages (SPEC.md §4.9), sale lines (§4.11), shifts (§4.14) move no value
        return []
    change = bonus_change(rec, bonus_before_cents, sale_bonus_cents)
    entries += [(bonus_account(card_no), change), (BONUS_PURSES, -change)]
    return _merged(entries)


_CENTS = itemgetter(1)      # an entry's amount


# Front-desk postings (parkcard.domain.purses, refund_rules, replacement, shifts): each returns entries that
# sum to zero, zero entries left out, in the same sign convention as postings().

def by_account(entries):
    """{account: cents} of entries, an account named twice added up (in the order first named)."""
    amounts = {}
    for account, cents in entries:
        amounts[account] = amounts.get(account, 0) + cents
    return amounts


def _merged(entries):
    """entries with one entry per account (amounts added, zeros left out); PostingError unless they sum to 0."""
    return _balanced(list(by_account(entries).items()))


def _balanced(entries):
    """entries without zero amounts; PostingError when they do not sum to zero."""
    if sum(map(_CENTS, entries)):      # the zeros left out add nothing
        raise PostingError("unbalanced", "entries do not sum to zero")
    return [e for e in entries if e[1]]


def _non_negative(**amounts):
    """PostingError unless every amount is a whole, non-negative number of cents."""
    for name, value in amounts.items():
        whole(value, name, lambda detail: PostingError("bad_amounts", detail))


def refund_payout(card_no, amount_cents, fee_cents):
    """A desk refund: amount off the card, the fee kept by the park, the rest paid out in cash."""
    _non_negative(amount_cents=amount_cents, fee_cents=fee_cents)
    if fee_cents > amount_cents:
        raise PostingError("bad_amounts", "fee %d over the amount %d" % (fee_cents, amount_cents))
    return _balanced([(card_account(card_no), -amount_cents), (REFUND_FEES, fee_cents),
                      (CASH, amount_cents - fee_cents)])


def bonus_forfeit(card_no, bonus_cents):
    """A returned card's unspent bonus goes back to the park (undoes that much of the bonus expense)."""
    _non_negative(bonus_cents=bonus_cents)
    return _balanced([(card_account(card_no), -bonus_cents), (BONUS, bonus_cents)])


def replacement_move(old_card_no, new_card_no, balance_cents, hold_cents):
    """Replacement: the old card's balance leaves it, hold_cents into its hold, the rest onto the new card."""
    _non_negative(balance_cents=balance_cents, hold_cents=hold_cents)
    if hold_cents > balance_cents:
        raise PostingError("bad_amounts", "hold %d over the balance %d" % (hold_cents, balance_cents))
    return _balanced([(card_account(old_card_no), -balance_cents), (hold_account(old_card_no), hold_cents),
                      (card_account(new_card_no), balance_cents - hold_cents)])


def replacement_out(old_card_no, balance_cents, moved_cents):
    """Replacement, the lost card's half: its balance leaves it, moved_cents to park:transfers (the new card's
    transfer-in record takes them from there), the rest into its hold. With the old card holding less than was
    written onto the new one (a late debit arrived while the new card was being written), the difference is the
    park's loss and the hold is 0. With the transfer-in this is replacement_move."""
    _non_negative(balance_cents=balance_cents, moved_cents=moved_cents)
    hold = max(0, balance_cents - moved_cents)
    loss = max(0, moved_cents - balance_cents)
    return _balanced([(card_account(old_card_no), -balance_cents), (hold_account(old_card_no), hold),
                      (LOSSES, -loss), (TRANSFERS, moved_cents)])


def bonus_moved(old_bonus_cents, moved_cents):
    """The part of a lost card's bonus purse its replacement takes with the balance moved: all of it, up to what
    moved (what the hold keeps is cash first, as late debits spend it; SPEC.md §4.13)."""
    return max(0, min(old_bonus_cents, moved_cents))


def replacement_bonus(old_card_no, new_card_no, bonus_cents):
    """Replacement: bonus_cents of the lost card's bonus purse go to its replacement's, so they stay bonus."""
    _non_negative(bonus_cents=bonus_cents)
    return _balanced([(bonus_account(old_card_no), -bonus_cents), (bonus_account(new_card_no), bonus_cents)])


def late_debit_cover(old_card_no, covered_cents, loss_cents):
    """A late debit of a replaced card (already posted against it) made good from its hold, the rest a loss."""
    _non_negative(covered_cents=covered_cents, loss_cents=loss_cents)
    return _balanced([(hold_account(old_card_no), -covered_cents), (LOSSES, -loss_cents),
                      (card_account(old_card_no), covered_cents + loss_cents)])


def late_credit_follow(old_card_no, held_cents, loss_back_cents):
    """A late credit of a replaced card (already posted onto it) taken off it again: loss_back_cents make good the
    park's losses, held_cents go into its hold, which its replacement receives (SPEC.md §4.13)."""
    _non_negative(held_cents=held_cents, loss_back_cents=loss_back_cents)
    return _balanced([(hold_account(old_card_no), held_cents), (LOSSES, loss_back_cents),
                      (card_account(old_card_no), -(held_cents + loss_back_cents))])


def late_settlement(old_card_no, covered_cents, loss_cents):
    """The entries of a late record's settlement (replacement_covers): a debit's cover, or a credit's follow when
    both parts are negative (replacement.settle_late_credit)."""
    if covered_cents < 0 or loss_cents < 0:
        return late_credit_follow(old_card_no, -covered_cents, -loss_cents)
    return late_debit_cover(old_card_no, covered_cents, loss_cents)


def hold_release(old_card_no, new_card_no, released_cents):
    """What is left of a replaced card's hold, after the offline window, onto its replacement."""
    _non_negative(released_cents=released_cents)
    return _balanced([(hold_account(old_card_no), -released_cents), (card_account(new_card_no), released_cents)])


def purse_changed(card_no, change_cents):
    """A card's bonus purse moved by change_cents against park:bonus_purses (the pair moves no value, SPEC.md §4.12)."""
    return _balanced([(bonus_account(card_no), change_cents), (BONUS_PURSES, -change_cents)])


def purse_closed(card_no, bonus_cents):
    """A replaced card's bonus purse closed as its hold goes out in a pending credit (SPEC.md §4.13, §8.1): the
    credit carries what of it the new card receives as bonus, booked to its purse at the delivery."""
    _non_negative(bonus_cents=bonus_cents)
    return _balanced([(bonus_account(card_no), -bonus_cents), (BONUS_PURSES, bonus_cents)])


def credit_source_ok(source):
    """True for an account a pending credit may be funded from (CREDIT_SOURCES or a replaced card's hold)."""
    return source in CREDIT_SOURCES or (source.startswith(HOLD_PREFIX) and source[len(HOLD_PREFIX):].isdigit())


def credit_grant(source, amount_cents):
    """A pending credit granted: its value leaves the source into park:pending_credits until a tap delivers it."""
    _non_negative(amount_cents=amount_cents)
    if not credit_source_ok(source):
        raise PostingError("bad_fields", "%r cannot fund a credit" % source)
    return _balanced([(source, -amount_cents), (PENDING_CREDITS, amount_cents)])


def credit_cancel(source, amount_cents):
    """A pending credit cancelled before any terminal had it: its value goes back to the source."""
    return [(account, -cents) for account, cents in credit_grant(source, amount_cents)]


def credit_postings(card_no, fresh_cents, again_cents):
    """A credit record's entries when some of its credits reached the card before (a restored card, SPEC.md
    §8.4): the fresh ones from park:pending_credits, the ones delivered again are the park's loss."""
    _non_negative(fresh_cents=fresh_cents, again_cents=again_cents)
    return _balanced([(PENDING_CREDITS, -fresh_cents), (LOSSES, -again_cents),
                      (card_account(card_no), fresh_cents + again_cents)])


def ticket_sale(price_cents):
    """A ticket written onto a card at the desk: its price, paid in cash there, is the park's ticket revenue."""
    _non_negative(price_cents=price_cents)
    return _balanced([(CASH, -price_cents), (TICKET_REVENUE, price_cents)])


def paid_by(method, net_cents):
    """A desk operation paid by `method`, not cash: its net take (received - paid out) leaves the cash account."""
    if not isinstance(net_cents, int) or isinstance(net_cents, bool):
        raise PostingError("bad_amount", "a payment's net take is whole cents, not %r" % (net_cents,))
    return _balanced([(CASH, net_cents), (paid_by_account(method), -net_cents)])


def cash_over_short(expected_cents, counted_cents):
    """A shift's close: the drawer's difference (counted - expected) from the desk's cash to over/short."""
    _non_negative(expected_cents=expected_cents, counted_cents=counted_cents)
    difference = counted_cents - expected_cents
    return _balanced([(CASH, -difference), (OVER_SHORT, difference)])
