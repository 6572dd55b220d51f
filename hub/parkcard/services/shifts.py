"""Cashier shifts: open with a counted float, every desk operation in its cashier's own open shift, close with a Z
report.

The arithmetic is parkcard.domain.shifts; this module keeps it in the store. A
desk operation is tied to its desk's open shift when it is kept as pending
(parkcard.services.desk.operations._keep), with the payment method its request
names (`pay`, cash unless said), and only when the operator doing it opened that
shift (an admin excepted, shift_owner): a cashier never works in another's drawer.
A close is refused while one of the shift's operations is pending; it counts the shift's posted operations, posts the
drawer's difference (counted - expected) to desk:over_short and stores the Z
report under the next Z number, immutable, printable again.
"""

import dataclasses
import json
import re

from protocol import frames

from parkcard.domain import ledger, park_time
from parkcard.domain import shifts as S
from parkcard.domain.cents import whole
from parkcard.domain.lifecycle import DeskOpState
from parkcard.services import park
from parkcard.services.errors import Refusal
from parkcard.services.privileges import ADMIN, PARK_ADMIN, PARK_READ, SHIFT, SHIFTS_REVIEW, ServiceError, requires
from parkcard.store import audited
from parkcard.store.shifts import ShiftNotClosable, ShiftOfAnother

FLOAT_MAX_CENTS = 10_000_000        # a drawer's float beyond 100,000.00 is a typing mistake
NO_SHIFT = "no_open_shift"         # the code of the refusal of a desk operation with no open shift
PAY_METHOD = re.compile(r"[a-z][a-z0-9_-]{0,19}")


def desk_op(op, method):
    """The parkcard.domain.shifts.DeskOp of a desk operation's row paid by method; ServiceError if it has none."""
    try:
        return S.desk_op_of(op.kind, method, op.amount_cents, op.bonus_cents, op.deposit_cents, op.fee_cents)
    except S.ShiftError as exc:
        raise ServiceError("%(problem)s: tell the park's technician (nothing was changed)", problem=exc) from None


def pay_method_of(request):
    """The payment method a desk operation's request (canonical JSON) names: cash unless it says."""
    return json.loads(request).get("pay", S.CASH)


async def checked_pay(storage, pay):
    """pay if the park's desks take it (cash, or one of the park's other methods); ServiceError otherwise."""
    if pay == S.CASH:
        return pay
    methods = (S.CASH,) + tuple(await storage.park_pay_methods())
    if pay not in methods:
        raise ServiceError("the desk takes no payment by %(pay)r: pay by %(methods)s", pay=pay,
                           methods=" or ".join(methods))
    return pay


@requires(PARK_READ)
async def pay_methods(store, actor):
    """The payment methods the park's desks take: cash first, then the park's others."""
    return (S.CASH,) + tuple(await store.park_pay_methods())


@requires(PARK_ADMIN)
async def set_pay_methods(store, actor, methods):
    """Set the payment methods the park's desks take besides cash (cash is always taken); True if changed."""
    others = []
    for method in methods:
        if not PAY_METHOD.fullmatch(method or ""):
            raise ServiceError("%(method)r is no payment method name: lowercase letters, digits, - or _, at most 20 "
                               "(e.g. card, mobile, wechat)", method=method)
        if method != S.CASH and method not in others:
            others.append(method)
    return await store.set_park_pay_methods(others, audit=audited(actor.name, "park.pay_methods",
                                                                   pay_methods=others))


def shift_owner(actor):
    """The operator whose own open shift an operation of actor's must be in: actor.name, or None for an admin (the
    park's own hub machine among them), who reviews and closes every shift and may serve in any, and for an API key
    (no operator: its scopes alone, parkcard.services.apikeys)."""
    return None if ADMIN in actor.roles or not actor.roles else actor.name


