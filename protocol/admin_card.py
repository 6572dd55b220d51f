"""The admin system card: park master keys sealed under the transport key (SPEC.md §6).

Layout on a MIFARE Classic 1K (SPEC.md §6.2):

| sectors | blocks | content | sector keys from |
| --- | --- | --- | --- |
| 1 | 4, 5, 6 | card info with FLAG_ADMIN, a zero slot, a blank slot | park keys (as any card) |
| 2-3 | 8 9 10 12 13 14 | booth blob: header, master A + MAC key, tag | transport key |
| 4-6 | 16 .. 25 (26 zero) | desk blob: header, master A + B + MAC key, tag | transport key |

A blob is encrypt-then-MAC: ciphertext = keys XOR HMAC-SHA256(enc key,
nonce || counter) blocks; tag = HMAC-SHA256(MAC key, domain, header, UID,
ciphertext)[:16]; enc and MAC keys are derived from the transport key per blob
kind. Pure Python on both interpreters: struct, hashlib (via protocol.crypto).
"""

import struct

from protocol import card, card_issue, crypto
from protocol.errors import BadMac, Malformed, Unsupported

VERSION = 1
KIND_BOOTH = 1      # master A + card MAC key: pos, ride, gate
KIND_DESK = 2       # master A + B + card MAC key: desk only

NONCE_SIZE = 10
TAG_SIZE = 16
TRANSPORT_KEY_SIZE = 32
_MASTER_SIZE = 32

# Labels of the KDF (SPEC.md §2.2), master = transport key; new in SPEC.md §6.3.
LABEL_ADMIN_KEY_A = b"AKA"      # sector key A of sectors 2-6: UID, sector -> first 6 bytes
LABEL_ADMIN_KEY_B = b"AKB"      # sector key B of sectors 2-6: UID, sector -> first 6 bytes
LABEL_ADMIN_ENC = b"AENC"       # blob encryption key: kind -> 32 bytes
LABEL_ADMIN_MAC = b"AMAC"       # blob MAC key: kind -> 32 bytes
_TAG_DOMAIN = b"ADMIN"

_HEADER_FMT = ">BBI"            # version, kind, card_no; then the nonce
_HEADER_FIXED = 6

# Blocks of each blob in reading order: header, ciphertext..., tag (SPEC.md §6.2).
BOOTH_SECTORS = (2, 3)
DESK_SECTORS = (4, 5, 6)
BOOTH_BLOCKS = (8, 9, 10, 12, 13, 14)
DESK_BLOCKS = (16, 17, 18, 20, 21, 22, 24, 25)
DESK_SPARE_BLOCK = 26           # written as zeros, never read

# Data blocks read A|B, written B (100); trailer: key A and access bits written
# with key B only, key B unreadable (011). MF1S50yyX §8.7.
ADMIN_ACCESS = card_issue.access_bytes(0b100, 0b100, 0b100, 0b011)


# The key-store forms of the park keys live with ParkKeys: a serving booth reads them without this module.
from protocol.card import BoothKeys, booth_keys, unpack_keys  # noqa: E402,F401 - re-exported


def blob_blocks(desk=False):
    """The blocks a terminal reads for one blob, in order."""
    return DESK_BLOCKS if desk else BOOTH_BLOCKS


def sector_key_a(transport_key, uid, sector):
    """Key A of an admin sector (2-6): what a terminal authenticates with."""
    return crypto.derive(transport_key, LABEL_ADMIN_KEY_A, bytes(uid), bytes((sector,)))[:card.KEY_SIZE]


def sector_key_b(transport_key, uid, sector):
    """Key B of an admin sector (2-6): rewriting the card (issuing tool only)."""
    return crypto.derive(transport_key, LABEL_ADMIN_KEY_B, bytes(uid), bytes((sector,)))[:card.KEY_SIZE]


def _check_transport_key(transport_key):
    if transport_key is None or len(transport_key) != TRANSPORT_KEY_SIZE:
        raise Malformed("the transport key is 32 bytes")


