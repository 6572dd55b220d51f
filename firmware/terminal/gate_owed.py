"""A gate's money and rare paths: a timed exit's charge, a charged exit torn before its debit, an exit whose
turnstile may not have turned, a blacklisted card to lock (SPEC.md §3.6, §3.10, §3.13, §3.14).

terminal/roles/gate.py loads this module for the one tap that needs it and drops it after (compat.borrow): a
gate of day passes never holds this code, and a gate of timed tickets holds it only during such a tap.
"""

from protocol import card, record, ticket as t
from protocol.record import passage_detail
from terminal import gate_rules
from terminal import journal as jr
from terminal import purse
from terminal import wallet as w
from terminal.rc522 import RC522Error
from terminal.roles.gate import LEAVE, Passage


def _cannot_pay(gate, cr, charge, listed, now):
    """True when the wallet refuses a timed exit's charge (SPEC.md §3.6 reasons 5-13)."""
    wa = gate.wallet
    return bool(purse.refusal(cr.info, cr.slot, charge, wa.config, listed, now, wa.last_hub_contact_s,
                              wa.blacklist_updated_s))


def _pay_at_desk(gate, cr, tk, charge, direction, now):
    """Refuse a charge the wallet cannot cover: the visitor pays at the desk (nothing written to the card)."""
    gate._refusal(cr, tk, t.REASON_PAY_AT_DESK, now)
    gate.wallet._finish()
    return Passage(False, t.REASON_PAY_AT_DESK, cr.info.card_no, direction, max(charge, 0), cr.slot.balance_cents,
                   tk.slot.entries_left)


def charged_exit(gate, cr, tk, new, charge, listed, now):
    """A timed exit: the exit first, naming its debit's wallet counter, then the debit (SPEC.md §3.13 order)."""
    if _cannot_pay(gate, cr, charge, listed, now):
        return _pay_at_desk(gate, cr, tk, charge, LEAVE, now)
    wa = gate.wallet
    balance = cr.slot.balance_cents
    seq, failed = gate._write_ticket(cr, tk, new, record.KIND_TIMED_EXIT, charge, balance - charge, now)
    if failed is not None:
        return failed
    # The card is torn from here on only as an exit owing its charge: any gate collects it (§3.13).
    done = _collect(gate, cr, tk, charge, LEAVE, now, seq)
    wa._mark(seq, jr.COMMITTED)     # after the card's session: the flash write stays off its critical path
    return done


def finish(gate, cr, tk, charge, listed, direction, now):
    """An exit found on the card for this gate to finish (gate_rules.torn_exit's charge): collect what it owes,
    record it finished, open or go on to the entry (SPEC.md §3.13, §3.14)."""
    if charge < 0 or (charge and _cannot_pay(gate, cr, charge, listed, now)):
        return _pay_at_desk(gate, cr, tk, charge, direction, now)
    wa = gate.wallet
    slot = tk.slot
    if not charge:
        wa._finish()
    else:
        done = _collect(gate, cr, tk, charge, direction, now, 0)
        if not done.ok:
            return done
    balance = cr.slot.balance_cents - charge
    seq = gate._journal(cr, record.KIND_EXIT_FINISHED, slot.counter, slot.mac, charge, balance, tk.info.product,
                        passage_detail(0, gate.config.area, slot.entries_left), now)
    wa._mark(seq, jr.COMMITTED)     # it states what the card shows: the exit and its charge are on it
    if direction == LEAVE:
        return gate._opened(cr, slot, seq, charge, balance, LEAVE)
    # An entry gate goes on to the entry itself, from the card now outside and paid.
    if not gate._reselect(cr.uid, t.INFO_BLOCK, tk.keys.key_a(t.TICKET_SECTOR)):
        return Passage(False, w.READ_FAILED, cr.info.card_no, direction, charge, balance)
    reason, new = gate_rules.entry(tk.info, slot, gate.config, now, False)
    if reason:
        gate._refusal(cr, tk, reason, now)
        wa._finish()
        return Passage(False, reason, cr.info.card_no, direction, charge, balance, slot.entries_left)
    done = gate._pass(cr, tk, new, record.KIND_ENTRY, 0, balance, now, direction)
    done.charge_cents = charge      # shown with the entry; the entry record itself moves nothing (§4.9)
    return done


def _collect(gate, cr, tk, charge, direction, now, exit_seq):
    """Debit a charged exit's charge at the wallet counter its state names; open when exit_seq is given."""
    wa = gate.wallet
    try:    # back to the wallet sector: the ticket read authenticated sector 3 (SPEC.md §3.1)
        wa.card.reader.auth(card.INFO_BLOCK, cr.keys.key_a(), cr.uid)
    except RC522Error:
        wa._finish()
        return Passage(False, w.UNCERTAIN if exit_seq else w.READ_FAILED, cr.info.card_no, direction, charge,
                       cr.slot.balance_cents)
    paid = wa._write(cr, purse.debited(cr.slot, charge, now, wa.terminal_id), record.KIND_DEBIT, charge,
                     tk.info.product, 0, now)
    if not paid.ok:
        return Passage(False, paid.reason, cr.info.card_no, direction, charge, paid.balance_cents)
    if exit_seq:
        return gate._opened(cr, tk.slot, exit_seq, charge, paid.balance_cents, direction)
    return Passage(True, None, cr.info.card_no, direction, charge, paid.balance_cents)


def lock(gate, cr, now):
    """Lock a blacklisted card as a booth does (SPEC.md §3.6): back to its wallet sector, a lock record."""
    wa = gate.wallet
    wa._finish()    # the ticket read left sector 3 open, or the card halted on a sector 3 not keyed for us
    if gate._reselect(cr.uid, card.INFO_BLOCK, cr.keys.key_a()):
        wa._lock(cr, now)
    else:
        wa._finish()
