"""The front desk page: a cashier picks a desk terminal, reads the card on it and serves it.

Every action is a form of its own (templates/desk/<name>.html) posted to its
own route (POST /desk/<name>), registered with `desk_action`: the route reads
its fields and calls one service with the operation id the page made when it
was shown. A double click or a reload sends that id again, and the service
answers the same operation (never a second one); a form already under way in
this session is told to wait. The answer is shown on the page itself, with the
form carrying the same id after a refusal (a retry resumes the operation,
SPEC.md §5.9) and a new one after a success. An operation the hub keeps as
pending is shown as such, with its retry. An action that changes what the card is (a staff card issued, a tier
written) reads the card back after its answer, so the card panel shows the card as it now is.
"""

from fastapi import APIRouter, Depends, Request

from parkcard.domain.lifecycle import DeskOpState
from parkcard.services import credits, losses, shifts, staff
from parkcard.services import privileges as P
from parkcard.services.desk import operations, query, replacement
from parkcard.services.errors import code_of
from parkcard.services.tiers import park_tiers
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import (N_, amount, back, card_amount, gettext, operator, optional_number, park_of,
                               refusal_page, refused_text, render, session_form, state, whole_number)
from parkcard.web.routes.monitoring import KIND_NAMES
from parkcard.web.sessions import IN_FLIGHT, new_token

router = APIRouter()
OP_ID_FIELD = "op"
# What the card panel calls each state of a card's loss (parkcard.store.members).
LOSS_STATES = {"lost": N_("lost, blacklisted"), "found": N_("found again"), "replaced": N_("replaced")}
# The form fields a retry sends again as they were (everything but the CSRF token).
_NOT_RESENT = ("csrf",)


class DeskAction:
    """One thing a cashier does at the desk: its form template, its button's label, the privilege it needs;
    listed: shown among the page's actions (else where the card panel offers it); reads_back: the card is read
    after a success."""

    def __init__(self, name, label, privilege, run, listed=True, reads_back=False):
        self.name = name
        self.label = label
        self.privilege = privilege
        self.run = run
        self.listed = listed
        self.reads_back = reads_back
        self.path = "/desk/" + name.replace("_", "-")
        self.template = "desk/%s.html" % name


ACTIONS = []        # in the order the page shows them


def desk_action(name, label, privilege, listed=True, reads_back=False):
    """Register `async run(request, session, form, park, desk_id, op_id) -> message` as the action `name`."""
    def register(run):
        action = DeskAction(name, label, privilege, run, listed, reads_back)

        async def route(request: Request, session=Depends(operator)):
            return await _act(request, session, action)
        route.__doc__ = run.__doc__
        router.add_api_route(action.path, route, methods=["POST"], name="desk_" + name)
        ACTIONS.append(action)
        return run
    return register


async def _page(request, session, desk_id=None, card=None, outcome=None, pending=None, op_id=None, status=200):
    """The desk page for desk_id (the only desk when there is one), with what an action or a read answered."""
    web = state(request)
    try:
        park = await park_of(request, session)
        desks = await query.desk_terminals(web.store, session.actor)
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    if desk_id is None and len(desks) == 1:
        desk_id = desks[0][0]
    held = session.actor.privileges
    shift = loss = replaced = None
    if desk_id is not None and P.SHIFT in held:
        shift = next(iter(await shifts.open_shifts(web.store, session.actor, desk_id)), None)
    if card is not None and card.card_no is not None:
        loss = await losses.loss_of(web.store, session.actor, card.card_no)
        replaced = await losses.replacement_of(web.store, session.actor, card.card_no)
    # Who may be given a staff card: the staff members holding none (a staff card is issued once per member).
    carding = [m for m in await staff.listing(web.store, session.actor) if m.card_no is None] \
        if P.MERCHANTS in held else []
    return render(request, "desk.html", session, status=status, park=park, desks=desks, desk_id=desk_id, card=card,
                  outcome=outcome, pending=pending, op_id=op_id or new_token(), kinds=KIND_NAMES,
                  tiers={t.code: t.name for t in await park_tiers(web.store)}, shift=shift, loss=loss,
                  replaced=replaced, loss_states=LOSS_STATES, shifts_held=P.SHIFT in held, carding=carding,
                  actions=[a for a in ACTIONS if a.privilege in held and a.listed],
                  offered={a.name: a for a in ACTIONS if a.privilege in held and not a.listed})


