"""The card blacklist: add and remove cards; every change is a new version pushed to every terminal."""

from parkcard.services.inputs import checked
from parkcard.services.errors import Refusal
from parkcard.services.privileges import BLACKLIST, BLACKLIST_READ, requires
from parkcard.store import NotIssued, audited, version_detail
from parkcard.transport import notify


async def announce(actor, version):
    """Tell the running hub of a blacklist change that took a new version (None: nothing changed); return version."""
    if version is not None:
        await actor.told(notify.BLACKLIST)
    return version


@requires(BLACKLIST)
async def add(store, actor, card_no, reason, force=False):
    """Blacklist a card; return the new version (None: it was listed already).

    ServiceError for a number out of range, or one this park never issued unless force (a card
    found that belongs to another system).
    """
    checked(card_no=card_no)
    try:
        version = await store.blacklist_change(card_no, reason, add=True, issued_only=not force, audit=audited(
            actor.name, "blacklist.add", card_no=card_no, reason=reason, extra=version_detail))
    except NotIssued as exc:
        raise Refusal("card_not_issued", "%(problem)s: nothing changed; check the number (`parkcard blacklist` lists "
                                         "the listed ones), or pass --force to blacklist a card from elsewhere",
                      problem=exc) from None
    return await announce(actor, version)


# Not range-checked: a number stored out of range by an older hub must be removable. Only a listed
# number can be removed, so nothing new out of range is stored.
@requires(BLACKLIST)
async def remove(store, actor, card_no, reason):
    """Take a card off the blacklist; return the new version (None: it was not listed)."""
    version = await store.blacklist_change(card_no, reason, add=False, audit=audited(
        actor.name, "blacklist.remove", card_no=card_no, reason=reason, extra=version_detail))
    return await announce(actor, version)


@requires(BLACKLIST_READ)
async def entries(store, actor, attempts_max):
    """[(BlacklistEntry, taps seen since, [its last attempts_max Attempt, newest first])], by card."""
    counts = await store.attempt_counts()
    return [(entry, counts.get(entry.card_no, 0), await store.attempts(entry.card_no, attempts_max))
            for entry in await store.blacklist_entries()]
