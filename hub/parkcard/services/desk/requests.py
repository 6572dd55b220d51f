"""Desk operations asked for from another process (the CLI): queued in the store, carried out by the running hub.

Only the running hub holds the line to the desk terminals (parkcard.desk), so
`parkcard card top-up` queues the operation under its operation id, tells the
hub, and waits for the result the hub records. The operator's privilege is
checked when it is queued and again when the hub runs it as that operator. A
request refused (a card pulled, an operation left pending) is queued again by a
retry with the same id and the same arguments; one done answers with its result.
"""

import asyncio
import json

from protocol import frames

from parkcard.services import shifts, staff
from parkcard.services.desk import operations, replacement
from parkcard.services.privileges import (CARD_ISSUE, CARD_REFUND, CARD_REPLACE, CARD_RETURN, CARD_STOCK, CARD_TOP_UP,
                                          MEMBERS, MERCHANTS, ServiceError)
from parkcard.store import audited
from parkcard.transport import notify

QUEUED, STARTED, DONE, REFUSED = "queued", "started", "done", "refused"
KINDS = {"top_up": (CARD_TOP_UP, operations.top_up), "issue": (CARD_ISSUE, operations.issue),
         "stock": (CARD_STOCK, operations.stock_card), "staff_card": (MERCHANTS, staff.issue_card),
         "refund": (CARD_REFUND, operations.refund), "return": (CARD_RETURN, operations.return_card),
         "wipe": (CARD_STOCK, operations.wipe_card), "replace": (CARD_REPLACE, replacement.replace),
         "tier": (MEMBERS, operations.write_tier)}


async def queue(store, actor, kind, desk_terminal_id, op_id, **params):
    """Queue a desk operation for the running hub as `actor`; return the rows.DeskRequest as stored."""
    privilege, _run = KINDS[kind]
    actor.check(privilege)
    operations.check_op_id(op_id)
    desks = [t for t in await store.terminals(desk_terminal_id) if t.role == frames.ROLE_DESK]
    if not desks:       # refused now: the running hub would only find out after its order timed out
        raise ServiceError("terminal %(terminal)d is not a desk terminal of this park: give --desk the number on "
                           "your desk terminal (see `parkcard terminals`)", terminal=desk_terminal_id)
    if privilege not in (CARD_STOCK, MEMBERS):     # a money operation: refused now at a desk with no open shift
        await shifts.check_own_shift(store, actor, desk_terminal_id)
        await shifts.checked_pay(store, params.get("pay", shifts.S.CASH))
    args = json.dumps(params, sort_keys=True)
    stored = await store.queue_desk_request(op_id, kind, desk_terminal_id, args, actor.name, " ".join(actor.roles),
                                            audit=audited(actor.name, "desk.request", op_id=op_id, kind=kind,
                                                          desk_terminal_id=desk_terminal_id))
    if (stored.kind, stored.desk_terminal_id, stored.params) != (kind, desk_terminal_id, args):
        raise ServiceError("operation id %(op_id)s was used for another request (%(kind)s at desk %(desk)d, "
                           "%(params)s): a new operation needs a new id", op_id=op_id, kind=stored.kind,
                           desk=stored.desk_terminal_id, params=stored.params)
    await actor.told(notify.CARD_REQUESTS)
    return stored


async def run_queued(path, make_actor):
    """In the running hub: start every queued desk request as a task; return the tasks started."""
    tasks = []
    for request in await path.storage.start_desk_requests():
        tasks.append(asyncio.create_task(_run_one(path, request, make_actor), name="desk-%s" % request.op_id))
    return tasks


async def _run_one(path, request, make_actor):
    _privilege, run = KINDS[request.kind]
    actor = make_actor(request.actor, tuple(request.roles.split()))
    try:
        done = await run(path, actor, request.op_id, request.desk_terminal_id, **json.loads(request.params))
    except ServiceError as exc:
        await path.storage.finish_desk_request(request.op_id, REFUSED, str(exc))
        return
    await path.storage.finish_desk_request(request.op_id, DONE, json.dumps(
        {"card_no": done.card_no, "amount_cents": done.amount_cents, "bonus_cents": done.bonus_cents,
         "balance_cents": done.balance_cents, "record_seq": done.record_seq,
         "fee_cents": getattr(done, "fee_cents", 0), "deposit_cents": getattr(done, "deposit_cents", 0),
         "paid_cents": getattr(done, "paid_cents", 0)}))