@router.get("/desk")
async def desk_page(request: Request, session=Depends(operator)):
    """The desk page; ?desk= picks the terminal, ?read=1 reads the card lying on it."""
    try:
        desk_id = optional_number(request.query_params, "desk", gettext(request, session, "the desk terminal"))
    except ServiceError as exc:
        return await _page(request, session, outcome=("error", refused_text(request, session, exc)), status=422)
    if desk_id is None or not request.query_params.get("read"):
        return await _page(request, session, desk_id)
    try:
        card = await query.card_on_desk(state(request).hub.desk_path, session.actor, desk_id)
    except ServiceError as exc:
        return await _page(request, session, desk_id, outcome=("error", refused_text(request, session, exc)),
                           status=422)
    return await _page(request, session, desk_id, card=card)


async def _act(request, session, action):
    """Run one desk action once per operation id and show its answer on the desk page."""
    form = await session_form(request, session)
    op_id = (form.get(OP_ID_FIELD) or "").strip()
    desk_id = None
    try:
        desk_id = whole_number(form, "desk", gettext(request, session, "the desk terminal"))
        operations.check_op_id(op_id)
    except ServiceError as exc:
        return await _page(request, session, desk_id, outcome=("error", refused_text(request, session, exc)),
                           status=422)
    first = session.claim(op_id)
    if first == IN_FLIGHT:
        return await _page(request, session, desk_id, op_id=op_id, status=409, outcome=("error", gettext(
            request, session, "This operation is being done already: wait for its answer, then reload.")))
    if first is not None:       # sent again after its answer: the first answer, nothing done again
        return await _page(request, session, desk_id, outcome=first)
    web = state(request)
    try:
        park = await park_of(request, session)
        said = await action.run(request, session, form, park, desk_id, op_id)
    except ServiceError as exc:
        session.answers.pop(op_id, None)    # refused: a retry with the same id asks the service again
        pending = None
        if await _is_pending(web, session, op_id):
            pending = (action.path, [(k, v) for k, v in form.items() if k not in _NOT_RESENT])
        return await _page(request, session, desk_id, outcome=("error", _refusal_text(request, session, exc, desk_id)),
                           pending=pending, op_id=op_id, status=422)
    except BaseException:
        session.answers.pop(op_id, None)    # never left "in flight" for good
        raise
    session.answer(op_id, "ok", said)
    card = None
    if action.reads_back:
        try:
            card = await query.card_on_desk(web.hub.desk_path, session.actor, desk_id)
        except ServiceError:
            card = None     # taken away after its answer: the answer stands, the panel waits for the next read
    return await _page(request, session, desk_id, card=card, outcome=("ok", said))


async def _is_pending(web, session, op_id):
    """True when the hub keeps op_id as a pending desk operation (its retry resumes it)."""
    try:
        kept = await query.operation(web.hub.desk_path, session.actor, op_id)
    except ServiceError:
        return False
    return kept is not None and kept.state == DeskOpState.PENDING


def _refusal_text(request, session, exc, desk_id):
    """What the page says of a service's refusal: its own words, the page's for one that names a CLI command."""
    if code_of(exc) == shifts.NO_SHIFT:
        return gettext(request, session, "Desk %(desk)d has no open shift: open one with \"Open a shift\" on this page "
                                         "first (nothing was charged).") % {"desk": desk_id}
    return refused_text(request, session, exc)


def _done_text(request, session, park, done, what):
    return gettext(request, session, "%(what)s: card %(card)s now holds %(balance)s (operation %(op)s).") % {
        "what": what, "card": done.card_no, "balance": park.money(done.balance_cents), "op": done.op_id}


@desk_action("stock", N_("Stock a blank card"), P.CARD_STOCK)
async def stock(request, session, form, park, desk_id, op_id):
    """Make the blank card on the desk card stock (keys, nothing loaded): services.desk.stock_card."""
    web = state(request)
    uid_hex = (form.get("uid") or "").strip()
    stocked = await operations.stock_card(web.hub.desk_path, session.actor, op_id, desk_id, uid_hex)
    return gettext(request, session, "Card %(uid)s is card stock now: issue it.") % {"uid": stocked.uid.hex()}


@desk_action("issue", N_("Issue"), P.CARD_ISSUE)
async def issue(request, session, form, park, desk_id, op_id):
    """Issue the stock card on the desk with a first load and deposit: services.desk.issue."""
    web = state(request)
    cash = card_amount(form, "load", gettext(request, session, "the first load"), park)
    deposit = card_amount(form, "deposit", gettext(request, session, "the deposit"), park)
    tier = whole_number(form, "tier", gettext(request, session, "the tier"))
    done = await operations.issue(web.hub.desk_path, session.actor, op_id, desk_id, cash, tier=tier,
                                  deposit_cents=deposit)
    return _done_text(request, session, park, done, gettext(request, session, "Issued"))