async def check_own_shift(storage, actor, desk_terminal_id):
    """ServiceError unless the desk has a shift open that actor may work in (its own; any for an admin): checked
    where an operation is queued, by the services that checked its privilege."""
    shift = await storage.open_shift_at(desk_terminal_id)
    if shift is None:
        raise no_shift(desk_terminal_id)
    owner = shift_owner(actor)
    if owner is not None and shift.opened_by != owner:
        raise ServiceError.of(ShiftOfAnother(desk_terminal_id, shift.shift_no, shift.opened_by, owner))


def no_shift(desk_terminal_id):
    """The refusal of an operation at a desk with no open shift."""
    return Refusal(NO_SHIFT, "desk %(desk)d has no open shift: open one first with `parkcard shift open --desk "
                             "%(desk)d --float AMOUNT` (nothing was charged)", desk=desk_terminal_id)


def paid_by_entries(op, method):
    """Ledger entries moving a non-cash operation's net take off desk:cash (None for cash)."""
    if method == S.CASH:
        return None
    done = desk_op(op, method)
    return ledger.paid_by(method, done.received_cents - done.paid_cents) or None


async def _desk(store, desk_terminal_id):
    whole(desk_terminal_id, "a desk terminal id", ServiceError, 1)
    if not [t for t in await store.terminals(desk_terminal_id) if t.role == frames.ROLE_DESK]:
        raise ServiceError("terminal %(terminal)d is not a desk terminal of this park: give --desk the number on your "
                           "desk terminal (see `parkcard terminals`)", terminal=desk_terminal_id)


@requires(SHIFT)
async def open_shift(store, actor, desk_terminal_id, float_cents):
    """Open a shift at a desk with float_cents counted into the drawer; return the rows.Shift."""
    await _desk(store, desk_terminal_id)
    whole(float_cents, "the float (cents)", ServiceError, 0, FLOAT_MAX_CENTS)
    try:
        return await store.add_shift(desk_terminal_id, float_cents, actor.name, audit=audited(
            actor.name, "shift.open", when=lambda _: True, desk_terminal_id=desk_terminal_id,
            float_cents=float_cents, extra=lambda s: {"shift_no": s.shift_no}))
    except ValueError as exc:
        raise ServiceError("%(problem)s: close it first (`parkcard shift close --desk %(desk)d --counted AMOUNT`)",
                           problem=exc, desk=desk_terminal_id) from None


@dataclasses.dataclass(frozen=True)
class ShiftNow:
    """An open shift as it stands: its row, its figures so far, how many operations are pending."""

    shift: object               # rows.Shift
    figures: S.Shift            # the posted operations' arithmetic (cash expected so far)
    pending: int


def _figures(shift, ops):
    """(domain Shift of the posted operations, pending count) of a shift's operation rows."""
    posted = tuple(desk_op(op, op.method) for op in ops if op.state == DeskOpState.POSTED)
    return S.Shift(shift.shift_no, shift.float_cents, posted), sum(op.state == DeskOpState.PENDING for op in ops)


def _sees_every_shift(actor):
    """True for an actor who reviews every cashier's shifts; else the actor must hold shifts.own (checked)."""
    if SHIFTS_REVIEW in actor.privileges:
        return True
    if SHIFT not in actor.privileges:   # neither: the refusal names what sees every shift (an API key's scope)
        actor.check(SHIFTS_REVIEW)
    actor.check(SHIFT)
    return False


def _may_see(actor, shift):
    """ServiceError unless the actor opened the shift or reviews every cashier's shifts."""
    if not _sees_every_shift(actor) and shift.opened_by != actor.name:
        actor.check(SHIFTS_REVIEW)


@requires(PARK_READ)
async def open_shifts(store, actor, desk_terminal_id=None):
    """[ShiftNow] of the open shifts (of one desk when given): a cashier's own, or every one for shifts.review."""
    out = []
    every = _sees_every_shift(actor)
    for shift in await store.shifts(desk_terminal_id, open_only=True):
        if not every and shift.opened_by != actor.name:
            continue
        figures, pending = _figures(shift, await store.shift_operations(shift.shift_no))
        out.append(ShiftNow(shift, figures, pending))
    return out


