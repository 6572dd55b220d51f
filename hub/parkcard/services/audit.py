"""The operator audit log for people: its newest entries and whether its chain verifies against the database."""

import asyncio
import collections

from parkcard import oplog
from parkcard.domain.explained import Sentence
from parkcard.services.privileges import AUDIT, requires

AUDIT_SHOWN_MAX = 200


@requires(AUDIT)
async def recent(store, actor, last=AUDIT_SHOWN_MAX):
    """(the newest `last` entries, newest first; the verification's one line for people, a Sentence; True when it
    verifies)."""
    anchor = await store.audit_anchor()
    anchor = None if anchor is None else (anchor.seq, anchor.hash)

    def read():
        shown = collections.deque(maxlen=last)
        try:
            for entry in store.oplog.entries():
                shown.append(entry)
        except oplog.AuditLogError:
            pass        # the verification below names the damage
        try:
            result = oplog.verify(store.oplog.path, anchor)
        except FileNotFoundError:
            return list(shown), Sentence("the audit log is empty"), anchor is None or anchor[0] == 0
        return list(reversed(shown)), oplog.explanation(result, anchor), result.ok

    return await asyncio.to_thread(read)
