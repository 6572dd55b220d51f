"""`parkcard admin-card list|issue|revoke`: admin system cards, issued by the running hub at a desk terminal."""

import asyncio
import time

import click

from parkcard.bounds import CARD_NO, TERMINAL_ID, BoundParam
from parkcard.cli.common import UserError, in_store, run, table, utc, with_storage
from parkcard.domain.lifecycle import AdminCardState
from parkcard.services import admin_cards

CARD_REQUEST_POLL_S = 0.5       # how often `admin-card issue` looks for the running hub's answer


@click.group("admin-card")
def admin_card_group():
    """Admin system cards (issued by the hub at a desk terminal)."""


@admin_card_group.command("list")
@click.pass_obj
def admin_card_list(obj):
    """Every admin card: number, UID, blobs, issuing desk, state (valid only once the desk wrote it)."""
    rows = run(with_storage(obj.db, lambda s: s.admin_cards()))
    table(("card", "uid", "blobs", "desk terminal", "issued", "state", "reason"),
          [(r.card_no, bytes(r.uid).hex(), "booth+desk" if r.desk else "booth", r.issued_by,
            utc(r.issued_at), _state(r), r.reason) for r in rows])


_STATE_SHOWN = {AdminCardState.WRITTEN: "valid", AdminCardState.PENDING: "pending (not written yet)",
                AdminCardState.FAILED: "failed (not written)", AdminCardState.ABANDONED: "abandoned (cancelled)"}


def _state(row):
    """What an operator needs to know: valid, revoked, or why it never became valid."""
    if row.revoked_at:
        return "revoked %s" % utc(row.revoked_at)
    return _STATE_SHOWN.get(row.state, row.state)


@admin_card_group.command("issue")
@click.option("--desk", "desk_terminal_id", type=BoundParam(TERMINAL_ID), required=True,
              help="the desk terminal that writes the card")
@click.option("--uid", "uid_hex", required=True, help="the blank card's UID, 8 or 14 hex digits")
@click.option("--booth-only", is_flag=True, help="booth keys only: the card cannot authorise a desk")
@click.option("--wait", "wait_s", default=90, show_default=True, type=click.IntRange(1, 3600),
              help="seconds to wait for the card to be written")
@click.pass_obj
def admin_card_issue(obj, desk_terminal_id, uid_hex, booth_only, wait_s):
    """Issue an admin system card: the running hub has the desk terminal write it onto the blank card."""
    try:
        uid = bytes.fromhex(uid_hex)
    except ValueError:
        uid = b""
    if len(uid) not in (4, 7):
        raise UserError("--uid must be the blank card's 4- or 7-byte UID in hex (8 or 14 digits)")

    async def issue(storage, actor):
        request_id = await admin_cards.request(storage, actor, desk_terminal_id, uid, not booth_only)
        click.echo("present the blank card %s to desk terminal %d; waiting up to %d s for the running hub "
                   "(`parkcard up`)" % (uid.hex(), desk_terminal_id, wait_s))
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            finished_at, card_no, error = await storage.card_request(request_id)
            if finished_at is not None:
                return card_no, error
            await asyncio.sleep(CARD_REQUEST_POLL_S)
        # Nobody waits any more: the hub must not write the card later behind the operator's back.
        if await admin_cards.cancel_request(storage, actor, request_id):
            raise UserError("no answer within %d s: the request is cancelled (a card the desk writes anyway is "
                            "abandoned and authorises nothing, see `parkcard admin-card list`); is `parkcard up` "
                            "running and desk terminal %d online? Then run this again"
                            % (wait_s, desk_terminal_id))
        _finished_at, card_no, error = await storage.card_request(request_id)   # it ended meanwhile
        return card_no, error

    card_no, error = in_store(obj, issue)
    if error:
        raise UserError(error)
    click.echo("admin card %d written at desk terminal %d" % (card_no, desk_terminal_id))


@admin_card_group.command("revoke")
@click.argument("card_no", type=BoundParam(CARD_NO))
@click.option("--reason", required=True, help="why (lost, stolen, technician left)")
@click.pass_obj
def admin_card_revoke(obj, card_no, reason):
    """Revoke an admin card: no terminal is authorised with it any more."""
    if in_store(obj, lambda s, actor: admin_cards.revoke(s, actor, card_no, reason)):
        click.echo("admin card %d revoked: it authorises no terminal from now on" % card_no)
    else:
        click.echo("admin card %d was already revoked: nothing changed" % card_no)
