"""Service refusals with a stable code, which the API sends as `{"error": {"code": ..., "message": ...}}`."""

from parkcard.domain.explained import Explained
from parkcard.services.privileges import ServiceError

REFUSED = "refused"     # the code of a ServiceError that names none


class Refusal(ServiceError):
    """A ServiceError with a stable machine-readable code (e.g. terminal_not_registered)."""

    def __init__(self, code, message, **values):
        """code: the stable code; message and values: as ServiceError's."""
        super().__init__(message, **values)
        self.code = code

    @classmethod
    def of(cls, exc, code=REFUSED):
        """The Refusal with code that says what exc (a rule's refusal) says, in every language when exc is
        Explained."""
        return cls(code, exc.message, **exc.values) if isinstance(exc, Explained) else cls(code, str(exc))


def code_of(exc):
    """The stable code of a service's refusal."""
    return getattr(exc, "code", REFUSED)
