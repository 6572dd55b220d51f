"""The gate's rules: may this ticket pass here now, and what its state becomes (protocol/SPEC.md §3.11).

Pure, like terminal/purse.py: it sees the ticket as protocol/ticket.py decodes
it, the gate's config and the clock, never the reader. Only a gate imports it.
"""

from protocol import ticket as t

EXIT_AGAIN_S = 300      # a charged exit that landed this recently opens again: its gate may never have opened
CHARGE_UNKNOWN = -1     # a torn timed exit whose entry state is gone from the card: the desk prices it


def _today_state(slot, gate, now):
    """(inside, entries today) as of the park day of `now`: the daily reset clears both (pretix's exit_all_at)."""
    if gate.park_day(slot.last_time_s) != gate.park_day(now):
        return False, 0
    return slot.inside, slot.day_entries


def _common(info, gate, listed):
    if listed:
        return t.REASON_BLACKLISTED
    if info is None:
        return t.REASON_NO_TICKET
    if gate.product(info.product) is None or (gate.area and info.area and info.area != gate.area):
        return t.REASON_NOT_HERE
    return 0


def entry(info, slot, gate, now, listed):
    """(reason, None) for a refused entry, else (0, the ticket state after it)."""
    reason = _common(info, gate, listed)
    if reason:
        return reason, None
    day = gate.park_day(now)
    if info.to_day and day > info.to_day:
        return t.REASON_EXPIRED, None
    if day < info.from_day:
        return t.REASON_NOT_YET_VALID, None
    inside, entered = _today_state(slot, gate, now)
    if inside and not (gate.reentry == t.REENTRY_AFTER_MINUTES and now - slot.last_time_s >= gate.reentry_min * 60):
        return t.REASON_ALREADY_INSIDE, None
    if gate.reentry == t.REENTRY_NEVER and entered:
        return t.REASON_NO_REENTRY, None
    if slot.entries_left == 0:
        return t.REASON_NO_ENTRIES, None
    if info.day_limit and entered >= info.day_limit:
        return t.REASON_DAY_LIMIT, None
    left = slot.entries_left if slot.entries_left == t.ENTRIES_UNLIMITED else slot.entries_left - 1
    return 0, slot.next(left, True, min(entered + 1, 0xFF), now, gate.area)


def exit_(info, slot, gate, now, listed, wallet_counter=0):
    """(reason, None, 0) for a refused exit, else (0, the ticket state after it, the timed charge in cents).

    An expired ticket still leaves; a timed one pays for its time inside (SPEC.md §3.10), which the caller
    debits from the wallet or refuses with REASON_PAY_AT_DESK. A charged exit's state names the wallet
    counter its debit writes (wallet_counter + 1, SPEC.md §3.13)."""
    reason = _common(info, gate, listed)
    if reason:
        return reason, None, 0
    inside, entered = _today_state(slot, gate, now)
    if not inside:
        return t.REASON_NOT_INSIDE, None, 0
    charge = 0
    if info.type == t.TYPE_TIMED:
        p = gate.product(info.product)
        charge = t.timed_charge_cents(now - slot.last_time_s, p.included_min, p.interval_min, p.interval_price_cents)
    return 0, slot.next(slot.entries_left, False, entered, now, gate.area,
                        wallet_counter + 1 if charge else None), charge


def torn_exit(info, slots, slot, gate, wallet, now):
    """An exit on the card for a gate to finish (SPEC.md §3.13, §3.14): the charge a charged exit still owes (its
    debit never landed, whatever the park day), 0 when the exit's gate may never have opened (a charge that
    landed, or a plain exit at this area, under EXIT_AGAIN_S ago: the gate opens again), CHARGE_UNKNOWN when it
    owes a charge no slot left on the card prices; None when there is nothing to finish. wallet is the wallet
    sector as read (a CardState: both slots and the one in force)."""
    if info is None or slot is None or slot.inside or _common(info, gate, False):
        return None
    w = wallet.slot
    landed = slot.charge_landed(w.counter)
    again = gate.park_day(slot.last_time_s) == gate.park_day(now) and 0 <= now - slot.last_time_s < EXIT_AGAIN_S
    if landed is None:      # a plain exit: its turnstile may not have turned (§3.14)
        return 0 if again and slot.day_entries and slot.area == gate.area else None
    entered = t.entry_before(slots, slot)
    charge = CHARGE_UNKNOWN
    if entered is not None:
        p = gate.product(info.product)
        charge = t.timed_charge_cents(slot.last_time_s - entered.last_time_s, p.included_min, p.interval_min,
                                      p.interval_price_cents)
    if landed and charge > 0 and w.counter & t.PAY_COUNTER_MASK == slot.pay_counter:
        # The write of the charge's counter took something else: another terminal wrote it first (a booth's
        # sale, a desk's top-up), so the charge is still owed.
        for other in wallet.slots:
            if other is not None and (other.counter + 1) & 0xFFFF == w.counter \
                    and other.balance_cents - w.balance_cents != charge:
                landed = False
    if landed:
        return 0 if again else None
    return charge
