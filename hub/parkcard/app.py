"""The hub runtime: storage, broker link, ingest, fleet and downlinks wired in one TaskGroup.

    hub = Hub("var/parkcard.db", broker_port=1883)
    await hub.start()            # returns once the tasks run; the broker may still be connecting
    ...
    await hub.stop()

`python -m parkcard.app --db PATH --broker-port N` runs a hub until
SIGTERM/SIGINT (tests kill it with SIGKILL to check crash safety). A hub that
cannot serve releases everything and exits EXIT_HUB_FAILED (1) with the reason,
so that its supervisor restarts it; EXIT_USAGE (2) when another hub holds the database.

The Hub builds no business rule of its own: each operation it offers
(register, lock, blacklist, admin cards...) is one call of parkcard.services,
the same the CLI makes, with an Actor whose changes this hub acts on at once.

Single process: the hub claims queued admin card issues (run_card_requests)
and keeps the desk writes it waits for (_card_writes) in memory; with the
terminals' sequence state (parkcard.ingest.registry) this is why one hub
process owns a database (parkcard.hub_lock).
"""

import argparse
import asyncio
import functools
import itertools
import logging
import os
import signal
import time

from protocol import card, card_write, desk as desk_protocol, frames, hub_frames, topics

from parkcard.api.metrics import HubMetrics
from parkcard.desk import DeskLink
from parkcard.domain.lifecycle import AdminCardState, QuarantineReason
from parkcard.hub_lock import HubLockedError
from parkcard.ingest.downlink import Downlink
from parkcard.ingest.fleet import Fleet
from parkcard.ingest.pipeline import Ingest
from parkcard.ingest.registry import Registry, merchant_settings
from parkcard.services import admin_cards, blacklist, gates, merchants, occupancy, park, repricing, terminals, tickets
from parkcard.services import desk as desk_service
from parkcard.services.desk import AtDesk, DeskPath
from parkcard.services.desk import replacement as desk_replacement
from parkcard.services.desk import requests as desk_requests
from parkcard.services.privileges import Actor, ServiceError
from parkcard.store import StoreUnavailable, hub_lock_for, is_postgres, is_transient, store_for
from parkcard.transport import notify
from parkcard.transport.mqtt_link import DOWNLINK_QUEUED_MAX, MqttLink
from parkcard.web.live import Beacon
from parkcard.webhooks import WebhookSender

log = logging.getLogger("parkcard.hub")

EXIT_HUB_FAILED = 1            # the hub could not serve: a supervisor restarts it (README, "Reliability")
EXIT_USAGE = 2                 # a mistake to correct first (another hub holds the database): restarting won't help
# A database transaction stores what is queued, up to BATCH_FRAMES_MAX frames and about BATCH_BYTES_MAX bytes
# of them (4,096 records of 64 bytes, what 64 full upload frames hold). Bounded in bytes, not frames: the
# 8-record frames terminals send fill a transaction as the 64-record ones do, and under load every COMMIT,
# with its wait for the disk (synchronous=FULL), is shared by 4,096 records, not 512.
BATCH_FRAMES_MAX = 1024
BATCH_BYTES_MAX = 4096 * 64
CARD_WRITE_TIMEOUT_S = 60       # a cashier presents the blank card within a minute
RECHECK_S = 0.05
STORAGE_RETRY_S_MIN = 0.05     # first wait after a write failed for want of disk or I/O
STORAGE_RETRY_S_MAX = 5.0      # the longest wait between retries during an outage
QUARANTINE_DETAIL_MAX = 500
# Tries of one after-commit step (a downlink, an authorisation) that fails other than for want of storage:
# a bug or a bad value fails every time, and the consumer must move on; what is given up is counted.
AFTER_COMMIT_ATTEMPTS_MAX = 5
# The CLI tells the running hub what it changed at once (parkcard.transport.notify); this poll is the safety
# net for a notice that was lost (no datagram is retried).
REGISTRY_POLL_S = 1.0
NIGHTLY_RESET_CHECK_S = 60.0    # how often the hub looks for an area whose park day began (its reset is exact)
# How often the hub looks whether a replaced card's hold is due for release (SPEC.md §4.13), and asks the
# terminals that still lag behind its loss for their status; also once at start, so a restart releases too.
HOLD_CHECK_S = 5.0


class HubFailed(RuntimeError):
    """The hub cannot serve (a task failed, or start-up failed after the database opened); everything is released.

    A process that meets it exits EXIT_HUB_FAILED so that its supervisor starts it again.
    """

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


async def _named_failure(name, coro):
    """Run one of the hub's tasks; a failure becomes HubFailed naming the task (cancellation passes)."""
    try:
        return await coro
    except Exception as exc:
        # The traceback only at DEBUG: the reason line says what failed; --log-level DEBUG says where.
        log.debug("event=task_failed task=%s", name, exc_info=True)
        raise HubFailed("task %s failed: %s" % (name, _reason(exc))) from exc


def _reason(exc):
    """One line naming an exception: its type and message."""
    return "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__


