"""The hub's webhook sender: turns what ingest stored into the outbox's events and delivers them, signed.

It reads only committed rows (records, alarms) behind each webhook's cursors, so
ingest never waits for it, and an event is in the outbox (the store) before it
is sent, so a hub restart loses none: a delivery not answered 2xx is tried
again after parkcard.domain.webhooks.retry_delay_s, until ATTEMPTS_MAX.
Receivers get at least once; the event's "id" tells them a repeat.
"""

import asyncio
import logging
import time
from collections import Counter

import httpx

from parkcard.domain import webhooks as rules

log = logging.getLogger("parkcard.webhooks")

POLL_S = 1.0                # how soon a stored event leaves (and a due retry goes)
BATCH_MAX = 50              # events queued, and deliveries sent at once, per round
SEND_TIMEOUT_S = 10.0       # a receiver that takes longer has failed this attempt
ERROR_TEXT_MAX = 200


class WebhookSender:
    """Fills the outbox and delivers it; one per hub (it owns the database's outbox)."""

    def __init__(self, storage, poll_s=POLL_S, retry_delay_s=rules.retry_delay_s, attempts_max=rules.ATTEMPTS_MAX):
        self.storage = storage
        self.poll_s = poll_s
        self.retry_delay_s = retry_delay_s
        self.attempts_max = attempts_max
        self.stats = Counter()

    async def run(self):
        """Deliver until cancelled; a failed round (the store away) is logged, counted and tried again."""
        async with httpx.AsyncClient(timeout=SEND_TIMEOUT_S, follow_redirects=False) as client:
            while True:
                try:
                    await self.round(client)
                except Exception as exc:    # noqa: BLE001 - the sender never stops the hub; the next round retries
                    self.stats["rounds_failed"] += 1
                    log.warning("event=webhook_round_failed error=%r", exc)
                await asyncio.sleep(self.poll_s)

    async def round(self, client):
        """Queue the new events, then send every delivery that is due; return how many were delivered."""
        currency = await self.storage.park_currency()
        self.stats["queued"] += await self.storage.fill_webhook_outbox(
            lambda source, row, wanted: rules.event_of(source, row, wanted, currency), BATCH_MAX)
        due = await self.storage.due_webhook_deliveries(time.time(), BATCH_MAX)
        sent = await asyncio.gather(*(self._send(client, d, url, secret) for d, url, secret in due))
        return sum(sent)

    async def _send(self, client, delivery, url, secret):
        body = delivery.body.encode("utf-8")
        headers = {"Content-Type": "application/json", rules.EVENT_HEADER: delivery.event,
                   rules.DELIVERY_HEADER: delivery.event_key, rules.SIGNATURE_HEADER: rules.signature(secret, body)}
        try:
            answer = await client.post(url, content=body, headers=headers)
            error = None if 200 <= answer.status_code < 300 else "HTTP %d" % answer.status_code
        except httpx.HTTPError as exc:
            error = ("%s: %s" % (type(exc).__name__, exc))[:ERROR_TEXT_MAX]
        if error is None:
            await self.storage.webhook_attempted(delivery.id, True)
            self.stats["delivered"] += 1
            return 1
        attempts = delivery.attempts + 1
        give_up = attempts >= self.attempts_max
        await self.storage.webhook_attempted(delivery.id, False, time.time() + self.retry_delay_s(attempts), error,
                                             give_up=give_up)
        self.stats["given_up" if give_up else "retried"] += 1
        log.info("event=webhook_failed delivery=%d attempts=%d error=%r", delivery.id, attempts, error)
        return 0