@desk_action("top_up", N_("Top up"), P.CARD_TOP_UP)
async def top_up(request, session, form, park, desk_id, op_id):
    """Top up the card on the desk with the cash paid (plus its tier's bonus): services.desk.top_up."""
    web = state(request)
    cash = card_amount(form, "amount", gettext(request, session, "the top-up"), park)
    done = await operations.top_up(web.hub.desk_path, session.actor, op_id, desk_id, cash)
    return _done_text(request, session, park, done, gettext(request, session, "Topped up"))


@desk_action("refund", N_("Refund"), P.CARD_REFUND)
async def refund(request, session, form, park, desk_id, op_id):
    """Pay back part of the cash on the card on the desk, less the park's fee (退款): services.desk.refund."""
    web = state(request)
    cents = card_amount(form, "amount", gettext(request, session, "the refund"), park)
    done = await operations.refund(web.hub.desk_path, session.actor, op_id, desk_id, cents)
    return gettext(request, session, "Refunded: pay the holder %(paid)s (fee %(fee)s); card %(card)s now holds "
                                     "%(balance)s (operation %(op)s).") % {
        "paid": park.money(done.paid_cents), "fee": park.money(done.fee_cents), "card": done.card_no,
        "balance": park.money(done.balance_cents), "op": done.op_id}


@desk_action("return_card", N_("Take the card back"), P.CARD_RETURN)
async def return_card(request, session, form, park, desk_id, op_id):
    """Take back the card on the desk (退卡): cash less the fee and the deposit paid out: services.desk.return_card."""
    web = state(request)
    done = await operations.return_card(web.hub.desk_path, session.actor, op_id, desk_id)
    return gettext(request, session, "Card %(card)s is returned: pay the holder %(paid)s (deposit included, fee "
                                     "%(fee)s); its bonus %(bonus)s went back to the park (operation %(op)s).") % {
        "card": done.card_no, "paid": park.money(done.paid_cents), "fee": park.money(done.fee_cents),
        "bonus": park.money(done.bonus_cents), "op": done.op_id}


@desk_action("credit", N_("Grant a credit"), P.CREDITS_GRANT)
async def credit(request, session, form, park, desk_id, op_id):
    """Grant value to a card not on the desk, landing at its next tap: services.credits.grant_credit."""
    web = state(request)
    card_no = whole_number(form, "card_no", gettext(request, session, "the card number"))
    cents = card_amount(form, "amount", gettext(request, session, "the amount"), park)
    # Paid in cash at this desk, in its open shift; the form's operation id is the grant's id, so a form sent
    # again after a hub restart (its first answer forgotten) is the same credit.
    granted = await credits.grant_credit(web.store, session.actor, card_no, cents, form.get("reason"),
                                         desk_terminal_id=desk_id, grant_id="web-" + op_id)
    return gettext(request, session, "Credit %(no)d of %(amount)s is granted to card %(card)d: it lands at the card's "
                                  "next tap.") % {"no": granted.credit_no, "amount": park.money(granted.amount_cents),
                                                  "card": card_no}


@desk_action("lost", N_("Report a card lost"), P.CARD_LOSS)
async def lost(request, session, form, park, desk_id, op_id):
    """Report a card lost (挂失) by its number or its member's: blacklisted at once: services.losses.report."""
    web = state(request)
    card_no = optional_number(form, "card_no", gettext(request, session, "the card number"))
    member_no = optional_number(form, "member_no", gettext(request, session, "the member number"))
    loss = await losses.report(web.store, session.actor, form.get("reason"), card_no=card_no, member_no=member_no)
    return gettext(request, session, "Card %(card)d is reported lost and blacklisted (blacklist version %(version)d): "
                                     "replace it with a stock card on the desk, or un-report it when it is found.") % {
        "card": loss.card_no, "version": loss.blacklist_version}


@desk_action("found", N_("Lost card found"), P.CARD_LOSS)
async def found(request, session, form, park, desk_id, op_id):
    """Un-report a lost card not replaced (解挂): off the blacklist again: services.losses.unreport."""
    web = state(request)
    card_no = whole_number(form, "card_no", gettext(request, session, "the card number"))
    await losses.unreport(web.store, session.actor, card_no, form.get("reason"))
    return gettext(request, session, "Card %(card)d is no longer reported lost: it serves again once the terminals "
                                     "have the new blacklist.") % {"card": card_no}


