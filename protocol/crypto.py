"""HMAC-SHA256, the key-derivation function and constant-time compare (SPEC.md §2).

MicroPython has hashlib.sha256 but no hmac module, so HMAC (RFC 2104) is built
here once for both interpreters.
"""

import hashlib

try:
    import hmac as _hmac  # CPython: compare_digest in C, and hashlib states that copy (Mac)
except ImportError:  # MicroPython has no hmac module
    _hmac = None

_BLOCK = 64
_KDF_PREFIX = b"ParkCard-v1|"

# Labels of SPEC.md §2.2; each derived key has exactly one.
LABEL_KEY_A = b"KA"
LABEL_KEY_B = b"KB"
LABEL_CARD_MAC = b"CM"
LABEL_RECORD = b"REC"
LABEL_FRAME = b"FRM"


class Mac:
    """HMAC-SHA256 with a fixed key; the padded keys are computed once."""

    def __init__(self, key):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key + bytes(_BLOCK - len(key))
        self._ipad = bytes(b ^ 0x36 for b in key)
        self._opad = bytes(b ^ 0x5C for b in key)
        # CPython: the padded key blocks hashed once and the states copied per MAC (C calls only; about
        # twice as fast as copying an hmac object, whose copy() is Python). MicroPython's sha256 has no copy().
        self._inner = self._outer = None
        if _hmac is not None:
            self._inner = hashlib.sha256(self._ipad)
            self._outer = hashlib.sha256(self._opad)

    def digest(self, *parts):
        """Return the 32-byte HMAC of the concatenation of parts."""
        if self._inner is not None:
            inner = self._inner.copy()
            for part in parts:
                inner.update(part)
            outer = self._outer.copy()
            outer.update(inner.digest())
            return outer.digest()
        inner = hashlib.sha256(self._ipad)
        for part in parts:
            inner.update(part)
        outer = hashlib.sha256(self._opad)
        outer.update(inner.digest())
        return outer.digest()

    def tag(self, length, *parts):
        """Return the HMAC of parts truncated to length bytes."""
        inner = self._inner
        if inner is not None and len(parts) == 1:
            # CPython, one part (every record and frame MAC the hub checks): digest()'s varargs loop and one
            # call level left out, 2.8 -> 1.6 us a 56-byte record on this machine (timeit, 200,000 tags).
            inner = inner.copy()
            inner.update(parts[0])
            outer = self._outer.copy()
            outer.update(inner.digest())
            return outer.digest()[:length]
        return self.digest(*parts)[:length]


def derive(master, label, *context):
    """KDF of SPEC.md §2.2: HMAC-SHA256(master, prefix | label | len-prefixed context).

    `master` is the key's bytes or a Mac made from them (cheaper when reused).
    """
    parts = [_KDF_PREFIX, label]
    for item in context:
        parts.append(bytes((len(item),)))
        parts.append(item)
    return (master if isinstance(master, Mac) else Mac(master)).digest(*parts)


def _equal(a, b):
    """Compare two byte strings in time independent of where they differ (MicroPython has no hmac module)."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):  # by index: zip makes a tuple per byte on MicroPython, a frame's MAC 352 bytes of heap
        diff |= a[i] ^ b[i]
    return diff == 0


# CPython: compare_digest itself, in C, takes bytes and memoryviews alike (the hub checks two MACs a record).
equal = _hmac.compare_digest if _hmac is not None else _equal
