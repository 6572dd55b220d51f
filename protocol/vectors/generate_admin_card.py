"""Regenerate admin_card.json from protocol/admin_card.py (CPython; run from the repo root).

    .venv/bin/python protocol/vectors/generate_admin_card.py

Only regenerate on a deliberate format change: admin cards in the field carry these bytes.
"""

import json
import os

from protocol import admin_card, card_issue

HERE = os.path.dirname(os.path.abspath(__file__))
PARK = card_issue.ParkKeys(bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96)))
TRANSPORT_KEY = bytes(range(0xA0, 0xC0))


def case(uid, card_no, nonce, desk):
    """One admin card: its data blocks, trailers and sector keys."""
    blocks = admin_card.seal(TRANSPORT_KEY, PARK, card_no, uid, nonce, desk=desk)
    trailers = admin_card.trailer_blocks(TRANSPORT_KEY, PARK, uid, desk=desk)
    sectors = admin_card.BOOTH_SECTORS + (admin_card.DESK_SECTORS if desk else ())
    return {
        "uid": uid.hex(),
        "card_no": card_no,
        "nonce": nonce.hex(),
        "desk": desk,
        "blocks": {str(b): d.hex() for b, d in sorted(blocks.items())},
        "trailers": {str(b): d.hex() for b, d in sorted(trailers.items())},
        "sector_keys_a": {str(s): admin_card.sector_key_a(TRANSPORT_KEY, uid, s).hex() for s in sectors},
        "sector_keys_b": {str(s): admin_card.sector_key_b(TRANSPORT_KEY, uid, s).hex() for s in sectors},
    }


def main():
    """Write admin_card.json."""
    out = {
        "transport_key": TRANSPORT_KEY.hex(),
        "park_keys": PARK.pack().hex(),
        "admin_access": admin_card.ADMIN_ACCESS.hex(),
        "cards": [
            case(bytes.fromhex("a1b2c3d4"), 900001, bytes.fromhex("00112233445566778899"), True),
            case(bytes.fromhex("04a1b2c3d4e5f6"), 900002, bytes.fromhex("f0e1d2c3b4a596870000"), True),
            case(bytes.fromhex("0a0b0c0d"), 900003, bytes(10), False),
        ],
    }
    with open(os.path.join(HERE, "admin_card.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
