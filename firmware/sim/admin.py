"""Make a virtual admin system card (protocol/SPEC.md §6) for tests and the demo."""

import os

from protocol import admin_card
from sim.mifare import MifareClassic1K


def admin_system_card(transport_key, park_keys, card_no, uid, desk=True, nonce=None):
    """Return a MIFARE Classic 1K personalised as an admin card: sealed blobs and sector trailers.

    `nonce` defaults to fresh random bytes, as the issuing tool does for every card.
    """
    if nonce is None:
        nonce = os.urandom(admin_card.NONCE_SIZE)
    virtual = MifareClassic1K(uid)
    blocks = admin_card.seal(transport_key, park_keys, card_no, uid, nonce, desk=desk)
    blocks.update(admin_card.trailer_blocks(transport_key, park_keys, uid, desk=desk))
    for block, data in blocks.items():
        virtual.blocks[block][:] = data
    return virtual