class Hub:
    """One park hub. All public methods are coroutines run on the hub's event loop."""

    def __init__(self, db_path, broker_host="127.0.0.1", broker_port=1883, client_id="parkcard-hub",
                 username=None, password=None, park_keys=None, batch_frames_max=BATCH_FRAMES_MAX,
                 batch_bytes_max=BATCH_BYTES_MAX,
                 queue_max=1024, tls_ca=None, transport_key=None, on_terminals_added=None, lock=None,
                 downlink_queued_max=DOWNLINK_QUEUED_MAX, api=None):
        """park_keys and transport_key (parkcard.security.secure.hub_kwargs) are needed to issue cards and admin cards.

        `await on_terminals_added(hub, ids)` runs when the running hub finds terminals registered by
        another process, e.g. to rewrite the broker's password file (parkcard.security.secure.broker_refresher).
        lock: a HubLock of db_path already taken (`parkcard up` takes it before it starts a broker);
        without one, open() takes it.
        api: a parkcard.api.server.ApiServer to run as one of the hub's tasks (/api/v1 and /metrics).
        """
        self.storage = store_for(db_path)
        self.lock = lock or hub_lock_for(db_path)     # one hub per database (parkcard.hub_lock, PgHubLock)
        self.notices = notify.Listener(db_path)  # what the CLI changed (parkcard.transport.notify)
        self._blacklist_pushed = 0               # the newest blacklist version pushed to every terminal
        self.registry = Registry(self.storage)
        self.link = MqttLink(broker_host, broker_port, client_id, username, password, queue_max, tls_ca,
                             downlink_queued_max)
        self.ingest = Ingest(self.storage, self.registry)
        self.fleet = Fleet(self.storage, self.registry)
        self.downlink = Downlink(self.storage, self.registry, self.link.publish)
        self.park_keys = park_keys
        self.transport_key = transport_key
        self.on_terminals_added = on_terminals_added
        self.batch_frames_max = batch_frames_max
        self.batch_bytes_max = batch_bytes_max
        self._task = None
        self._link_started = False     # link.start() was called: stop() must stop paho's thread
        self._settled = None
        self.desk_link = DeskLink(self.registry, self.downlink)     # desk orders and their reports (SPEC.md §5.9)
        self.webhooks = WebhookSender(self.storage)                 # third parties' events, from the outbox
        self._desk_tasks = set()   # desk operations the CLI queued, under way (parkcard.services.desk.requests)
        self.desk_path = DeskPath(self.storage, self.registry, self.ingest, self.desk_link, park_keys)
        self.desk_path.write_card = self.write_card
        self.hold_check_s = HOLD_CHECK_S
        self._card_writes = {}     # request_id -> (desk terminal, uid, future of (status, block))
        self._card_tasks = {}      # request id -> task of an admin card issue in progress (queued by the CLI)
        self._ticket_sale_tasks = {}   # request id -> task of a ticket sale in progress (queued by the CLI)
        self._card_write_ids = itertools.count(int(time.time()) & 0x7FFFFFFF)
        self.batches = 0
        self.failed_messages = 0    # kept in quarantine as hub_error (see _one_by_one)
        self.after_commit_retries = 0       # after-commit steps tried again (see _after_commit)
        self.sales_repriced = 0             # booth sales the hub priced again (SPEC.md §4.11)
        self.repricing_differences = 0      # ... and priced differently: alarmed
        self.after_commit_given_up = 0      # ... and given up after AFTER_COMMIT_ATTEMPTS_MAX
        self.storage_errors = 0     # writes that failed because the store could not be written
        self.storage_down_since = None      # monotonic time of the first failed write of an outage
        self.storage_down_error = None
        self.api = api
        self.metrics = HubMetrics()     # the hub's own Prometheus registry (parkcard.api.metrics)
        self.api_told = self._changed   # what an API key's Actor announces: acted on as this hub's own changes
        self.changes = Beacon()         # bumped at each commit a live page shows (parkcard.web: the fleet)

    # -- lifecycle
    async def open(self):
        """Take the database's hub lock, open it and load state, without the broker (desk-only use).

        Raises HubLockedError while another hub runs on the same database.
        """
        self.lock.acquire()
        try:
            await self.storage.open()
            await self.registry.load()
            await self.ingest.load()
            # Changes older than this hub reach terminals by their T_SYNC at connect.
            self._blacklist_pushed = await self.storage.blacklist_version()
            # A desk request a hub started and never finished was that hub's when it died (this one holds the
            # lock now): it is queued again and resolved under its operation id, which never charges twice.
            await self.storage.requeue_started_desk_requests()
        except BaseException:
            await self.storage.close()
            self.lock.release()
            raise
        self._settled = asyncio.Condition()
        return self

    async def start(self):
        """Open the database, connect to the broker and start the tasks.

        Raises HubFailed, with everything released, when start-up fails after the database opened.
        """
        await self.open()
        try:
            self.notices.start()
            if self.api is not None:
                self.api.bind()         # a port taken stops the start, before anything connects
            self._link_started = True
            await self.link.start()
        except Exception as exc:
            await self._close()
            raise HubFailed("start-up failed: %s" % _reason(exc)) from exc
        except BaseException:
            await self._close()
            raise
        self._task = asyncio.create_task(self._run_tasks(), name="hub")
        log.info("event=hub_started db=%s broker=%s:%d", self.storage.path, self.link.host, self.link.port)
        return self

    async def _run_tasks(self):
        """The hub's long-lived tasks; the first one to fail stops the others and raises HubFailed."""
        try:
            async with asyncio.TaskGroup() as tg:
                for name, coro in (("consume", self._consume()), ("registry-poll", self._poll_registry()),
                                   ("notices", self._take_notices()), ("nightly-reset", self._nightly_reset()),
                                   ("holds", self._release_holds()), ("webhooks", self.webhooks.run())):
                    tg.create_task(_named_failure(name, coro), name=name)
                if self.api is not None:
                    tg.create_task(_named_failure("api", self.api.serve(self)), name="api")
        except ExceptionGroup as group:
            failures = [exc for exc in group.exceptions if isinstance(exc, HubFailed)]
            raise (failures or [HubFailed(_reason(group))])[0] from group

    async def stop(self):
        """Stop the tasks, then always close the broker link, the database and the lock.

        A task that had failed raises its HubFailed here, after everything is released.
        """
        task, self._task = self._task, None
        try:
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        finally:
            await self._close()

    async def _close(self):
        """Release what open() and start() took, each step even if an earlier one fails (idempotent)."""
        try:
            if self._link_started:
                self._link_started = False
                await self.link.stop()
        finally:
            try:
                self.notices.close()
                if self.api is not None:
                    self.api.close()
            finally:
                try:
                    await self.storage.close()
                finally:
                    if self.lock.held:
                        self.lock.release()
                        log.info("event=hub_stopped")

    async def run(self):
        """Start and serve until cancelled; raise HubFailed (everything released) when the hub cannot serve."""
        try:
            await self.start()
            try:
                await self._task
            finally:
                await self.stop()
        except HubFailed as exc:
            log.error("event=hub_failed reason=%r", exc.reason)
            raise

    async def wait_connected(self, timeout_s=10):
        """Wait until the broker session is up; TimeoutError says which broker did not answer."""
        try:
            await asyncio.wait_for(self.link.connected.wait(), timeout_s)
        except asyncio.TimeoutError:
            raise TimeoutError("no broker session with %s:%d within %d s"
                               % (self.link.host, self.link.port, timeout_s)) from None

    # -- the one consumer
    async def _consume(self):
        while True:
            batch = await self._next_batch()
            try:
                await self._handle_until_stored(batch)
            finally:
                self.link.release(len(batch))

    async def _next_batch(self):
        """Wait for a frame, then take what else is queued, up to batch_frames_max frames and batch_bytes_max
        bytes (the frame that crosses it included)."""
        batch = await self.link.get_batch(1)
        return batch + self.link.take_queued(self.batch_frames_max - 1, self.batch_bytes_max - len(batch[0].payload))

    async def _handle_until_stored(self, batch):
        """Store a batch, acknowledge what each part committed, then do the after-commit work.

        Uplinks commit in one ingest transaction, status reports in one fleet
        transaction; each part is acknowledged to the broker as soon as it is
        committed. Committed means acknowledged: what fails after a commit
        (the fleet part, downlinks, audit entries of authorisations) is
        retried on its own and never sends a stored message down the
        one-by-one path, where it could be kept as hub_error.
        """
        ups = [m for m in batch if not m.topic.endswith("/status")]
        statuses = [m for m in batch if m.topic.endswith("/status")]
        results = await self._stored(ups, self._store_ups) if ups else []
        if statuses:
            await self._stored(statuses, self._store_statuses)
        self.batches += 1
        self.metrics.batch(len(batch))
        for result in results:
            await self._after_commit(result)
        async with self._settled:
            self._settled.notify_all()
        self.changes.bump()

    async def _store_ups(self, messages):
        """Apply uplinks in one transaction and acknowledge them; return [BatchResult]."""
        result = await self.ingest.apply([(m.topic, m.payload) for m in messages])
        self._ack(messages)
        return [result]

    async def _store_statuses(self, messages):
        """Apply status reports in one transaction and acknowledge them."""
        await self.fleet.apply([(m.topic, m.payload) for m in messages])
        self._ack(messages)
        return []

    def _ack(self, messages):
        """PUBACK messages whose transaction committed: now the broker may forget them."""
        self.link.ack([message.mid for message in messages])

    async def _stored(self, messages, store):
        """Run store(messages) until it commits; while the store cannot be written, ack nothing and retry.

        A full disk or an I/O error is the hub's fault, not the message's: the
        messages wait (and, through the link's bounded queue, so does the broker)
        until a write succeeds again, then they are handled as if nothing happened.
        Any other failure rolled the transaction back: the messages are stored one by one.
        """
        delay_s = STORAGE_RETRY_S_MIN
        while True:
            try:
                try:
                    results = await store(messages)
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    log.exception("event=batch_failed frames=%d", len(messages))
                    results = await self._one_by_one(messages, store)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._storage_unavailable(exc)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, STORAGE_RETRY_S_MAX)
                continue
            await self._storage_available()
            return results

    def _storage_unavailable(self, exc):
        """Count a failed write; log the first one of an outage (the alarm comes when it ends)."""
        self.storage_errors += 1
        now = time.monotonic()
        if self.storage_down_since is None:
            self.storage_down_since = now
            self.storage_down_error = str(exc)
            log.error("event=storage_unavailable error=%r action=retrying", str(exc))

    async def _storage_available(self):
        """After an outage: raise an alarm that says how long the hub could not write, and why."""
        if self.storage_down_since is None:
            return
        since, error = self.storage_down_since, self.storage_down_error
        down_s = time.monotonic() - since
        detail = "the database could not be written for %.0f s (%s): nothing was acknowledged meanwhile" % (
            down_s, error)
        self.storage_down_since = self.storage_down_error = None
        log.warning("event=storage_recovered down_s=%.1f", down_s)
        for attempt in range(1, AFTER_COMMIT_ATTEMPTS_MAX + 1):
            try:
                await self.storage.write(lambda tx: tx.add_alarm("storage", None, None, None, detail))
                return
            except Exception as exc:      # the alarm is news, not money: never hold the consumer for long
                log.warning("event=alarm_not_stored attempt=%d error=%r", attempt, str(exc))
                if not is_transient(exc):
                    return
                # A server just back may still refuse a pooled connection: the next write tries again.
                await asyncio.sleep(STORAGE_RETRY_S_MIN * attempt)
        if self.storage_down_since is None:
            self.storage_down_since, self.storage_down_error = since, error     # told after the next commit

    async def _one_by_one(self, messages, store):
        """After a part failed: store its messages alone, and keep the one that still fails in quarantine.

        A failed transaction rolled back, and applying a record twice is a
        duplicate, so retrying is safe. The message that fails on its own is
        stored with its reason and acknowledged: it must not stop the hub, nor
        come back from the broker to stop it again after a restart. A store
        that cannot be written fails every message alike: that error goes up,
        to be retried, and nothing is quarantined for it.
        """
        results = []
        for message in messages:
            try:
                results += await store([message])
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.exception("event=message_failed topic=%s", message.topic)
                self.failed_messages += 1
                detail = repr(exc)[:QUARANTINE_DETAIL_MAX]
                await self.storage.write(lambda tx: tx.add_quarantine(
                    message.payload, message.topic, topics.terminal_of(message.topic), QuarantineReason.HUB_ERROR,
                    detail))
                self._ack([message])
        return results

    async def _after_commit(self, result):
        """The work a committed batch asks for (parkcard.app._after_steps), each step retried on its own.

        A step that cannot be written for want of disk or I/O waits like a batch does; a step that
        fails otherwise is tried AFTER_COMMIT_ATTEMPTS_MAX times, then given up and counted: each can be
        made again (an ack when the terminal resends, a sync answer when it asks again, an authorisation
        at the next admin card tap), and none undoes the commit.
        """
        for name, step in self._after_steps(result):
            attempt, delay_s = 1, STORAGE_RETRY_S_MIN
            while True:
                try:
                    await step()
                    break
                except Exception as exc:
                    if is_transient(exc):
                        self._storage_unavailable(exc)
                    elif attempt >= AFTER_COMMIT_ATTEMPTS_MAX:
                        self.after_commit_given_up += 1
                        log.error("event=after_commit_given_up step=%s attempts=%d error=%r", name, attempt,
                                  _reason(exc))
                        break
                    else:
                        attempt += 1
                        self.after_commit_retries += 1
                        log.warning("event=after_commit_retry step=%s error=%r", name, _reason(exc))
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, STORAGE_RETRY_S_MAX)
            await self._storage_available()

    def _after_steps(self, result):
        """[(name, async step)] of what a committed BatchResult asks for, in order."""
        steps = []
        for terminal_id, (applied, rejected) in result.acks.items():
            steps.append(("ack", functools.partial(self._send_ack, terminal_id, applied, rejected)))
        if result.blacklist_versions:
            steps.append(("blacklist", self.push_blacklist_news))
        if result.credits_granted:
            steps.append(("credits", self.downlink.push_credits))
        for sync in result.syncs:   # (terminal_id, blacklist_version, config_version, chunk_cards_max, credits, prices)
            steps.append(("sync", functools.partial(self.downlink.answer_sync, *sync)))
        for terminal_id, admin_card_no, uid in result.auths:
            steps.append(("auth", functools.partial(self._authorise, terminal_id, admin_card_no, uid)))
        if result.card_results:
            steps.append(("card_results", functools.partial(self._card_results, result.card_results)))
        if result.booth_sales:
            steps.append(("repricing", functools.partial(self._reprice, result.booth_sales)))
        if result.desk_reports:
            steps.append(("desk_reports", functools.partial(self._desk_reports, result.desk_reports)))
        return steps

    async def _reprice(self, sales):
        """Price the batch's booth sales again (parkcard.services.repricing) and count what it found."""
        done = await repricing.reprice_sales(self.storage, sales)
        self.sales_repriced += len(done)
        self.repricing_differences += sum(1 for r in done if r.difference is not None)

    async def _send_ack(self, terminal_id, applied, rejected):
        """T_ACK with the terminal's acked_upto as it is now (never below what this batch stored)."""
        await self.downlink.ack(terminal_id, self.registry.get(terminal_id).acked_upto, applied, rejected)

    async def _card_results(self, card_results):
        """Hand each desk's card write report to the write waiting for it."""
        for terminal_id, request_id, uid, status, block in card_results:
            waiter = self._card_writes.get(request_id)
            if waiter is not None and waiter[0] == terminal_id and waiter[1] == uid and not waiter[2].done():
                waiter[2].set_result((status, block))

    async def _desk_reports(self, reports):
        """Hand each desk report to the desk order waiting for it."""
        self.desk_link.deliver(reports)

    async def audit(self, actor, action, **details):
        """Append an operator action to the audit log, anchored in the database (in the writer's thread)."""
        await self.storage.audit(actor, action, **details)

    async def _authorise(self, terminal_id, admin_card_no, uid):
        """Answer T_AUTH as parkcard.services.terminals.authorise decides, then configure an authorised terminal."""
        reason = await terminals.authorise(self.storage, self.actor(), terminal_id, admin_card_no, uid)
        if reason is not None:
            log.warning("event=auth_rejected terminal=%d admin_card=%d reason=%s", terminal_id, admin_card_no,
                        reason)
            await self.downlink.command(terminal_id, frames.CMD_AUTH_REJECT)
            return
        self.registry.get(terminal_id).authorised = 1
        log.info("event=authorised terminal=%d admin_card=%d", terminal_id, admin_card_no)
        await self.downlink.command(terminal_id, frames.CMD_AUTH_CONFIRM)
        await self.downlink.config(terminal_id)
        await self.downlink.time(terminal_id)

    # -- waiting for facts (tests, demo)
    async def wait_until(self, predicate, timeout_s=10):
        """Wait until predicate() is true, re-checked after every batch (and every RECHECK_S for
        facts a batch does not announce, like a reconnection); raise TimeoutError at the deadline."""
        async def waiting():
            async with self._settled:
                while not predicate():
                    try:
                        await asyncio.wait_for(self._settled.wait(), RECHECK_S)
                    except TimeoutError:
                        pass
        await asyncio.wait_for(waiting(), timeout_s)

    async def wait_settled(self, terminal_id, seq, timeout_s=10):
        """Wait until every record of terminal_id with seq <= seq is durably stored."""
        await self.wait_until(lambda: self.registry.get(terminal_id).acked_upto >= seq, timeout_s)

    # -- operations: each is one service (parkcard.services), called here as the CLI calls it
    def operator_actor(self, name, roles):
        """An Actor for an operator's operation this hub runs (one the CLI queued): its roles, this hub's notices."""
        return Actor(name, self._changed, roles)

    def actor(self, name="hub"):
        """An Actor for operations this hub runs: its changes are acted on at once (take_notice)."""
        return Actor(name, self._changed)

    async def _changed(self, news, terminal_id):
        """What a service committed through this hub: reload the terminal it changed, then act as on a notice."""
        if terminal_id is not None:
            await self.registry.reload_terminal(terminal_id)
        await self.take_notice(set(news))
        return True

    async def add_merchant(self, merchant_id, name, commission_bps, park_id=1, actor="hub"):
        """parkcard.services.merchants.add."""
        return await merchants.add(self.storage, self.actor(actor), merchant_id, name, commission_bps, park_id)

    async def set_merchant(self, merchant_id, name=None, commission_bps=None, actor="hub"):
        """parkcard.services.merchants.change."""
        return await merchants.change(self.storage, self.actor(actor), merchant_id, name, commission_bps)

    async def refresh_merchant_rates(self):
        """Reload the terminals whose merchant's commission or park changed in the database (`merchant set`)."""
        rates = {m.id: merchant_settings(m) for m in await self.storage.merchants()}
        held = {s.merchant_id: (s.rate_bps, s.park_id, s.park_bears_discount) for s in self.registry.terminals.values()}
        for merchant_id in {m for m, settings in held.items() if rates.get(m, settings) != settings}:
            await self.reload_merchant(merchant_id)

    async def reload_merchant(self, merchant_id):
        """Reload the registry entries of a merchant's terminals (its commission or park changed)."""
        for state in list(self.registry.terminals.values()):
            if state.merchant_id == merchant_id:
                await self.registry.reload_terminal(state.id)

    async def register_terminal(self, terminal_id, merchant_id, role, name, key=None, fixed_price_cents=0,
                                category=0, broker_password=None, actor="hub"):
        """parkcard.services.terminals.register; return the terminal's 32-byte key (see terminal_credentials)."""
        key, _password = await terminals.register(self.storage, self.actor(actor), terminal_id, merchant_id, role,
                                                  name, key, fixed_price_cents, category, broker_password)
        return key

    async def terminal_credentials(self):
        """{terminal_id: broker password} of every registered terminal (for the broker's password file)."""
        return await self.storage.broker_credentials()

    # -- terminal control
    async def lock_terminal(self, terminal_id, actor="hub"):
        """parkcard.services.terminals.lock (the command is sent at once)."""
        return await terminals.lock(self.storage, self.actor(actor), terminal_id)

    async def unlock_terminal(self, terminal_id, actor="hub"):
        """parkcard.services.terminals.unlock."""
        return await terminals.unlock(self.storage, self.actor(actor), terminal_id)

    async def deauthorise_terminal(self, terminal_id, actor="hub"):
        """parkcard.services.terminals.deauthorise (the command is sent at once)."""
        return await terminals.deauthorise(self.storage, self.actor(actor), terminal_id)

    async def send_pending_commands(self):
        """Send the queued terminal commands (by this hub or the CLI) and mark them sent; return how many."""
        sent = 0
        for command_id, terminal_id, command, _actor in await self.storage.pending_commands():
            await self.registry.reload_terminal(terminal_id)        # the flags the command came with
            if await self.downlink.command(terminal_id, command) is None:
                continue        # not published (the link is full): it stays queued for the next poll
            await self.storage.command_sent(command_id)
            sent += 1
        return sent

    async def _poll_registry(self):
        """Pick up what another process (the CLI) changed and whose notice was lost."""
        while True:
            await asyncio.sleep(REGISTRY_POLL_S)
            try:
                await self.poll_registry()
                await self.push_blacklist_news()
            except Exception:   # a bad poll must not stop ingest; the next one tries again
                log.exception("event=registry_poll_failed")

    async def _nightly_reset(self):
        """At each area's daily reset, occupancy counts again from that instant (pretix's exit_all_at)."""
        while True:
            try:
                for area, at_s in (await occupancy.reset_due(self.storage, self.actor(), time.time())).items():
                    log.info("event=occupancy_reset area=%d at=%d", area, at_s)
            except Exception:   # a failed reset must not stop ingest; the next check does it with the same instant
                log.exception("event=occupancy_reset_failed")
            await asyncio.sleep(NIGHTLY_RESET_CHECK_S)

    async def _release_holds(self):
        """Release replaced cards' holds as they fall due, at start and every hold_check_s."""
        while True:
            try:
                await self.release_holds()
            except Exception:   # a failed round must not stop ingest; the next one tries again
                log.exception("event=hold_release_failed")
            await asyncio.sleep(self.hold_check_s)

    async def release_holds(self, now_s=None):
        """parkcard.services.desk.replacement.release_due_holds now; the credits pushed, lagging terminals asked
        for their status (it says which blacklist they hold and their last record). Returns what was released."""
        released, lagging = await desk_replacement.release_due_holds(
            self.storage, self.actor(), time.time() if now_s is None else now_s)
        if any(credit is not None for _row, credit in released):
            await self.downlink.push_credits()
        for terminal_id in sorted(lagging):
            if self.registry.get(terminal_id) is not None:
                await self.downlink.command(terminal_id, frames.CMD_REPORT_STATUS)
        for row, _credit in released:
            log.info("event=hold_released old_card=%d new_card=%d released_cents=%d", row.old_card_no,
                     row.new_card_no, row.released_cents)
        return released

    async def _take_notices(self):
        """Act on what the CLI says it committed, as soon as it says so."""
        while True:
            news = await self.notices.wait()
            try:
                await self.take_notice(news)
            except Exception:   # a failed notice must not stop ingest; the poll picks the change up
                log.exception("event=notice_failed notices=%s", ",".join(sorted(news)))

    async def take_notice(self, news):
        """Act on parkcard.transport.notify names: push new blacklist versions and price lists, load terminals, send
        commands."""
        log.debug("event=notice notices=%s", ",".join(sorted(news)))
        if notify.BLACKLIST in news:
            await self.push_blacklist_news()
        if notify.PRICES in news:
            await self.downlink.push_prices()
        if notify.CREDITS in news:
            await self.downlink.push_credits()
        if notify.RULES in news:
            await self.downlink.push_spend_rules()
        if notify.STAFF in news:
            await self.downlink.push_staff()
        if news - {notify.BLACKLIST, notify.PRICES, notify.CREDITS, notify.RULES, notify.STAFF}:
            await self.poll_registry()
        self.changes.bump()

    async def push_blacklist_news(self):
        """Push the blacklist versions not yet pushed (whoever made them) to every terminal; return how many."""
        current = await self.storage.blacklist_version()
        start = self._blacklist_pushed
        if current <= start:
            return 0
        self._blacklist_pushed = current   # before the await: a concurrent call must not push it again
        await self.downlink.push_blacklist(start)
        log.info("event=blacklist_pushed from=%d to=%d", start, current)
        return current - start

    async def run_card_requests(self):
        """Start the admin card issues the CLI queued, each at its desk terminal; return how many started."""
        requests = await self.storage.start_card_requests()
        for request_id, desk_terminal_id, uid, desk, actor in requests:
            task = asyncio.create_task(self._card_request(request_id, desk_terminal_id, uid, desk, actor),
                                       name="card-request-%d" % request_id)
            self._card_tasks[request_id] = task
            task.add_done_callback(lambda _t, rid=request_id: self._card_tasks.pop(rid, None))
        for request_id in await self.storage.cancelled_card_requests():
            task = self._card_tasks.get(request_id)
            if task is not None:    # the CLI gave up waiting: stop waiting for the desk too
                task.cancel()
        return len(requests)

    async def _card_request(self, request_id, desk_terminal_id, uid, desk, actor):
        try:
            await self.issue_admin_card_at_desk(uid, desk_terminal_id, desk=desk, actor=actor,
                                                request_id=request_id)
        except ServiceError as exc:
            await admin_cards.fail_request(self.storage, request_id, str(exc))

    async def run_ticket_sales(self):
        """Start the ticket sales the CLI queued, each at its desk terminal; return how many started."""
        started = await self.storage.start_ticket_sales()
        for request in started:
            task = asyncio.create_task(self._ticket_sale(request), name="ticket-sale-%d" % request.id)
            self._ticket_sale_tasks[request.id] = task
            task.add_done_callback(lambda _t, rid=request.id: self._ticket_sale_tasks.pop(rid, None))
        return len(started)

    async def _ticket_sale(self, request):
        # The sale runs to the desk's answer or its own timeout even if the CLI stops waiting: the
        # ticket's state then says what the desk did, and the request what the operator is told.
        try:
            # As the operator who asked (their roles, their shift); a request queued before roles were kept is
            # the hub's own, as it was then.
            who = self.operator_actor(request.actor, request.roles) if request.roles else request.actor
            sale = await self.sell_ticket_at_desk(request.desk_terminal_id, request.product_id, request.card_no,
                                                  request.start_day, actor=who, replace=request.replace)
        except ServiceError as exc:
            await tickets.finish_request(self.storage, request.id, error=str(exc))
        except Exception as exc:    # the requester must hear of it rather than wait for an answer that never comes
            log.exception("event=ticket_sale_failed request=%d", request.id)
            await tickets.finish_request(self.storage, request.id, error="the hub could not sell the ticket (%s): "
                                         "see the hub's log, then try again" % _reason(exc))
        else:
            await tickets.finish_request(self.storage, request.id, serial=sale.serial)

    async def poll_registry(self):
        """One poll: load terminals registered elsewhere (and tell on_terminals_added), send queued commands."""
        added = [tid for tid in await self.storage.terminal_ids() if self.registry.get(tid) is None]
        for terminal_id in added:
            await self.registry.reload_terminal(terminal_id)
            log.info("event=terminal_loaded terminal=%d", terminal_id)
        if added and self.on_terminals_added is not None:
            await self.on_terminals_added(self, added)
        await self.refresh_merchant_rates()
        await self.run_card_requests()
        queued = [] if self.park_keys is None else await desk_requests.run_queued(self.desk_path, self.operator_actor)
        for task in queued:     # a hub without the park's keys takes no desk operation: they stay queued
            self._desk_tasks.add(task)          # kept until it ends (the CLI waits for its result in the store)
            task.add_done_callback(self._desk_tasks.discard)
        await self.run_ticket_sales()
        return added, await self.send_pending_commands()

    # -- admin system cards
    async def issue_admin_card(self, uid, desk_terminal_id, desk=True, actor="hub"):
        """parkcard.services.admin_cards.issue with this hub's park keys; return an AdminCardIssue."""
        return await admin_cards.issue(self.storage, self.actor(actor), self.park_keys, self.transport_key,
                                       desk_terminal_id, uid, desk)

    async def write_card(self, desk_terminal_id, uid, blocks, timeout_s=CARD_WRITE_TIMEOUT_S, actor="hub"):
        """Have a desk terminal write {block: 16 bytes} onto the blank card with this UID (SPEC.md §5.7).

        Returns when the desk reports the card written; raises ServiceError when it reports a failure or
        does not answer within timeout_s (the card was not presented, or the desk is offline).
        """
        state = self.registry.get(desk_terminal_id)
        if state is None or state.role != frames.ROLE_DESK:
            raise ServiceError("terminal %(terminal)d is not a registered desk terminal", terminal=desk_terminal_id)
        request_id = next(self._card_write_ids) & 0xFFFFFFFF
        done = asyncio.get_running_loop().create_future()
        self._card_writes[request_id] = (desk_terminal_id, bytes(uid), done)
        try:
            await self.downlink.send(desk_terminal_id, frames.T_CARD_WRITE,
                                     hub_frames.card_write_body(request_id, uid, blocks))
            try:
                status, block = await asyncio.wait_for(done, timeout_s)
            except asyncio.TimeoutError:
                raise ServiceError("desk terminal %(terminal)d did not write the card within %(seconds)d s: is it "
                                   "online, and was the card presented?", terminal=desk_terminal_id,
                                   seconds=timeout_s) from None
        finally:
            self._card_writes.pop(request_id, None)
        if status != card_write.CARD_OK:
            if status == card_write.CARD_NOT_BLANK:
                raise ServiceError("desk terminal %(terminal)d could not write the card (not a blank card, block "
                                   "%(block)d): present a blank card and try again", terminal=desk_terminal_id,
                                   block=block)
            raise ServiceError("desk terminal %(terminal)d could not write the card (the card left during the write, "
                               "block %(block)d): present a blank card and try again", terminal=desk_terminal_id,
                               block=block)
        await self.audit(actor, "card.written", desk_terminal_id=desk_terminal_id, uid=bytes(uid),
                         blocks=len(blocks))

    async def issue_admin_card_at_desk(self, uid, desk_terminal_id, desk=True, timeout_s=CARD_WRITE_TIMEOUT_S,
                                       actor="hub", request_id=None):
        """Issue an admin system card and have the desk terminal write it onto the blank card; return the issue.

        The card is pending until the desk reports it written; a failure or timeout leaves it failed, a
        cancellation (of the CLI's request_id) abandoned: only a written card authorises a terminal.
        """
        issued = await self.issue_admin_card(uid, desk_terminal_id, desk=desk, actor=actor)
        try:
            await self.write_card(desk_terminal_id, uid, {**issued.blocks, **issued.trailers}, timeout_s, actor)
        except ServiceError as exc:
            await self._settle_admin_card(issued.card_no, False, request_id, str(exc), actor)
            raise
        except asyncio.CancelledError:
            # Shielded: the card must not stay pending because its waiter went away.
            await asyncio.shield(self._settle_admin_card(issued.card_no, False, request_id,
                                                         "cancelled before the desk reported", actor))
            raise
        state = await self._settle_admin_card(issued.card_no, True, request_id, None, actor)
        if state != AdminCardState.WRITTEN:
            raise ServiceError("admin card %(card)d was written but its request was cancelled: it is abandoned and "
                               "authorises no terminal", card=issued.card_no)
        return issued

    # -- tickets and gates
    async def configure_gate(self, terminal_id, direction, actor="hub", **config):
        """parkcard.services.gates.configure, then the gate's new T_CONFIG at once; return the gate config version."""
        version = await gates.configure(self.storage, self.actor(actor), terminal_id, direction, **config)
        await self.downlink.config(terminal_id)
        return version

    async def sell_ticket_at_desk(self, desk_terminal_id, product_id, card_no, start_day=None,
                                  timeout_s=CARD_WRITE_TIMEOUT_S, actor="hub", replace=False):
        """Sell a ticket onto an issued card and have the desk terminal write it; return the sale.

        start_day: the first park day (days since epoch; today by default). A card without a ticket gets a
        card write (T_CARD_WRITE); one whose ticket expired or is used up (or any, with replace) a ticket write
        order with sector 3's key B (SPEC.md §3.12). The ticket stays pending until the desk reports the card
        written, failed when it reports a failure or does not answer. actor: a name (this hub's own) or an Actor."""
        who = self.actor(actor) if isinstance(actor, str) else actor
        if start_day is None:
            start_day = await park.today(self.storage, time.time())
        sale = await tickets.sell(self.storage, who, self.park_keys, product_id, card_no, start_day, replace=replace,
                                  desk_terminal_id=desk_terminal_id)
        try:
            if sale.replaces is None:
                await self.write_card(desk_terminal_id, sale.uid, sale.blocks, timeout_s, who.name)
            else:
                await self._rewrite_ticket(desk_terminal_id, sale, timeout_s)
        except ServiceError:
            await tickets.settle(self.storage, who, sale.serial, False)
            raise
        except asyncio.CancelledError:
            await asyncio.shield(tickets.settle(self.storage, who, sale.serial, False))
            raise
        await tickets.settle(self.storage, who, sale.serial, True)
        return sale

    async def _rewrite_ticket(self, desk_terminal_id, sale, timeout_s):
        """Have the desk overwrite the card's sector 3 (SPEC.md §3.12); ServiceError unless it reads back as asked."""
        report = await self.desk_link.order(desk_terminal_id, desk_protocol.OP_TICKET_WRITE, sale.uid,
                                            desk_protocol.KEY_B, sale.key_b, sale.rewrite, timeout_s)
        wanted = dict(sale.rewrite)     # the last bytes asked of each block
        if report.status != desk_protocol.DESK_OK or any(report.blocks.get(b) != d for b, d in wanted.items()):
            raise ServiceError("desk terminal %(terminal)d did not write card %(card)d's new ticket (status "
                               "%(status)d): the card holds no valid ticket now; keep it on the desk and sell again",
                               terminal=desk_terminal_id, card=sale.card_no, status=report.status)

    async def _settle_admin_card(self, card_no, written, request_id, error, actor):
        return await admin_cards.settle(self.storage, self.actor(actor), card_no, written, request_id, error)

    async def revoke_admin_card(self, card_no, reason, actor="hub"):
        """parkcard.services.admin_cards.revoke."""
        return await admin_cards.revoke(self.storage, self.actor(actor), card_no, reason)

    def desk(self, terminal_id, actor="hub"):
        """The front desk operations (parkcard.services.desk) at desk terminal terminal_id, run by actor."""
        return AtDesk(self.desk_path, self.actor(actor) if isinstance(actor, str) else actor, terminal_id)

    async def stock_card(self, desk_terminal_id, uid, actor="hub"):
        """parkcard.services.desk.stock_card: a blank card on the desk becomes card stock (keys, nothing loaded)."""
        actor = self.actor(actor) if isinstance(actor, str) else actor
        return await desk_service.stock_card(self.desk_path, actor, "stock-%s" % bytes(uid).hex(), desk_terminal_id,
                                             bytes(uid).hex())

    async def blacklist_add(self, card_no, reason, actor="hub", force=False):
        """parkcard.services.blacklist.add (the delta is pushed to every terminal at once)."""
        return await blacklist.add(self.storage, self.actor(actor), card_no, reason, force)

    async def blacklist_remove(self, card_no, reason, actor="hub"):
        """parkcard.services.blacklist.remove (the delta is pushed to every terminal at once)."""
        return await blacklist.remove(self.storage, self.actor(actor), card_no, reason)

    def stats(self):
        """Counters of the running hub."""
        out = dict(self.ingest.stats)
        out.update(self.fleet.stats)
        out.update(self.storage.stats)
        out.update(batches=self.batches, failed_messages=self.failed_messages, storage_errors=self.storage_errors,
                   storage_unavailable=int(self.storage_down_since is not None), downlinks=self.downlink.sent,
                   downlinks_unencodable=self.downlink.unencodable, downlinks_refused=self.link.downlinks_refused,
                   sales_repriced=self.sales_repriced, repricing_differences=self.repricing_differences,
                   after_commit_retries=self.after_commit_retries, after_commit_given_up=self.after_commit_given_up,
                   uncertain_cards=len(self.ingest.uncertain_cards),
                   backpressure_waits=self.link.backpressure_waits, connects=self.link.connects)
        return out


