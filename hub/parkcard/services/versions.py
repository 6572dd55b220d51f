"""Park rules kept in numbered versions (the discount rules, the consumption rules): read one, store the next."""

from parkcard.services.errors import Refusal
from parkcard.store import audited
from parkcard.store.booth import VersionMoved


def read(found, version, what, empty, parse):
    """(version, rules) of a stored version (found: its .version and .rules JSON, parse(JSON) -> rules), or (0, empty)
    before the first change; Refusal naming `what` for an asked-for version that is not there."""
    if found is None:
        if version is not None:
            raise Refusal("rules_not_found", "there is no version %(version)d of the %(what)s", version=version,
                          what=what)
        return 0, empty
    return found.version, parse(found.rules)


async def add_next(add, actor, version, text, news, action, **detail):
    """Store the rules' JSON text as the version after `version` by add (the store's method), audited as action, and
    tell the running hub (news); return the new version. Refusal when another change took that version first."""
    try:
        new = await add(version, text, actor.name, audit=audited(actor.name, action, extra=lambda v: dict(version=v),
                                                                 **detail))
    except VersionMoved as exc:
        raise Refusal("version_moved", "%(problem)s: someone changed them meanwhile; repeat the change",
                      problem=exc) from None
    await actor.told(news)
    return new
