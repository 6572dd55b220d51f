"""Admin system cards: queue an issue, seal one, settle it once the desk wrote it, revoke it.

An issue is sealed by the running hub (it holds the park keys) and written
by a desk terminal; the CLI queues a request (card_write_requests) that the
running hub claims. Claiming assumes one hub per database: two hubs would
both start a queued request (parkcard.hub_lock keeps it to one).
"""

import logging
import secrets
from dataclasses import dataclass

from protocol import admin_card, frames

from parkcard.services.privileges import ADMIN_CARDS, ServiceError, requires
from parkcard.store import audited
from parkcard.transport import notify

log = logging.getLogger("parkcard.services")

# Admin system card numbers: a range of their own, above any visitor card the desk will issue.
ADMIN_CARD_NO_FIRST = 900001
ADMIN_CARD_NO_LAST = 999999


@dataclass(frozen=True)
class AdminCardIssue:
    """An admin system card to write: its number and {block: 16 bytes}.

    `blocks` holds the data blocks, `trailers` the sector trailers. Write every
    data block first, then the trailers (a trailer changes the sector's keys).
    """

    card_no: int
    uid: bytes
    desk: bool
    blocks: dict
    trailers: dict

    def write_order(self):
        """[(block, data)] in the order to write them."""
        return sorted(self.blocks.items()) + sorted(self.trailers.items())


def checked_uid(uid):
    """The UID as bytes; ServiceError unless it is 4 or 7 bytes (MIFARE single or double size)."""
    uid = bytes(uid)
    if len(uid) not in (4, 7):
        raise ServiceError("a card UID is 4 or 7 bytes, not %(size)d", size=len(uid))
    return uid


async def _desk_terminal(store, desk_terminal_id):
    """ServiceError unless desk_terminal_id is a registered desk terminal."""
    rows = await store.terminals(desk_terminal_id)
    if not rows or rows[0].role != frames.ROLE_DESK:
        raise ServiceError("terminal %(terminal)d is not a registered desk terminal: admin cards are issued at a desk "
                           "(see `parkcard terminals`)", terminal=desk_terminal_id)


@requires(ADMIN_CARDS)
async def request(store, actor, desk_terminal_id, uid, desk=True):
    """Queue an admin card issue for the running hub at a desk terminal; return the request id."""
    uid = checked_uid(uid)
    await _desk_terminal(store, desk_terminal_id)
    request_id = await store.request_admin_card(desk_terminal_id, uid, desk, actor.name)
    await actor.told(notify.CARD_REQUESTS)
    return request_id


@requires(ADMIN_CARDS)
async def cancel_request(store, actor, request_id):
    """Give up on a queued issue (nobody waits for it any more); return False when it had ended meanwhile."""
    return await store.cancel_card_request(request_id)


async def fail_request(store, request_id, error):
    """Record that the running hub could not start a queued issue (the requester reads why)."""
    await store.finish_card_request(request_id, error=error)


@requires(ADMIN_CARDS)
async def issue(store, actor, park_keys, transport_key, desk_terminal_id, uid, desk=True):
    """Seal a new admin system card for a card with this UID at a desk terminal; return an AdminCardIssue.

    The park keys are sealed under the transport key with a fresh random nonce (protocol/admin_card.py);
    with desk=False only the booth blob is written (no master B: it cannot authorise a desk). The card
    is pending until settle() says the desk wrote it.
    """
    if park_keys is None or transport_key is None:
        raise ServiceError("this hub has no park keys or transport key: run `parkcard init` and start the hub "
                           "with parkcard.security.secure.hub_kwargs()")
    await _desk_terminal(store, desk_terminal_id)
    uid = checked_uid(uid)
    try:
        card_no = await store.add_admin_card(
            uid, desk, desk_terminal_id, ADMIN_CARD_NO_FIRST, ADMIN_CARD_NO_LAST, audit=audited(
                actor.name, "admin_card.issue", when=lambda _: True, extra=lambda no: dict(card_no=no), uid=uid,
                desk=bool(desk), desk_terminal_id=desk_terminal_id))
    except ValueError as exc:  # every admin card number is taken (numbers are never reused)
        raise ServiceError.of(exc) from None
    nonce = secrets.token_bytes(admin_card.NONCE_SIZE)
    blocks = admin_card.seal(transport_key, park_keys, card_no, uid, nonce, desk=desk)
    trailers = admin_card.trailer_blocks(transport_key, park_keys, uid, desk=desk)
    log.info("event=admin_card_issued card_no=%d desk_terminal=%d actor=%s", card_no, desk_terminal_id, actor.name)
    return AdminCardIssue(card_no, uid, desk, blocks, trailers)


@requires(ADMIN_CARDS)
async def settle(store, actor, card_no, written, request_id=None, error=None):
    """End a pending admin card, written or failed (abandoned if its request was cancelled); return its state."""
    # Two transactions: Storage.settle_admin_card takes no audit= (yet); the state is set first, so a
    # crash between them leaves a settled card without its audit entry, never an entry without the change.
    state = await store.settle_admin_card(card_no, written, request_id, error)
    log.info("event=admin_card_%s card_no=%d", state, card_no)
    await store.audit(actor.name, "admin_card." + state, card_no=card_no, **({"error": error} if error else {}))
    return state


@requires(ADMIN_CARDS)
async def revoke(store, actor, card_no, reason):
    """Revoke an admin card: it authorises no terminal from now on. Return False if it was revoked already."""
    try:
        revoked = await store.revoke_admin_card(card_no, reason, audit=audited(
            actor.name, "admin_card.revoke", card_no=card_no, reason=reason))
    except ValueError as exc:
        raise ServiceError("%(problem)s (see `parkcard admin-card list`)", problem=exc) from None
    if revoked:
        log.info("event=admin_card_revoked card_no=%d reason=%r actor=%s", card_no, reason, actor.name)
    return revoked