def configure_logging(level=logging.INFO):
    """key=value logs on stderr."""
    logging.basicConfig(level=level, format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    logging.Formatter.converter = time.gmtime


async def serve(hub):
    """Run a hub until SIGTERM or SIGINT; HubFailed goes up when it cannot serve."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await hub.run()
    except asyncio.CancelledError:
        pass


def failure_message(exc):
    """The line a person reads on stderr when the hub stopped because it could not serve."""
    return "the hub stopped: %s (it released the database; a supervisor restarts it)" % exc.reason


def main(argv=None):
    """python -m parkcard.app --db PATH --broker-port N; exit 1 when the hub cannot serve, 2 when locked."""
    parser = argparse.ArgumentParser(prog="python -m parkcard.app", description="Run the ParkCard hub.",
                                     epilog="exit status: 0 stopped by SIGTERM/SIGINT, %d the hub could not serve "
                                            "(restart it), %d another hub holds the database"
                                            % (EXIT_HUB_FAILED, EXIT_USAGE))
    parser.add_argument("--db", default=os.path.join("var", "parkcard.db"))
    parser.add_argument("--broker-host", default="127.0.0.1")
    parser.add_argument("--broker-port", type=int, default=1883)
    parser.add_argument("--client-id", default="parkcard-hub")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = parser.parse_args(argv)
    configure_logging(getattr(logging, args.log_level))
    if not is_postgres(args.db):
        os.makedirs(os.path.dirname(os.path.abspath(args.db)), exist_ok=True)
    try:
        asyncio.run(serve(Hub(args.db, args.broker_host, args.broker_port, args.client_id)))
    except HubLockedError as exc:
        parser.exit(EXIT_USAGE, "error: %s\n" % exc)
    except StoreUnavailable as exc:     # the server may be back soon: a supervisor restarts the hub
        parser.exit(EXIT_HUB_FAILED, "error: %s\n" % exc)
    except HubFailed as exc:
        parser.exit(EXIT_HUB_FAILED, "error: %s\n" % failure_message(exc))


if __name__ == "__main__":
    main()
