"""Loss and replacement (挂失/补卡) with offline terminals: move the balance now minus a hold. Pure, integer cents.

The decision. When a lost card is replaced, the hub's balance of it (the
balance at report time) is all it knows; terminals that were offline may
still hold debits of that card, and their records are facts the hub must
accept when they arrive. So the replacement

1. moves the balance now, minus a hold, onto the new card;
2. settles each late debit of the old card against the hold; a late debit
   beyond what is left of the hold is still a fact: the merchant is paid,
   the excess is booked to the park's loss account (`park:losses`) and
   raises an alarm (a card spending beyond its daily cap offline means a
   clone or a terminal without its limits, which someone must look at);
   A late credit of the old card (a booth's refund or reversal of its sale,
   a credit an offline terminal delivered) is the holder's: it first makes
   good what late debits cost the park, the rest goes into the hold, so it
   reaches the new card with the release (at once, as a pending credit, when
   the hold was released already). It is not granted at once before the
   release because the old card carries it: a later offline debit may spend it.
3. releases what is left of the hold onto the new card once no terminal can
   still hold an unsent debit: when every terminal that had not synced at
   report time has caught up, or at the latest `release_after_s` after the
   report (the longest time a terminal may stay offline). A record arriving
   after the release is settled as in 2, all of it a loss, with an alarm.
   What moved took the lost card's bonus first, so the hold keeps the rest of
   it back, spent cash first by late debits (parkcard.domain.purses.held_bonus);
   the release (and every later grant from the hold) carries what is left of
   that bonus as the credit's bonus part, so it lands as bonus on the new card
   (parkcard.store.credits.grant, SPEC.md §4.13).
4. moves the lost card's pending credits to the new card (at the replacement
   those no terminal has, at the release the rest). A terminal still
   delivering one onto the lost card after it moved delivers value the new
   card holds already: its record is applied and moves none; what the lost
   card then spends is a late debit as in 2.

The hold. A terminal that last reached the hub at time c serves offline until
c + offline_window_s and no longer (the terminal's max_offline_s), and every
terminal enforces the daily cap carried on the card itself: however many
terminals the finder visits, the card spends at most daily_cap_cents per day
in total. So the card's unsent spending lies in [oldest last contact of a
terminal not caught up, report + offline window] and is at most the daily
cap times the calendar days (UTC, protocol.card.day_of) that interval
touches, and never more than the balance. A cap per terminal times the
number of terminals would be larger without being safer, because the cap
that terminals enforce is the card's, not their own. With no daily cap
configured (0) the whole balance is held. With every terminal caught up at
report time the hold is 0: nothing can arrive late.

Money is never created or lost (tests/test_domain_desk_replacement.py):
moved + released + hold left + covered == balance at report, and every
late debit is covered + loss. In the ledger (parkcard.domain.ledger
replacement_move, late_debit_cover, hold_release) the old card's account is
back at 0 after every settlement and old card + new card + hold + merchants'
late takings + park loss (negative) == balance at report.
"""

import dataclasses

from protocol.card import day_of

from parkcard.domain.cents import whole
from parkcard.domain.explained import Explained


class ReplacementError(Explained):
    """A replacement step that cannot be done as asked; the message says what to do."""


def _whole(value, what, minimum=0):
    """value as an int >= minimum, or ReplacementError naming `what`."""
    return whole(value, what, ReplacementError, minimum)


@dataclasses.dataclass(frozen=True)
class ReplacementSettings:
    """Park settings: the terminals' offline window, the card's daily cap, when a hold is released at the latest."""

    offline_window_s: int
    daily_cap_cents: int
    release_after_s: int = None     # None: the offline window

    def __post_init__(self):
        """Validate; release_after_s is never shorter than the offline window."""
        _whole(self.offline_window_s, "the offline window (seconds)", 1)
        _whole(self.daily_cap_cents, "the daily cap (cents, 0 = none)")
        if self.release_after_s is None:
            object.__setattr__(self, "release_after_s", self.offline_window_s)
        _whole(self.release_after_s, "the release delay (seconds)", 1)
        if self.release_after_s < self.offline_window_s:
            raise ReplacementError("a hold released after %(release_s)d s could miss debits of terminals offline "
                                   "for up to %(window_s)d s: release after at least the offline window",
                                   release_s=self.release_after_s, window_s=self.offline_window_s)


