"""The purse rules: may this card pay this amount, and what its purse becomes (protocol/SPEC.md §3.6).

Independent of the card type: the rules see the card's info and purse as
protocol/card.py decodes them, the hub's config and the terminal's clocks,
never the reader.
"""

from protocol import card

# Refusal reasons, in the order the rules are applied (SPEC.md §3.6).
NOT_WALLET = "not_wallet"
RETURNED = "returned"
BLACKLISTED = "blacklisted"
EXPIRED = "expired"
PERMISSION = "permission"
NOT_ALLOWED = "not_allowed"         # the consumption rules do not take this card type or tier (SPEC.md §5.10)
MEMBERS_ONLY = "members_only"       # a member-only item for a card below the member tier
OVER_TX_CAP = "over_tx_cap"
OVER_DAILY_CAP = "over_daily_cap"
INSUFFICIENT = "insufficient"
STALE = "stale"
OFFLINE_LIMIT = "offline_limit"     # offline, and the card's sales the hub has not acknowledged pass the limit


def amount_ok(amount_cents):
    """True for an amount a card can pay at all: 1 cent up to the largest balance."""
    return 0 < amount_cents <= card.BALANCE_MAX_CENTS


def refusal(info, slot, amount_cents, cfg, listed, now, hub_contact_s, blacklist_updated_s, rules=None,
            member_only=False, offline=False):
    """The first rule paying amount_cents breaks, or None when it may be paid.

    info, slot: the card's CardInfo and WalletSlot in force; cfg: the hub's Config;
    listed: the card number is on the blacklist; times in UTC epoch seconds.
    rules: the terminal's consumption rules (terminal.spend.Limits, SPEC.md §3.6 rules 10-13 and 16) or None;
    member_only: the sale holds a member-only item; offline: the terminal has no hub link.
    """
    if info.flags & (card.FLAG_ADMIN | card.FLAG_STAFF):
        return NOT_WALLET       # an admin card carries keys, a staff card opens shifts: neither holds value
    if info.flags & card.FLAG_RETURNED:
        return RETURNED
    if slot.locked or listed:
        return BLACKLISTED
    today = card.day_of(now)
    if info.expired(today):
        return EXPIRED
    if not (info.perms >> cfg.category) & 1:
        return PERMISSION
    if rules is not None:
        # Their caps first: the same reasons as the config's, so the lower of the two decides.
        reason = rules.refusal(info, slot.spent_on(today), amount_cents, member_only)
        if reason:
            return reason
    elif member_only and info.tier < 1:
        return MEMBERS_ONLY
    if cfg.tx_cap_cents and amount_cents > cfg.tx_cap_cents:
        return OVER_TX_CAP
    if cfg.daily_cap_cents and slot.spent_on(today) + amount_cents > cfg.daily_cap_cents:
        return OVER_DAILY_CAP
    if slot.balance_cents < amount_cents:
        return INSUFFICIENT
    # abs(): after a power cut the clock restarts near 2000 until the hub sets it; a clock
    # that far behind the last hub contact cannot tell how long we were offline. A clock a
    # little behind (drift, whole-second hub times) is within the limit and still serves.
    if cfg.max_offline_s and abs(now - hub_contact_s) > cfg.max_offline_s:
        return STALE
    if cfg.blacklist_max_age_s and abs(now - blacklist_updated_s) > cfg.blacklist_max_age_s:
        return STALE
    if offline and rules is not None:
        return rules.offline_refusal(info.card_no, amount_cents)
    return None


def debited(slot, amount_cents, now, terminal_id):
    """The purse after paying amount_cents now at terminal_id: counter + 1, balance and today's spend."""
    today = card.day_of(now)
    return slot.next(slot.balance_cents - amount_cents, today, slot.spent_on(today) + amount_cents, terminal_id)


def locked(slot, terminal_id):
    """The purse of a blacklisted card locked on tap: the same balance and spend, the lock bit set."""
    return slot.next(slot.balance_cents, slot.spend_day, slot.day_spend_cents, terminal_id, locked=True)
