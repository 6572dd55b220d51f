"""The hub's desk source (SPEC.md §4.6): the records the front desk makes, in their own seq space and key.

The source is a row of the terminals table with id protocol.desk.DESK_SOURCE_ID,
a key made here that never leaves the hub (no bundle, no broker login uses it),
so the ingest path applies desk records as it applies uploads: seqs checked,
exactly once, postings by the same rules.
"""

import secrets

from protocol import desk as D
from protocol import frames

from parkcard.store import audited

SOURCE_NAME = "hub desk records"
SOURCE_KEY_SIZE = 32


async def desk_source(storage, registry, merchant_id, actor_name):
    """The registry state of the desk source, made on first use (for the desk terminal's merchant)."""
    state = registry.get(D.DESK_SOURCE_ID)
    if state is None:
        try:
            await storage.add_terminal(D.DESK_SOURCE_ID, merchant_id, frames.ROLE_DESK,
                                       secrets.token_bytes(SOURCE_KEY_SIZE), SOURCE_NAME,
                                       audit=audited(actor_name, "desk.source", when=lambda _: True,
                                                     terminal_id=D.DESK_SOURCE_ID))
        except ValueError:
            pass            # made meanwhile by another operation: load it
        state = await registry.reload_terminal(D.DESK_SOURCE_ID)
    return state
