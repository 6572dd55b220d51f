"""Named protocol errors; never assert on input."""


class ProtocolError(ValueError):
    """Bytes that do not follow SPEC.md; `reason` is a short stable code for logs."""

    reason = "protocol"

    def __init__(self, detail=""):
        super().__init__(detail or self.reason)
        self.detail = detail


class Malformed(ProtocolError):
    """Wrong length, magic, version or field range."""

    reason = "malformed"


class BadMac(ProtocolError):
    """A MAC does not match: forged, corrupted or keyed for someone else."""

    reason = "bad_mac"


class Unsupported(ProtocolError):
    """A well-formed item of a version or type this side does not speak."""

    reason = "unsupported"
