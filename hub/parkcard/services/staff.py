"""Staff members of a merchant and their staff cards, issued through the desk's real path (SPEC.md §4.14).

A staff card is a stock card issued at a desk with no value (balance 0, no deposit, card info flag 2, no
payment permission): the desk writes it, reads it back, and the hub posts its issue record and ties the card
to its staff member in one transaction (parkcard.services.desk.operations). Tapped on a booth of the
member's merchant it opens and closes the member's shifts.
"""

from protocol import card as C
from protocol import frames

from parkcard.domain.lifecycle import DeskOpState
from parkcard.services.desk import operations as ops
from parkcard.services.errors import Refusal
from parkcard.services.inputs import checked
from parkcard.services.privileges import MERCHANTS, MERCHANTS_READ, TERMINALS, requires
from parkcard.store import audited
from parkcard.transport import notify

STAFF_PERMS = 0         # a staff card pays nowhere: it holds no value (SPEC.md §4.14)


@requires(MERCHANTS)
async def add(store, actor, name, merchant_id):
    """Add a staff member to merchant merchant_id; return the StaffMember."""
    name = checked(merchant_id=merchant_id, name=name)
    try:
        return await store.add_staff(merchant_id, name, actor.name, audit=lambda member: [(
            actor.name, "staff.add", dict(staff_id=member.id, merchant_id=merchant_id, name=name))])
    except ValueError as exc:
        raise Refusal("merchant_not_found", "%(problem)s: add the merchant first (`parkcard merchant add`)",
                      problem=exc) from None


@requires(MERCHANTS_READ)
async def listing(store, actor, merchant_id=None):
    """Every staff member ([StaffMember]), or one merchant's, by id."""
    return await store.staff(merchant_id)


async def member(store, staff_id):
    """The StaffMember staff_id; Refusal naming what to do when there is none."""
    found = await store.staff_member(staff_id)
    if found is None:
        raise Refusal("staff_not_found", "there is no staff member %(staff)d (see `parkcard staff list`; add one with "
                                         "`parkcard staff add`)", staff=staff_id)
    return found


@requires(TERMINALS)
async def require_shift(store, actor, terminal_id, required):
    """Make booth terminal_id refuse (or take again) sales while no shift is open; return (before, after)."""
    checked(terminal_id=terminal_id)
    booths = [t for t in await store.terminals(terminal_id) if t.role == frames.ROLE_POS]
    if not booths:
        raise Refusal("not_a_booth", "terminal %(terminal)d is no booth (pos) terminal of this park: shifts are a "
                                     "booth's (see `parkcard terminals`)", terminal=terminal_id)
    before, after = await store.set_shift_required(terminal_id, required, audit=audited(
        actor.name, "terminal.shift_required", when=lambda ba: ba[0] != ba[1], terminal_id=terminal_id,
        required=bool(required)))
    if before != after:
        await actor.told(notify.TERMINALS)
    return before, after


@requires(MERCHANTS)
async def issue_card(desk, actor, op_id, desk_terminal_id, staff_id, timeout_s=None):
    """Issue the stock card on desk desk_terminal_id as staff member staff_id's staff card; return DeskDone."""
    op_id = ops.check_op_id(op_id)
    staff = await member(desk.storage, staff_id)
    request = ops.request_of("staff_card", desk_terminal_id, staff_id=staff_id)
    done = await ops.earlier(desk, actor, op_id, request)
    if done is not None:
        return done
    if staff.card_no is not None:
        raise Refusal("staff_has_card", "staff member %(staff)d (%(name)s) already holds staff card %(card)d: a lost "
                                        "one is blacklisted (`parkcard blacklist add`) before another is issued",
                      staff=staff_id, name=staff.name, card=staff.card_no)
    uid, keys, _report = await ops.stock_on_desk(desk, op_id, desk_terminal_id, timeout_s)
    kept = await ops.issue_kept(desk, actor, op_id, request, desk_terminal_id, uid, keys, 0, C.TIER_STANDARD, 0, 0,
                                STAFF_PERMS, kind="staff_card", flags=C.FLAG_STAFF)
    # Posted with its audit entry (card.staff_card) and the staff member's card in one transaction.
    done = await ops.settle(desk, actor, kept, write=kept.state == DeskOpState.PENDING)
    await actor.told(notify.STAFF)      # the merchant's booths take the card at once (SPEC.md §5.11)
    return done