def _keystream_xor(enc_key, nonce, data):
    """data XOR HMAC-SHA256(enc_key, nonce || counter) for counter 0, 1, ... (4 bytes, big-endian)."""
    mac = crypto.Mac(enc_key)
    out = bytearray(len(data))
    for start in range(0, len(data), 32):
        block = mac.digest(nonce, struct.pack(">I", start // 32))
        for i in range(start, min(start + 32, len(data))):
            out[i] = data[i] ^ block[i - start]
    return bytes(out)


def _tag(transport_key, kind, header, uid, ciphertext):
    mac = crypto.Mac(crypto.derive(transport_key, LABEL_ADMIN_MAC, bytes((kind,))))
    return mac.tag(TAG_SIZE, _TAG_DOMAIN, header, bytes((len(uid),)), uid, ciphertext)


def _seal_blob(transport_key, kind, plain, card_no, uid, nonce):
    header = struct.pack(_HEADER_FMT, VERSION, kind, card_no) + nonce
    enc_key = crypto.derive(transport_key, LABEL_ADMIN_ENC, bytes((kind,)))
    ciphertext = _keystream_xor(enc_key, nonce, plain)
    sealed = header + ciphertext + _tag(transport_key, kind, header, uid, ciphertext)
    blocks = blob_blocks(kind == KIND_DESK)
    return {block: sealed[16 * i:16 * i + 16] for i, block in enumerate(blocks)}


def seal(transport_key, park_keys, card_no, uid, nonce, desk=False):
    """Return {block: 16 bytes} of an admin card's data blocks (trailers: trailer_blocks()).

    Sector 1 carries card info with FLAG_ADMIN under the park keys, so a serving
    terminal refuses the card as not_wallet. The booth blob is always sealed;
    the desk blob too when `desk` is true. `nonce` is NONCE_SIZE random bytes,
    new for every card written.
    """
    _check_transport_key(transport_key)
    uid = bytes(uid)
    if len(uid) not in (4, 7):
        raise Malformed("UIDs are 4 or 7 bytes")
    if len(nonce) != NONCE_SIZE:
        raise Malformed("the nonce is %d bytes" % NONCE_SIZE)
    if not 0 <= card_no <= 0xFFFFFFFF:
        raise Malformed("card number out of range")
    if park_keys.master_b is None and desk:
        raise Malformed("a desk blob needs master B")
    nonce = bytes(nonce)
    info = card.CardInfo(card_no, flags=card.FLAG_ADMIN, perms=0)
    blocks = card_issue.issue_blocks(card.CardKeys(park_keys, uid), info, 0, 0)
    del blocks[card.TRAILER_BLOCK]
    blocks.update(_seal_blob(transport_key, KIND_BOOTH, park_keys.master_a + park_keys.master_mac,
                             card_no, uid, nonce))
    if desk:
        blocks.update(_seal_blob(transport_key, KIND_DESK, park_keys.pack(), card_no, uid, nonce))
        blocks[DESK_SPARE_BLOCK] = bytes(16)
    return blocks


def trailer_blocks(transport_key, park_keys, uid, desk=False):
    """Return {trailer block: 16 bytes} for sector 1 (park keys) and the blob sectors (transport key)."""
    _check_transport_key(transport_key)
    uid = bytes(uid)
    out = {card.TRAILER_BLOCK: card_issue.trailer_block(card.CardKeys(park_keys, uid))}
    for sector in BOOTH_SECTORS + (DESK_SECTORS if desk else ()):
        out[sector * 4 + 3] = (sector_key_a(transport_key, uid, sector) + ADMIN_ACCESS
                               + sector_key_b(transport_key, uid, sector))
    return out


def unseal(transport_key, blocks, uid, desk=False):
    """Verify and open one blob: return (card_no, BoothKeys) or, with desk, (card_no, ParkKeys).

    `blocks` maps block numbers to the 16 bytes read (at least blob_blocks(desk)).
    Raises BadMac when any byte was changed, the blob was copied onto a card
    with another UID, blocks were swapped, or the transport key is not the one
    it was sealed under; Unsupported for an authentic blob of another version.
    """
    _check_transport_key(transport_key)
    uid = bytes(uid)
    kind = KIND_DESK if desk else KIND_BOOTH
    parts = []
    for block in blob_blocks(desk):
        data = blocks.get(block)
        if data is None or len(data) != 16:
            raise Malformed("admin card block %d missing" % block)
        parts.append(bytes(data))
    sealed = b"".join(parts)
    header, ciphertext, tag = sealed[:16], sealed[16:-TAG_SIZE], sealed[-TAG_SIZE:]
    # MAC first: a changed version or kind byte is tampering too (SPEC.md §6.4).
    if not crypto.equal(_tag(transport_key, kind, header, uid, ciphertext), tag):
        raise BadMac("admin card seal")
    version, got_kind, card_no = struct.unpack(_HEADER_FMT, header[:_HEADER_FIXED])
    if version != VERSION:
        raise Unsupported("admin card version %d" % version)
    if got_kind != kind:
        raise Malformed("admin card blob kind")
    enc_key = crypto.derive(transport_key, LABEL_ADMIN_ENC, bytes((kind,)))
    plain = _keystream_xor(enc_key, header[_HEADER_FIXED:], ciphertext)
    if desk:
        return card_no, card_issue.ParkKeys.unpack(plain)
    return card_no, BoothKeys.unpack(plain)
