"""Webhooks of third parties: an admin registers a URL with the event types it wants and a secret that signs
them (parkcard.domain.webhooks); the running hub delivers them (parkcard.webhooks). Every change is audited."""

import secrets

from parkcard.domain import webhooks as rules
from parkcard.services.errors import Refusal
from parkcard.services.privileges import WEBHOOKS, requires
from parkcard.store import audited

SECRET_BYTES = 32


@requires(WEBHOOKS)
async def add(store, actor, url, events, secret=None):
    """Register a webhook for events from now on; return (its id, the secret: made here when none is given)."""
    try:
        url = rules.checked_url(url)
        events = rules.checked_events(events)
        secret = rules.checked_secret(secret) if secret is not None else secrets.token_urlsafe(SECRET_BYTES)
    except rules.WebhookError as exc:
        raise Refusal.of(exc, "bad_webhook") from None
    webhook_id = await store.add_webhook(url, " ".join(events), secret, actor.name, audit=audited(
        actor.name, "webhook.add", when=lambda _: True, url=url, events=events))
    return webhook_id, secret


@requires(WEBHOOKS)
async def listing(store, actor):
    """[(rows.Webhook, {delivery state: count})] of the active webhooks, by id."""
    counts = await store.webhook_delivery_counts()
    return [(hook, counts.get(hook.id, {})) for hook in await store.webhooks()]


@requires(WEBHOOKS)
async def remove(store, actor, webhook_id):
    """Stop a webhook: nothing more is queued or sent to it. Refusal(webhook_not_found) when none is active."""
    if not await store.remove_webhook(webhook_id, audit=audited(actor.name, "webhook.remove", webhook_id=webhook_id)):
        raise Refusal("webhook_not_found", "webhook %(webhook)d is not registered (or removed already): see "
                                           "`parkcard webhook list`", webhook=webhook_id)
    return True
