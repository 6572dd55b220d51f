"""The hub's webhook sender: turns what ingest stored into the outbox's events and delivers them, signed.

It reads only committed rows (records, records applied after they were stored,
alarms) behind each webhook's cursors, so ingest never waits for it, and an
event is in the outbox (the store) before it is sent, so a hub restart loses
none: a delivery not answered 2xx is tried again after
parkcard.domain.webhooks.retry_delay_s, until ATTEMPTS_MAX. Receivers get at
least once; the event's "id" tells them a repeat.

It sleeps until a commit of this hub stores what may be an event (the store's
`events_added`), until its next retry is due, or for FALLBACK_POLL_S (what
another process wrote, such as a CLI): an idle park costs it no transaction,
and with no webhook registered a round reads one row and writes nothing (and
its sleep asks no retry time: there is nothing to retry).
"""

import asyncio
import logging
import time
from collections import Counter

import httpx

from parkcard.domain import webhooks as rules

log = logging.getLogger("parkcard.webhooks")

FALLBACK_POLL_S = 30.0      # the longest sleep between rounds, for rows a commit of this hub did not announce
BATCH_MAX = 50              # events queued, and deliveries sent at once, per round
SEND_TIMEOUT_S = 10.0       # a receiver that takes longer has failed this attempt
SENDS_AT_ONCE_MAX = 8       # POSTs in flight at once: a receiver is not flooded by a backlog
ERROR_TEXT_MAX = 200


class _LazyClient:
    """The sender's HTTP client, made at its first delivery: a park with no webhook never loads the CA store that
    an httpx client's TLS context reads (a tenth of a second of CPU, megabytes of memory)."""

    def __init__(self):
        self._client = None

    async def post(self, url, **kwargs):
        """httpx.AsyncClient.post, the client made first if it is not yet."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=SEND_TIMEOUT_S, follow_redirects=False)
        return await self._client.post(url, **kwargs)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        if self._client is not None:
            await self._client.aclose()


class WebhookSender:
    """Fills the outbox and delivers it; one per hub (it owns the database's outbox)."""

    def __init__(self, storage, poll_s=FALLBACK_POLL_S, retry_delay_s=rules.retry_delay_s,
                 attempts_max=rules.ATTEMPTS_MAX):
        self.storage = storage
        self.poll_s = poll_s
        self.retry_delay_s = retry_delay_s
        self.attempts_max = attempts_max
        self.stats = Counter()
        self._sending = asyncio.Semaphore(SENDS_AT_ONCE_MAX)
        self._hooks_found = False       # the last round found a webhook registered

    async def run(self):
        """Deliver until cancelled; a failed round (the store away) is logged, counted and tried again. Rounds
        follow each other at once while there is a backlog, else when woken (_idle)."""
        woken = self.storage.events_added
        async with _LazyClient() as client:
            while True:
                woken.clear()       # before the round: a commit during it wakes the next one
                busy = failed = False
                try:
                    busy = await self.round(client)
                except Exception as exc:    # noqa: BLE001 - the sender never stops the hub; the next round retries
                    failed = True
                    self.stats["rounds_failed"] += 1
                    log.warning("event=webhook_round_failed error=%r", exc)
                if busy:
                    await asyncio.sleep(0)
                else:
                    await self._idle(woken, failed)

    async def _idle(self, woken, failed):
        """Sleep until a commit announces new rows, the next retry is due, or poll_s has passed."""
        wait_s = self.poll_s
        if not failed and self._hooks_found:    # with none, no delivery is sent: no retry is due
            try:
                due_at = await self.storage.next_webhook_due_at()
            except Exception as exc:    # noqa: BLE001 - as a failed round: slept on, then tried again
                due_at = None
                log.warning("event=webhook_due_unread error=%r", exc)
            if due_at is not None:
                wait_s = max(0.0, min(wait_s, due_at - time.time()))
        self.stats["sleeps"] += 1
        # asyncio.timeout, not wait_for: on Python 3.11 a cancel landing as wait_for times out comes back as
        # TimeoutError, and the sender would swallow the hub's stop and hold its task group open.
        try:
            async with asyncio.timeout(wait_s):
                await woken.wait()
            self.stats["woken"] += 1
        except TimeoutError:
            pass

    async def round(self, client):
        """Queue the new events, then send every delivery that is due (their outcomes kept in one transaction);
        return True when there was anything to do (there may be more). With no webhook registered it reads the
        list of webhooks and nothing else."""
        hooks = await self.storage.webhooks()
        self._hooks_found = bool(hooks)
        if not hooks:
            return False    # removing a webhook gives its due deliveries up: none is left to send
        currency = await self.storage.park_currency()
        queued = await self.storage.fill_webhook_outbox(
            lambda source, row, wanted: rules.event_of(source, row, wanted, currency), BATCH_MAX, hooks)
        self.stats["queued"] += queued
        due = await self.storage.due_webhook_deliveries(time.time(), BATCH_MAX)
        outcomes = await asyncio.gather(*(self._send(client, d, url, secret) for d, url, secret in due))
        await self.storage.webhook_attempted(outcomes)
        for delivery_id, delivered, _next_at, error, give_up in outcomes:
            self.stats["delivered" if delivered else "given_up" if give_up else "retried"] += 1
            if not delivered:
                log.info("event=webhook_failed delivery=%d error=%r given_up=%s", delivery_id, error, give_up)
        return bool(queued or due)

    async def _send(self, client, delivery, url, secret):
        """POST one delivery; its outcome (delivery id, delivered, next_at, error, give_up)."""
        body = delivery.body.encode("utf-8")
        headers = {"Content-Type": "application/json", rules.EVENT_HEADER: delivery.event,
                   rules.DELIVERY_HEADER: delivery.event_key, rules.SIGNATURE_HEADER: rules.signature(secret, body)}
        try:
            async with self._sending:
                answer = await client.post(url, content=body, headers=headers)
            error = None if 200 <= answer.status_code < 300 else "HTTP %d" % answer.status_code
        except httpx.HTTPError as exc:
            error = ("%s: %s" % (type(exc).__name__, exc))[:ERROR_TEXT_MAX]
        if error is None:
            return delivery.id, True, None, None, False
        attempts = delivery.attempts + 1
        return (delivery.id, False, time.time() + self.retry_delay_s(attempts), error,
                attempts >= self.attempts_max)