@desk_action("replace", N_("Replace a lost card"), P.CARD_REPLACE)
async def replace(request, session, form, park, desk_id, op_id):
    """Issue the stock card on the desk as a lost card's replacement (补卡), less a hold: services.desk.replace."""
    web = state(request)
    lost_no = whole_number(form, "lost_card_no", gettext(request, session, "the lost card's number"))
    done = await replacement.replace(web.hub.desk_path, session.actor, op_id, desk_id, lost_no)
    row = await losses.replacement_of(web.store, session.actor, lost_no)
    return gettext(request, session, "Card %(new)s replaces card %(old)d and holds %(moved)s; %(hold)s is held for "
                                     "the lost card's late offline debits and lands on card %(new)s by %(release)s at "
                                     "the latest (operation %(op)s).") % {
        "new": done.card_no, "old": lost_no, "moved": park.money(done.balance_cents),
        "hold": park.money(row.hold_cents), "release": park.when(row.release_at_s), "op": done.op_id}


@desk_action("staff_card", N_("Issue a staff card"), P.MERCHANTS, reads_back=True)
async def staff_card(request, session, form, park, desk_id, op_id):
    """Issue the stock card on the desk as a booth staff member's staff card, no value on it: staff.issue_card."""
    web = state(request)
    staff_id = whole_number(form, "staff", gettext(request, session, "the staff member"))
    done = await staff.issue_card(web.hub.desk_path, session.actor, op_id, desk_id, staff_id)
    return gettext(request, session, "Staff card %(card)s is issued to staff member %(id)d: it opens their shifts at "
                                     "their merchant's booths, which have it at once (operation %(op)s).") % {
        "card": done.card_no, "id": staff_id, "op": done.op_id}


@desk_action("write_tier", N_("Write the member's tier onto the card"), P.MEMBERS, listed=False, reads_back=True)
async def write_tier(request, session, form, park, desk_id, op_id):
    """Write the member's tier, changed since the card was written, onto the card on the desk: desk.write_tier."""
    web = state(request)
    done = await operations.write_tier(web.hub.desk_path, session.actor, op_id, desk_id)
    if not done.written:
        return gettext(request, session, "Card %(card)s holds its member's tier already: nothing was written.") % {
            "card": done.card_no}
    return gettext(request, session, "Card %(card)s carries its member's tier now: the booths give that tier's "
                                     "discounts (no value moved, operation %(op)s).") % {
        "card": done.card_no, "op": done.op_id}


# -- the cashier's shift at the desk: open with a counted float, close with the counted cash, its Z report

def _to_desk(desk_id):
    return "/desk" if desk_id is None else "/desk?desk=%d" % desk_id


async def _shift_step(request, session, field, label, step):
    """Read a shift form (its desk and one amount) and run `step(store, actor, park, desk_id, cents)` -> (where to
    go, what to say); a refusal goes back to the desk page with the service's words."""
    form = await session_form(request, session)
    desk_id = None
    try:
        park = await park_of(request, session)
        desk_id = whole_number(form, "desk", gettext(request, session, "the desk terminal"))
        cents = amount(form, field, gettext(request, session, label), park)
        to, said = await step(state(request).store, session.actor, park, desk_id, cents)
    except ServiceError as exc:
        return back(_to_desk(desk_id), session, refused_text(request, session, exc), "error")
    return back(to, session, said)


@router.post("/desk/shift/open")
async def shift_open(request: Request, session=Depends(operator)):
    """Open the cashier's shift at the desk with the float counted into the drawer: services.shifts.open_shift."""
    async def step(store, actor, park, desk_id, cents):
        shift = await shifts.open_shift(store, actor, desk_id, cents)
        return _to_desk(desk_id), gettext(
            request, session, "Shift %(shift)d is open at desk %(desk)d with a float of %(float)s.") % {
            "shift": shift.shift_no, "desk": desk_id, "float": park.money(shift.float_cents)}
    return await _shift_step(request, session, "float", N_("the float"), step)


@router.post("/desk/shift/close")
async def shift_close(request: Request, session=Depends(operator)):
    """Close the desk's open shift with the cash counted in the drawer, then show its Z report."""
    async def step(store, actor, park, desk_id, cents):
        z_no, z = await shifts.close_shift(store, actor, desk_id, cents)
        return "/desk/z/%d" % z_no, gettext(
            request, session, "Shift %(shift)d is closed: Z report %(z)d, cash over (+) or short (-) %(diff)s.") % {
            "shift": z.shift_number, "z": z_no, "diff": park.money(z.difference_cents)}
    return await _shift_step(request, session, "counted", N_("the counted cash"), step)


@router.get("/desk/z/{z_no}")
async def z_report_page(request: Request, z_no: int, session=Depends(operator)):
    """A closed shift's Z report, printable (a cashier's own, any for shifts.review): services.shifts.z_report."""
    try:
        park = await park_of(request, session)
        stored, shift, z = await shifts.z_report(state(request).store, session.actor, z_no)
    except ServiceError as exc:
        return refusal_page(request, session, exc, 404)
    return render(request, "desk_z.html", session, park=park, stored=stored, shift=shift, z=z)
