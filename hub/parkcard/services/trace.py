"""Card trace (追踪分析): where and when a card was used, read from the records its taps left."""

from parkcard.services.errors import Refusal
from parkcard.services.inputs import checked
from parkcard.services.privileges import CARD_QUERY, requires

TRACE_MAX = 500     # the newest uses shown; an older one is in the settlement exports


@requires(CARD_QUERY)
async def card_trace(store, actor, card_no, limit=TRACE_MAX):
    """The newest `limit` uses of a card (rows.CardUse), newest first; Refusal for an unknown card."""
    checked(card_no=card_no)
    if await store.card(card_no) is None:
        raise Refusal("card_not_issued", "card %(card)d is not a card of this park: check its number", card=card_no)
    return await store.card_trace(card_no, max(1, min(int(limit), TRACE_MAX)))