def hold_cents(settings, balance_cents, reported_s, lagging_since_s):
    """The hold: the daily cap times the days unsent spending may lie in, at most the balance.

    lagging_since_s: the oldest last contact of a terminal that had not synced at report time, None if none.
    """
    _whole(balance_cents, "the balance (cents)")
    if lagging_since_s is None:
        return 0
    if lagging_since_s > reported_s:
        raise ReplacementError("a terminal's last contact (%(contact_s)d) after the report (%(reported_s)d) is not "
                               "lagging", contact_s=lagging_since_s, reported_s=reported_s)
    if settings.daily_cap_cents == 0:
        return balance_cents
    days = day_of(reported_s + settings.offline_window_s) - day_of(lagging_since_s) + 1
    return min(balance_cents, settings.daily_cap_cents * days)


@dataclasses.dataclass(frozen=True)
class Replacement:
    """A replacement in progress: what moved, the hold, what late debits took from it, what was released."""

    old_card_no: int
    new_card_no: int
    reported_s: int
    balance_cents: int
    hold_cents: int
    release_at_s: int
    covered_cents: int = 0      # late debits paid from the hold, less late credits that came back into it
    loss_cents: int = 0         # late debits beyond the hold: the park's loss (less late credits that made it good)
    released_cents: int = 0     # hold left, moved to the new card
    released: bool = False

    @property
    def moved_cents(self):
        """What the new card received at once."""
        return self.balance_cents - self.hold_cents

    @property
    def hold_left_cents(self):
        """What is still held for late debits."""
        return self.hold_cents - self.covered_cents - self.released_cents


@dataclasses.dataclass(frozen=True)
class LateSettlement:
    """How one late debit of a replaced card was settled; alarm when part of it is a loss."""

    covered_cents: int
    loss_cents: int

    @property
    def alarm(self):
        """True when the debit went beyond the hold (a clone, or a terminal without its limits)."""
        return self.loss_cents > 0


def replace(settings, old_card_no, new_card_no, balance_cents, reported_s, lagging_since_s):
    """Start a replacement: the hold for the old card's late debits, the rest to move now, when to release."""
    if old_card_no == new_card_no:
        raise ReplacementError("card %(card)d cannot replace itself: issue a new card", card=old_card_no)
    _whole(reported_s, "the report time (epoch seconds)")
    hold = hold_cents(settings, balance_cents, reported_s, lagging_since_s)
    return Replacement(old_card_no, new_card_no, reported_s, balance_cents, hold,
                       reported_s + settings.release_after_s, released=hold == 0)


def settle_late_debit(replacement, amount_cents):
    """Settle a late debit of the old card against what is left of the hold; return (replacement, settlement)."""
    _whole(amount_cents, "a late debit (cents)")
    covered = min(amount_cents, replacement.hold_left_cents)
    settled = LateSettlement(covered, amount_cents - covered)
    return dataclasses.replace(replacement, covered_cents=replacement.covered_cents + covered,
                               loss_cents=replacement.loss_cents + settled.loss_cents), settled


def settle_late_credit(replacement, amount_cents):
    """Settle a late credit of the old card (a booth's give-back, a credit delivered offline): it follows the card.

    First back to the park what late debits beyond the hold cost it, the rest into the hold, which the new card
    receives at its release, or at once when the hold was released already. Returns (replacement, LateSettlement
    with both parts negative: what came back into the hold and off the losses, cents to release now)."""
    _whole(amount_cents, "a late credit (cents)")
    loss_back = min(amount_cents, replacement.loss_cents)
    held = amount_cents - loss_back
    now = held if replacement.released else 0
    return dataclasses.replace(replacement, covered_cents=replacement.covered_cents - held,
                               loss_cents=replacement.loss_cents - loss_back,
                               released_cents=replacement.released_cents + now), LateSettlement(-held, -loss_back), now


def release_due(replacement, now_s, lagging_terminals):
    """True when the hold may be released: no terminal still lagging since the report, or its time has come."""
    return not replacement.released and (lagging_terminals == 0 or now_s >= replacement.release_at_s)


def release(replacement, now_s, lagging_terminals):
    """Release what is left of the hold to the new card; return (replacement, released cents)."""
    if replacement.released:
        raise ReplacementError("the hold of card %(card)d was already released", card=replacement.old_card_no)
    if not release_due(replacement, now_s, lagging_terminals):
        raise ReplacementError("%(terminals)d terminal(s) may still hold debits of card %(card)d: the hold is "
                               "released when they sync, at the latest at %(release_at_s)d",
                               terminals=lagging_terminals, card=replacement.old_card_no,
                               release_at_s=replacement.release_at_s)
    left = replacement.hold_left_cents
    return dataclasses.replace(replacement, released_cents=replacement.released_cents + left, released=True), left
