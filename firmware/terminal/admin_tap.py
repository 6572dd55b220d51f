"""An admin system card tapped on a terminal that does not serve (protocol/SPEC.md §6.2, §6.6).

Imported by terminal.authorise only while LOCKED: a terminal that serves with the keys a
confirmed authorisation stored never loads the admin card's reading or protocol.admin_card.
"""

from protocol.errors import ProtocolError
from terminal.authorise import (KEY_TRANSPORT, NO_CARD, NO_CONFIG, NO_TRANSPORT_KEY, NOT_ADMIN, READ_FAILED,
                                REVOKED)
from terminal.compat import const
from terminal.rc522 import AuthError, RC522Error

_TRANSPORT_KEY_SIZE = const(32)      # protocol.admin_card.TRANSPORT_KEY_SIZE (SPEC.md §6.1)


def _release(reader, uid, reselect=False):
    """HLTA so the card stays quiet until it leaves the field; a card already gone is fine."""
    try:
        if reselect:
            reader.reselect(uid)     # a failed MFAuthent dropped it to IDLE (MF1S50yyX §8.2)
        reader.halt()
    except RC522Error:
        pass
    reader.stop_crypto()


def read_admin_card(reader, transport_key, desk=False):
    """Detect a card and open one sealed blob: (card_no, keys, uid), or None without a card.

    One MFAuthent per blob sector with the key A derived from the transport key,
    then its blocks (SPEC.md §6.2). Raises AuthError for a card this
    transport key does not open, other RC522Error on a failed read, and
    protocol errors (BadMac first of all) from admin_card.unseal.
    """
    found = reader.detect()
    if found is None:
        return None
    from protocol import admin_card
    uid = found[0]
    blocks = {}
    sector = -1
    try:
        for block in admin_card.blob_blocks(desk):
            if block // 4 != sector:
                sector = block // 4
                reader.auth(block, admin_card.sector_key_a(transport_key, uid, sector), uid)
            blocks[block] = reader.read_block(block)
    except AuthError:
        _release(reader, uid, True)
        raise
    _release(reader, uid)
    card_no, keys = admin_card.unseal(transport_key, blocks, uid, desk)
    return card_no, keys, uid


def tap(authoriser):
    """Authoriser.tap while LOCKED: read and verify an admin card, then hold its keys and send T_AUTH."""
    transport_key = authoriser.keystore.get(KEY_TRANSPORT)
    if transport_key is None or len(transport_key) != _TRANSPORT_KEY_SIZE:
        return authoriser.refuse(NO_TRANSPORT_KEY)
    if authoriser.wallet.config is None:
        return authoriser.refuse(NO_CONFIG)
    try:
        got = read_admin_card(authoriser.reader, transport_key, authoriser.desk_role())
    except AuthError:
        return authoriser.refuse(NOT_ADMIN)
    except RC522Error:
        return READ_FAILED
    except ProtocolError as exc:
        return authoriser.refuse(exc.reason)
    if got is None:
        return NO_CARD
    card_no, keys, uid = got
    if authoriser.blacklist is not None and authoriser.blacklist.contains(card_no):
        return authoriser.refuse(REVOKED)
    return authoriser.hold(card_no, keys, uid)
