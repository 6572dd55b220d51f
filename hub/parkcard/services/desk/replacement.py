"""Replacing a lost card (补卡) at the desk, and releasing its hold when no terminal can still hold its debits.

The decision is parkcard.domain.replacement's (SPEC.md §4.13): the stock card on the desk is
issued for the lost card's member, tier and deposit with the lost card's balance minus a hold (by the park's
offline rules, parkcard.services.park.replacement_settings);
the hold pays the lost card's late offline debits as ingest applies them
(parkcard.store.replacements.settle_late_in); what is left is released onto the new card as a pending
credit (SPEC.md §8) once every terminal that lagged at the report has caught up, or at the latest
`release_after_s` after the report. The write goes the desk's one path (parkcard.services.desk.
operations: kept before the write, posted when the card read back holds it); the lost card's half is
booked in the transaction that posts the new card's transfer-in record.
"""

import json

from parkcard.domain import accounts
from parkcard.domain import replacement as rules
from parkcard.domain.lifecycle import DeskOpState
from parkcard.services.desk.operations import (AFTER_POSTED, _earlier, _settle, check_op_id, new_card_kept,
                                               request_of, stock_on_desk)
from parkcard.services import park
from parkcard.services.inputs import checked
from parkcard.services.privileges import CARD_REPLACE, ServiceError, requires
from parkcard.store import audited
from parkcard.store import members as member_store
from parkcard.store import replacements as replacement_store
from parkcard.store.desk_ops import desk_settings_in
from parkcard.transport import notify

@requires(CARD_REPLACE)
async def replace(desk, actor, op_id, desk_terminal_id, lost_card_no, timeout_s=None):
    """Issue the stock card on the desk as the replacement of lost_card_no (reported lost); return DeskDone.

    The new card holds the lost card's balance minus its hold (SPEC.md §4.13), for the same member, tier
    and deposit. A retry with the same op_id is the same replacement, never a second one; another operation
    replacing the same card is refused in the transaction that would keep it, before its card is written.
    """
    op_id = check_op_id(op_id)
    checked(card_no=lost_card_no)
    request = request_of("replace", desk_terminal_id, lost_card_no=lost_card_no)
    done = await _earlier(desk, actor, op_id, request)
    if done is not None:
        return done
    loss = await _lost(desk.storage, lost_card_no)
    old = await desk.storage.card(lost_card_no)
    uid, keys, _report = await stock_on_desk(desk, op_id, desk_terminal_id, timeout_s)
    balance = max(0, await desk.storage.account_balance(accounts.card_account(lost_card_no)))
    hold = await hold_now(desk.storage, await park.replacement_settings(desk.storage), loss, balance)
    kept = await new_card_kept(desk, actor, "replace", op_id, request, desk_terminal_id, uid, keys, balance - hold, 0,
                               old.tier, old.deposit_cents, 0, replaces_card_no=lost_card_no)
    done = await _settle(desk, actor, kept, write=kept.state == DeskOpState.PENDING)
    await actor.told(notify.CREDITS)        # the lost card's pending credits moved to the new card
    return done


async def pending_replacement(storage, lost_card_no):
    """The desk operation replacing lost_card_no that is kept as pending (its write may be on a card), or None."""
    for op in await storage.desk_operations(DeskOpState.PENDING):
        if op.kind == "replace" and json.loads(op.request).get("lost_card_no") == lost_card_no:
            return op
    return None


async def _lost(storage, card_no):
    """The CardLoss of a card that may be replaced now; ServiceError saying what to do otherwise."""
    loss = await storage.card_loss(card_no)
    if loss is not None and loss.state == member_store.LOST:
        return loss
    if loss is not None and loss.state == member_store.REPLACED:
        replaced = await storage.replacement(old_card_no=card_no)
        raise ServiceError("card %(card)d was replaced already, by card %(new_card)d: nothing was written",
                           card=card_no, new_card=replaced.new_card_no)
    if await storage.card(card_no) is None:
        raise ServiceError("card %(card)d was never issued here: check the number", card=card_no)
    if loss is not None:
        raise ServiceError("card %(card)d is not reported lost (it was found): report it first (`parkcard card lost "
                           "%(card)d`), which blacklists it", card=card_no)
    raise ServiceError("card %(card)d is not reported lost: report it first (`parkcard card lost %(card)d`), which "
                       "blacklists it", card=card_no)


async def hold_now(storage, settings, loss, balance_cents):
    """The hold of a lost card's balance, by the terminals that may still hold its unsent debits."""
    lagging = await storage.lagging_terminals(loss.blacklist_version, loss.reported_at)
    reported_s = int(loss.reported_at)
    since = min([int(seen) for _tid, seen, _online in lagging] + [reported_s]) if lagging else None
    return rules.hold_cents(settings, balance_cents, reported_s, since)


def _replaced(desk, tx, op, rec):
    """The lost card's half, booked with the new card's transfer-in record (operations.AFTER_POSTED)."""
    old_card_no = json.loads(op.request)["lost_card_no"]
    tx.set_card_info(op.card_no, op.uid, op.tier, tx.card_deposit(old_card_no))
    # The park's release delay as it stands where the replacement is booked (parkcard.services.park).
    settings = park.replacement_settings_of(desk_settings_in(tx))
    replacement_store.replaced_in(tx, op.op_id, old_card_no, op.card_no, op.amount_cents, settings.release_after_s)
    # Before the commit, in the writer: a batch after this one settles the old card's late debits.
    desk.ingest.replaced_cards.add(old_card_no)


AFTER_POSTED.setdefault("replace", []).append(_replaced)


async def release_due_holds(storage, actor, now_s):
    """Release every hold that is due (parkcard.domain.replacement.release_due), each once.

    Returns ([(rows.Replacement, PendingCredit or None)] released, {terminal_id} online and still lagging behind
    a hold or a loss not yet replaced: asked for their status, which tells when they catch up, so that the hold
    of a replacement made later is as small as it can be).
    """
    released, lagging_ids = [], set()
    for loss in await storage.lost_cards():
        lagging = await storage.lagging_terminals(loss.blacklist_version, loss.reported_at)
        lagging_ids.update(tid for tid, _seen, online in lagging if online)
    for row in await storage.replacements(open_only=True):
        loss = await storage.card_loss(row.old_card_no)
        lagging = await storage.lagging_terminals(loss.blacklist_version, loss.reported_at) if loss else []
        done = await storage.release_hold(row.old_card_no, now_s, len(lagging), actor.name, audit=audited(
            actor.name, "card.hold_released", when=lambda r: r is not None, old_card_no=row.old_card_no,
            new_card_no=row.new_card_no, extra=lambda r: {"released_cents": r[0].released_cents,
                                                          "lagging_terminals": len(lagging)}))
        if done is None:
            lagging_ids.update(tid for tid, _seen, online in lagging if online)
        else:
            released.append(done)
    if any(credit is not None for _row, credit in released):
        await actor.told(notify.CREDITS)
    return released, lagging_ids