@requires(SHIFT)
async def close_shift(store, actor, desk_terminal_id, counted_cents):
    """Close the desk's open shift with counted_cents in the drawer; return (Z number, domain ZReport)."""
    whole(counted_cents, "the counted cash (cents)", ServiceError, 0, FLOAT_MAX_CENTS * 10)
    shift = await store.open_shift_at(desk_terminal_id)
    if shift is None:
        raise ServiceError("desk %(desk)d has no open shift to close (see `parkcard shift show`)",
                           desk=desk_terminal_id)
    _may_see(actor, shift)      # another cashier's shift is closed by a reviewer (a manager)
    made = {}

    def make_report(ops, pending):
        figures, _pending = _figures(shift, ops)
        try:
            z = S.close_shift(figures, counted_cents, pending)
        except S.ShiftError as exc:
            raise ServiceError.of(exc) from None
        made["z"] = z
        entries = ledger.cash_over_short(z.cash_expected_cents, z.cash_counted_cents)
        return json.dumps(dataclasses.asdict(z), sort_keys=True), entries and (ledger.TX_SHIFT_CLOSE, entries)

    try:
        stored = await store.close_shift_with_report(shift.shift_no, actor.name, make_report, audit=audited(
            actor.name, "shift.close", when=lambda _: True, shift_no=shift.shift_no,
            desk_terminal_id=desk_terminal_id, counted_cents=counted_cents,
            extra=lambda z: {"z_no": z.z_no, "over_short_cents": made["z"].difference_cents}))
    except ShiftNotClosable as exc:
        raise ServiceError("%(problem)s (see `parkcard shift show`)", problem=exc) from None
    return stored.z_no, made["z"]


def z_of(stored):
    """The domain ZReport of a stored Z report's JSON."""
    data = json.loads(stored.report)
    for by in ("issue_loads", "top_ups"):
        data[by] = tuple((method, S.MethodTotal(**total)) for method, total in data[by])
    return S.ZReport(**data)


@requires(PARK_READ)
async def z_report(store, actor, z_no):
    """(rows.StoredZReport, rows.Shift, domain ZReport) of Z report z_no: a cashier's own, any for shifts.review."""
    whole(z_no, "a Z report number", ServiceError, 1, Z_NO_MAX)
    stored = await store.z_report(z_no)
    if stored is None:
        raise Refusal("z_report_not_found", "there is no Z report %(z)d: a Z report is made when a shift closes",
                      z=z_no)
    shift = await store.shift(stored.shift_no)
    _may_see(actor, shift)
    return stored, shift, z_of(stored)


Z_NO_MAX = 2 ** 31 - 1  # the highest Z report number the store's INTEGER column holds, on either backend
Z_LISTED_MAX = 500      # Z reports one list shows at most (newest first); a narrower day or desk finds older ones


@requires(PARK_READ)
async def z_reports(store, actor, day=None, desk_terminal_id=None, limit=Z_LISTED_MAX):
    """[(rows.StoredZReport, rows.Shift, domain ZReport)] newest first, made on park day `day` (days since
    1970-01-01, from the park's daily reset on its clock; every day when None), of one desk when given: a
    cashier's own shifts, every cashier's for shifts.review."""
    whole(limit, "how many Z reports", ServiceError, 1, Z_LISTED_MAX)
    start_s = end_s = None
    if day is not None:
        whole(day, "a park day (days since 1970-01-01)", ServiceError, 0)
        start_s, end_s = park_time.day_bounds(await park.zone_of(store), await park.daily_reset_s(store), day)
    if desk_terminal_id is not None:
        whole(desk_terminal_id, "a desk terminal id", ServiceError, 1)
    opened_by = None if _sees_every_shift(actor) else actor.name
    return [(stored, shift, z_of(stored)) for stored, shift in await store.z_reports(
        start_s, end_s, desk_terminal_id, opened_by, limit)]
