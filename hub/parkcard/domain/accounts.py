"""Ledger account names (one rule for every account: a positive amount is what the park owes the holder).

Card and merchant accounts are per holder (`card:<no>`, `merchant:<id>`); the
park's own accounts are fixed names. The store keeps them as text: a prefix
names the kind of account (the ledger check splits on it).
"""

CARD_PREFIX = "card:"               # customer funds on a card; their sum is the card's balance
MERCHANT_PREFIX = "merchant:"       # what the park owes a merchant
COMMISSION = "park:commission"      # commission earned
BONUS = "park:bonus"                # bonus given away on top-ups (an expense: negative)
DEPOSITS = "park:deposits"          # card deposits held
CASH = "desk:cash"                  # cash taken in at the desk (goes down by the cash received)
TRANSFERS = "park:transfers"        # clearing account of a lost card's transfer: nets to zero
DISCOUNTS = "park:discounts"        # booth discounts the park bears: it pays the merchant the list price (an expense)

# Front desk (parkcard.domain.purses, refund_rules, replacement, shifts).
BONUS_PREFIX = "bonus:"             # the bonus part of a card's balance (its bonus purse; never refunded)
# The counterpart of every card's bonus purse: -(sum of bonus:<no>). A bonus purse says which part of card:<no>
# is bonus; card:<no> stays the card's whole balance, so the pair moves no value (SPEC.md §4.12).
BONUS_PURSES = "park:bonus_purses"
HOLD_PREFIX = "hold:"               # a replaced card's balance held for its late offline debits
LOSSES = "park:losses"              # late debits of a replaced card beyond its hold (an expense: negative)
REFUND_FEES = "park:refund_fees"    # fees kept on refunds and returns
OVER_SHORT = "desk:over_short"      # cash counted over (+) or short (-) of expected at a shift's close
PAID_BY_PREFIX = "desk:paid_by:"    # taken at the desk by a payment method other than cash (card, mobile)

# Pending credits (parkcard.domain.ledger credit_grant, SPEC.md §8).
PENDING_CREDITS = "park:pending_credits"    # granted to a card not present, not yet on it (a liability)
API_PAYMENTS = "park:api_payments"          # paid to the park through the API (a third party's top-up): negative

# Tickets (parkcard.domain.ledger ticket_sale, SPEC.md §3.8).
TICKET_REVENUE = "park:ticket_revenue"      # tickets sold at the desk, paid in cash there (earned: positive)


def card_account(card_no):
    """Ledger account of a card's funds."""
    return CARD_PREFIX + str(card_no)


def merchant_account(merchant_id):
    """Ledger account of what the park owes a merchant."""
    return MERCHANT_PREFIX + str(merchant_id)


def bonus_account(card_no):
    """Ledger account of the bonus purse of a card."""
    return BONUS_PREFIX + str(card_no)


def hold_account(card_no):
    """Ledger account of the replacement hold of the replaced card card_no."""
    return HOLD_PREFIX + str(card_no)


def paid_by_account(method):
    """Ledger account of what the desk took by a payment method other than cash."""
    return PAID_BY_PREFIX + method
