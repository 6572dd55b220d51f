"""The hub service: storage, broker link, ingest, fleet and downlinks wired in one TaskGroup.

    hub = Hub("var/parkcard.db", broker_port=1883)
    await hub.start()            # returns once the tasks run; the broker may still be connecting
    ...
    await hub.stop()

`python -m parkcard.service --db PATH --broker-port N` runs a hub until
SIGTERM/SIGINT (tests kill it with SIGKILL to check crash safety). A hub that
cannot serve releases everything and exits EXIT_HUB_FAILED (1) with the reason,
so that its supervisor restarts it; EXIT_USAGE (2) when another hub holds the database.
"""

import argparse
import asyncio
import itertools
import logging
import os
import secrets
import signal
import time
from dataclasses import dataclass

from protocol import admin_card, frames, hub_frames, topics

from parkcard import bounds, broker_auth, notify
from parkcard.desk import Desk
from parkcard.downlink import Downlink
from parkcard.fleet import Fleet
from parkcard.hub_lock import HubLock, HubLockedError
from parkcard.ingest import Ingest
from parkcard.mqtt_link import MqttLink
from parkcard.registry import Registry
from parkcard.storage import NotIssued, Storage, audited, is_transient, version_detail

log = logging.getLogger("parkcard.hub")

EXIT_HUB_FAILED = 1            # the hub could not serve: a supervisor restarts it (README, "Reliability")
EXIT_USAGE = 2                 # a mistake to correct first (another hub holds the database): restarting won't help
BATCH_FRAMES_MAX = 64          # frames per database transaction (64 x 64 records)
TERMINAL_KEY_SIZE = 32
CARD_WRITE_TIMEOUT_S = 60       # a cashier presents the blank card within a minute
RECHECK_S = 0.05
STORAGE_RETRY_S_MIN = 0.05     # first wait after a write failed for want of disk or I/O
STORAGE_RETRY_S_MAX = 5.0      # the longest wait between retries during an outage
QUARANTINE_DETAIL_MAX = 500
# The CLI tells the running hub what it changed at once (parkcard.notify); this poll is the safety
# net for a notice that was lost (no datagram is retried).
REGISTRY_POLL_S = 1.0
# Admin system card numbers: a range of their own, above any visitor card the desk will issue.
ADMIN_CARD_NO_FIRST = 900001
ADMIN_CARD_NO_LAST = 999999


class HubError(ValueError):
    """An operation the hub cannot do as asked; the message says what to do."""


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


@dataclass(frozen=True)
class AdminCardIssue:
    """An admin system card to write: its number and {block: 16 bytes}.

    `blocks` holds the data blocks, `trailers` the sector trailers. Write every
    data block first, then the trailers (a trailer changes the sector's keys).
    """

    card_no: int
    uid: bytes
    desk: bool
    blocks: dict
    trailers: dict

    def write_order(self):
        """[(block, data)] in the order to write them."""
        return sorted(self.blocks.items()) + sorted(self.trailers.items())


class Hub:
    """One park hub. All public methods are coroutines run on the hub's event loop."""

    def __init__(self, db_path, broker_host="127.0.0.1", broker_port=1883, client_id="parkcard-hub",
                 username=None, password=None, park_keys=None, batch_frames_max=BATCH_FRAMES_MAX,
                 queue_max=1024, tls_ca=None, transport_key=None, on_terminals_added=None, lock=None):
        """park_keys and transport_key (parkcard.secure.hub_kwargs) are needed to issue cards and admin cards.

        `await on_terminals_added(hub, ids)` runs when the running hub finds terminals registered by
        another process, e.g. to rewrite the broker's password file (parkcard.secure.broker_refresher).
        lock: a HubLock of db_path already taken (`parkcard up` takes it before it starts a broker);
        without one, open() takes it.
        """
        self.storage = Storage(db_path)
        self.lock = lock or HubLock(db_path)     # one hub per database (parkcard.hub_lock)
        self.notices = notify.Listener(db_path)  # what the CLI changed (parkcard.notify)
        self._blacklist_pushed = 0               # the newest blacklist version pushed to every terminal
        self.registry = Registry(self.storage)
        self.link = MqttLink(broker_host, broker_port, client_id, username, password, queue_max, tls_ca)
        self.ingest = Ingest(self.storage, self.registry)
        self.fleet = Fleet(self.storage, self.registry)
        self.downlink = Downlink(self.storage, self.registry, self.link.publish)
        self.park_keys = park_keys
        self.transport_key = transport_key
        self.on_terminals_added = on_terminals_added
        self.batch_frames_max = batch_frames_max
        self._task = None
        self._link_started = False     # link.start() was called: stop() must stop paho's thread
        self._settled = None
        self._desks = {}
        self._card_writes = {}     # request_id -> (desk terminal, uid, future of (status, block))
        self._card_tasks = {}      # request id -> task of an admin card issue in progress (queued by the CLI)
        self._card_write_ids = itertools.count(int(time.time()) & 0x7FFFFFFF)
        self.batches = 0
        self.failed_messages = 0    # kept in quarantine as hub_error (see _handle_one_by_one)
        self.storage_errors = 0     # writes that failed because the store could not be written
        self.storage_down_since = None      # monotonic time of the first failed write of an outage
        self.storage_down_error = None

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
                                   ("notices", self._take_notices())):
                    tg.create_task(_named_failure(name, coro), name=name)
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
            batch = await self.link.get_batch(self.batch_frames_max)
            try:
                await self._handle_until_stored(batch)
            finally:
                self.link.release(len(batch))

    async def _handle_until_stored(self, batch):
        """Handle a batch; while the store cannot be written, ack nothing and retry with back-off.

        A full disk or an I/O error is the hub's fault, not the message's: the
        batch waits (and, through the link's bounded queue, so does the broker)
        until a write succeeds again, then it is handled as if nothing happened.
        """
        delay_s = STORAGE_RETRY_S_MIN
        while True:
            try:
                try:
                    await self._handle(batch)
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    log.exception("event=batch_failed frames=%d", len(batch))
                    await self._handle_one_by_one(batch)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._storage_unavailable(exc)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, STORAGE_RETRY_S_MAX)
                continue
            await self._storage_available()
            return

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
        down_s = time.monotonic() - self.storage_down_since
        detail = "the database could not be written for %.0f s (%s): nothing was acknowledged meanwhile" % (
            down_s, self.storage_down_error)
        self.storage_down_since = self.storage_down_error = None
        log.warning("event=storage_recovered down_s=%.1f", down_s)
        try:
            await self.storage.write(lambda tx: tx.add_alarm("storage", None, None, None, detail))
        except Exception as exc:      # the alarm is news, not money: never hold the consumer for it
            log.warning("event=alarm_not_stored error=%r", str(exc))

    async def _handle_one_by_one(self, batch):
        """After a batch failed: handle its messages alone, and keep the one that still fails in quarantine.

        A failed batch rolled back, and applying a record twice is a duplicate,
        so retrying is safe. The message that fails on its own is stored with
        its reason and acknowledged: it must not stop the hub, nor come back
        from the broker to stop it again after a restart. A store that cannot be
        written fails every message alike: that error goes up, to be retried,
        and nothing is quarantined for it.
        """
        for message in batch:
            try:
                await self._handle([message])
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.exception("event=message_failed topic=%s", message.topic)
                self.failed_messages += 1
                detail = repr(exc)[:QUARANTINE_DETAIL_MAX]
                await self.storage.write(lambda tx: tx.add_quarantine(
                    message.payload, message.topic, topics.terminal_of(message.topic), "hub_error", detail))
                self.link.ack(message.mid)

    async def _handle(self, batch):
        ups = [(m.topic, m.payload) for m in batch if not m.topic.endswith("/status")]
        statuses = [(m.topic, m.payload) for m in batch if m.topic.endswith("/status")]
        result = await self.ingest.apply(ups) if ups else None
        if statuses:
            await self.fleet.apply(statuses)
        for message in batch:   # durable: now the broker may forget them
            self.link.ack(message.mid)
        self.batches += 1
        if result is not None:
            await self._after(result)
        async with self._settled:
            self._settled.notify_all()

    async def _after(self, result):
        for terminal_id, (applied, rejected) in result.acks.items():
            await self.downlink.ack(terminal_id, self.registry.get(terminal_id).acked_upto, applied, rejected)
        if result.blacklist_versions:
            await self.push_blacklist_news()
        for sync in result.syncs:   # (terminal_id, blacklist_version, config_version[, chunk_cards_max])
            await self.downlink.answer_sync(*sync)
        for terminal_id, admin_card_no, uid in result.auths:
            await self._authorise(terminal_id, admin_card_no, uid)
        for terminal_id, request_id, uid, status, block in result.card_results:
            waiter = self._card_writes.get(request_id)
            if waiter is not None and waiter[0] == terminal_id and waiter[1] == uid and not waiter[2].done():
                waiter[2].set_result((status, block))

    async def audit(self, actor, action, **details):
        """Append an operator action to the audit log, anchored in the database (in the writer's thread)."""
        await self.storage.audit(actor, action, **details)

    async def _authorise(self, terminal_id, admin_card_no, uid):
        """Answer T_AUTH: confirm only a known, unlocked terminal tapped with a known, unrevoked admin card."""
        reason = await self._auth_refusal(terminal_id, admin_card_no, uid)
        if reason is not None:
            log.warning("event=auth_rejected terminal=%d admin_card=%d reason=%s", terminal_id, admin_card_no,
                        reason)
            await self.audit("hub", "terminal.auth_reject", terminal_id=terminal_id, admin_card_no=admin_card_no,
                             uid=bytes(uid), reason=reason)
            await self.downlink.command(terminal_id, frames.CMD_AUTH_REJECT)
            return
        await self.storage.set_terminal(terminal_id, authorised=1)
        self.registry.get(terminal_id).authorised = 1
        log.info("event=authorised terminal=%d admin_card=%d", terminal_id, admin_card_no)
        await self.audit("hub", "terminal.authorise", terminal_id=terminal_id, admin_card_no=admin_card_no)
        await self.downlink.command(terminal_id, frames.CMD_AUTH_CONFIRM)
        await self.downlink.config(terminal_id)
        await self.downlink.time(terminal_id)

    async def _auth_refusal(self, terminal_id, admin_card_no, uid):
        """The reason to refuse an authorisation, or None (reads the database: the CLI may have changed it)."""
        flags = await self.storage.terminal_flags(terminal_id)
        if flags is None or self.registry.get(terminal_id) is None:
            return "unknown_terminal"
        if flags[1]:
            return "terminal_locked"
        card = await self.storage.admin_card(admin_card_no)
        if card is None:
            return "unknown_admin_card"
        if card["revoked_at"] is not None:
            return "revoked_admin_card"
        if bytes(card["uid"]) != bytes(uid):
            return "admin_card_uid_mismatch"
        if card["state"] != "written":      # sealed, but no desk reported it written (or it was abandoned)
            return "admin_card_not_written"
        return None

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

    # -- registry
    async def add_merchant(self, merchant_id, name, commission_bps, park_id=1, actor="hub"):
        """Create a merchant (commission in basis points); return False if it exists with these very values.

        HubError for an input out of range or an id taken by another merchant (see set_merchant).
        """
        name = _checked(merchant_id=merchant_id, commission_bps=commission_bps, park_id=park_id, name=name)
        try:
            return await self.storage.add_merchant(merchant_id, name, commission_bps, park_id, audit=audited(
                actor, "merchant.add", merchant_id=merchant_id, name=name, commission_bps=commission_bps,
                park_id=park_id))
        except ValueError as exc:
            raise HubError("%s: change it with `parkcard merchant set`" % exc) from None

    async def set_merchant(self, merchant_id, name=None, commission_bps=None, actor="hub"):
        """Change a merchant's name and/or commission; return ((name, bps) before, after).

        The merchant's terminals are reloaded, so the new rate applies to the next record ingested.
        """
        name = _checked(merchant_id=merchant_id, commission_bps=commission_bps, name=name)
        try:
            before, after = await self.storage.update_merchant(merchant_id, name, commission_bps, audit=audited(
                actor, "merchant.set", when=lambda ba: ba[0] != ba[1], merchant_id=merchant_id,
                extra=lambda ba: dict(name=ba[1][0], commission_bps=ba[1][1], was_name=ba[0][0],
                                      was_commission_bps=ba[0][1])))
        except ValueError as exc:
            raise HubError("%s (see `parkcard merchant list`)" % exc) from None
        if before != after:
            await self.reload_merchant(merchant_id)
        return before, after

    async def refresh_merchant_rates(self):
        """Reload the terminals whose merchant's commission or park changed in the database (`merchant set`)."""
        merchants = {m[0]: (m[3], m[1]) for m in await self.storage.merchants()}
        for merchant_id in {s.merchant_id for s in self.registry.terminals.values()
                            if merchants.get(s.merchant_id, (s.rate_bps, s.park_id)) != (s.rate_bps, s.park_id)}:
            await self.reload_merchant(merchant_id)

    async def reload_merchant(self, merchant_id):
        """Reload the registry entries of a merchant's terminals (its commission or park changed)."""
        for state in list(self.registry.terminals.values()):
            if state.merchant_id == merchant_id:
                await self.registry.reload_terminal(state.id)

    async def register_terminal(self, terminal_id, merchant_id, role, name, key=None, fixed_price_cents=0,
                                category=0, broker_password=None, actor="hub"):
        """Register a terminal; return its 32-byte key (generated unless given).

        Its broker password (generated unless given) is stored with it: see terminal_credentials().
        """
        name = _checked(terminal_id=terminal_id, merchant_id=merchant_id, fixed_price_cents=fixed_price_cents,
                        name=name)
        key = key or secrets.token_bytes(TERMINAL_KEY_SIZE)
        broker_password = broker_password or broker_auth.new_password()
        await self.storage.add_terminal(terminal_id, merchant_id, role, key, name, fixed_price_cents, category,
                                        broker_password, audit=audited(
                                            actor, "terminal.add", when=lambda _: True, terminal_id=terminal_id,
                                            merchant_id=merchant_id, role=frames.ROLE_NAMES[role], name=name))
        await self.registry.reload_terminal(terminal_id)
        log.info("event=terminal_registered terminal=%d merchant=%d role=%s", terminal_id, merchant_id,
                 frames.ROLE_NAMES[role])
        return key

    async def terminal_credentials(self):
        """{terminal_id: broker password} of every registered terminal (for the broker's password file)."""
        return await self.storage.broker_credentials()

    # -- terminal control
    async def lock_terminal(self, terminal_id, actor="hub"):
        """Lock a terminal: it forgets its card keys (CMD_LOCK) and no admin card authorises it until unlocked.

        Returns False when it was locked already (nothing sent, nothing audited); so do the two below.
        """
        return await self._terminal_command(terminal_id, frames.CMD_LOCK, "lock", actor, locked=1, authorised=0)

    async def unlock_terminal(self, terminal_id, actor="hub"):
        """Allow a locked terminal to be authorised again by an admin card tap (nothing is sent)."""
        return await self._terminal_command(terminal_id, None, "unlock", actor, locked=0)

    async def deauthorise_terminal(self, terminal_id, actor="hub"):
        """De-authorise a terminal (CMD_DEAUTHORISE): it forgets its card keys until the next admin card tap."""
        return await self._terminal_command(terminal_id, frames.CMD_DEAUTHORISE, "deauthorise", actor,
                                            authorised=0)

    async def _terminal_command(self, terminal_id, command, action, actor, **columns):
        """Set the terminal's flags and queue its command (if any) in one transaction, then send it.

        Returns False, doing nothing, when the flags already had these values.
        """
        try:
            changed = await self.storage.terminal_command(terminal_id, command, actor, audit=audited(
                actor, "terminal." + action, terminal_id=terminal_id), **columns)
        except ValueError:
            raise HubError("terminal %d is not registered (see `parkcard terminals`)" % terminal_id) from None
        if not changed:
            return False
        log.info("event=terminal_%s terminal=%d actor=%s", action, terminal_id, actor)
        await self.registry.reload_terminal(terminal_id)
        await self.send_pending_commands()
        return True

    async def send_pending_commands(self):
        """Send the queued terminal commands (by this hub or the CLI) and mark them sent; return how many."""
        sent = 0
        for command_id, terminal_id, command, _actor in await self.storage.pending_commands():
            await self.registry.reload_terminal(terminal_id)        # the flags the command came with
            await self.downlink.command(terminal_id, command)
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

    async def _take_notices(self):
        """Act on what the CLI says it committed, as soon as it says so."""
        while True:
            news = await self.notices.wait()
            try:
                await self.take_notice(news)
            except Exception:   # a failed notice must not stop ingest; the poll picks the change up
                log.exception("event=notice_failed notices=%s", ",".join(sorted(news)))

    async def take_notice(self, news):
        """Handle a set of parkcard.notify names: push new blacklist versions, load terminals, send commands."""
        log.debug("event=notice notices=%s", ",".join(sorted(news)))
        if notify.BLACKLIST in news:
            await self.push_blacklist_news()
        if news - {notify.BLACKLIST}:
            await self.poll_registry()

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
        except HubError as exc:
            await self.storage.finish_card_request(request_id, error=str(exc))

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
        return added, await self.send_pending_commands()

    # -- admin system cards
    async def issue_admin_card(self, uid, desk_terminal_id, desk=True, actor="hub"):
        """Seal a new admin system card for a card with this UID at a desk terminal; return an AdminCardIssue.

        The park keys are sealed under the transport key with a fresh random nonce (protocol/admin_card.py);
        with desk=False only the booth blob is written (no master B: it cannot authorise a desk).
        """
        if self.park_keys is None or self.transport_key is None:
            raise HubError("this hub has no park keys or transport key: run `parkcard init` and start the hub "
                           "with parkcard.secure.hub_kwargs()")
        state = self.registry.get(desk_terminal_id)
        if state is None or state.role != frames.ROLE_DESK:
            raise HubError("terminal %d is not a registered desk terminal: admin cards are issued at a desk"
                           % desk_terminal_id)
        uid = bytes(uid)
        if len(uid) not in (4, 7):
            raise HubError("a card UID is 4 or 7 bytes, not %d" % len(uid))
        try:
            card_no = await self.storage.add_admin_card(
                uid, desk, desk_terminal_id, ADMIN_CARD_NO_FIRST, ADMIN_CARD_NO_LAST, audit=audited(
                    actor, "admin_card.issue", when=lambda _: True, extra=lambda no: dict(card_no=no), uid=uid,
                    desk=bool(desk), desk_terminal_id=desk_terminal_id))
        except ValueError as exc:  # every admin card number is taken (numbers are never reused)
            raise HubError(str(exc)) from None
        nonce = secrets.token_bytes(admin_card.NONCE_SIZE)
        blocks = admin_card.seal(self.transport_key, self.park_keys, card_no, uid, nonce, desk=desk)
        trailers = admin_card.trailer_blocks(self.transport_key, self.park_keys, uid, desk=desk)
        log.info("event=admin_card_issued card_no=%d desk_terminal=%d actor=%s", card_no, desk_terminal_id, actor)
        return AdminCardIssue(card_no, uid, desk, blocks, trailers)

    async def write_card(self, desk_terminal_id, uid, blocks, timeout_s=CARD_WRITE_TIMEOUT_S, actor="hub"):
        """Have a desk terminal write {block: 16 bytes} onto the blank card with this UID (SPEC.md §5.7).

        Returns when the desk reports the card written; raises HubError when it reports a failure or
        does not answer within timeout_s (the card was not presented, or the desk is offline).
        """
        state = self.registry.get(desk_terminal_id)
        if state is None or state.role != frames.ROLE_DESK:
            raise HubError("terminal %d is not a registered desk terminal" % desk_terminal_id)
        request_id = next(self._card_write_ids) & 0xFFFFFFFF
        done = asyncio.get_running_loop().create_future()
        self._card_writes[request_id] = (desk_terminal_id, bytes(uid), done)
        try:
            await self.downlink.send(desk_terminal_id, frames.T_CARD_WRITE,
                                     hub_frames.card_write_body(request_id, uid, blocks))
            try:
                status, block = await asyncio.wait_for(done, timeout_s)
            except asyncio.TimeoutError:
                raise HubError("desk terminal %d did not write the card within %d s: is it online, and was the "
                               "card presented?" % (desk_terminal_id, timeout_s)) from None
        finally:
            self._card_writes.pop(request_id, None)
        if status != frames.CARD_OK:
            reason = {frames.CARD_NOT_BLANK: "not a blank card"}.get(status, "the card left during the write")
            raise HubError("desk terminal %d could not write the card (%s, block %d): present a blank card and "
                           "try again" % (desk_terminal_id, reason, block))
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
        except HubError as exc:
            await self._settle_admin_card(issued.card_no, False, request_id, str(exc), actor)
            raise
        except asyncio.CancelledError:
            # Shielded: the card must not stay pending because its waiter went away.
            await asyncio.shield(self._settle_admin_card(issued.card_no, False, request_id,
                                                         "cancelled before the desk reported", actor))
            raise
        state = await self._settle_admin_card(issued.card_no, True, request_id, None, actor)
        if state != "written":
            raise HubError("admin card %d was written but its request was cancelled: it is abandoned and "
                           "authorises no terminal" % issued.card_no)
        return issued

    async def _settle_admin_card(self, card_no, written, request_id, error, actor):
        state = await self.storage.settle_admin_card(card_no, written, request_id, error)
        log.info("event=admin_card_%s card_no=%d", state, card_no)
        await self.audit(actor, "admin_card." + state, card_no=card_no, **({"error": error} if error else {}))
        return state

    async def revoke_admin_card(self, card_no, reason, actor="hub"):
        """Revoke an admin card: it authorises no terminal from now on. Return False if already revoked."""
        try:
            revoked = await self.storage.revoke_admin_card(card_no, reason, audit=audited(
                actor, "admin_card.revoke", card_no=card_no, reason=reason))
        except ValueError as exc:
            raise HubError("%s (see `parkcard admin-card list`)" % exc) from None
        if revoked:
            log.info("event=admin_card_revoked card_no=%d reason=%r actor=%s", card_no, reason, actor)
        return revoked

    def desk(self, terminal_id):
        """Return the front desk working as (hub-side) desk terminal terminal_id."""
        if terminal_id not in self._desks:
            self._desks[terminal_id] = Desk(self.storage, self.registry, self.ingest, terminal_id, self.park_keys,
                                            audit=self.audit)
        return self._desks[terminal_id]

    async def blacklist_add(self, card_no, reason, actor="hub", force=False):
        """Blacklist a card and push the delta to every terminal; return the new version (None: listed).

        HubError for a card number out of range, or one this park never issued unless force (a card
        found that belongs to another system).
        """
        _checked(card_no=card_no)
        try:
            version = await self.storage.blacklist_change(card_no, reason, add=True, issued_only=not force,
                                                          audit=audited(actor, "blacklist.add", card_no=card_no,
                                                                        reason=reason, extra=version_detail))
        except NotIssued as exc:
            raise HubError("%s: check the number, or blacklist it anyway with --force" % exc) from None
        if version is not None:
            log.info("event=blacklisted card_no=%d version=%d reason=%r", card_no, version, reason)
            await self.push_blacklist_news()
        return version

    async def blacklist_remove(self, card_no, reason, actor="hub"):
        """Take a card off the blacklist and push the delta; return the new version (None: not listed)."""
        version = await self.storage.blacklist_change(card_no, reason, add=False, audit=audited(
            actor, "blacklist.remove", card_no=card_no, reason=reason, extra=version_detail))
        if version is not None:
            await self.push_blacklist_news()
        return version

    def stats(self):
        """Counters of the running hub."""
        out = dict(self.ingest.stats)
        out.update(self.fleet.stats)
        out.update(self.storage.stats)
        out.update(batches=self.batches, failed_messages=self.failed_messages, storage_errors=self.storage_errors,
                   storage_unavailable=int(self.storage_down_since is not None), downlinks=self.downlink.sent,
                   downlinks_unencodable=self.downlink.unencodable,
                   backpressure_waits=self.link.backpressure_waits, connects=self.link.connects)
        return out


_BOUNDS = {"card_no": bounds.CARD_NO, "terminal_id": bounds.TERMINAL_ID, "merchant_id": bounds.MERCHANT_ID,
           "park_id": bounds.PARK_ID, "fixed_price_cents": bounds.FIXED_PRICE_CENTS,
           "commission_bps": bounds.COMMISSION_BPS}


def _checked(name=None, **values):
    """Range-check service inputs by name (parkcard.bounds); return the stripped name. HubError if out of range."""
    try:
        for key, value in values.items():
            if value is not None:
                _BOUNDS[key].check(value)
        return None if name is None else bounds.check_name(name)
    except bounds.BoundError as exc:
        raise HubError(str(exc)) from None


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
    """python -m parkcard.service --db PATH --broker-port N; exit 1 when the hub cannot serve, 2 when locked."""
    parser = argparse.ArgumentParser(prog="python -m parkcard.service", description="Run the ParkCard hub.",
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
    os.makedirs(os.path.dirname(os.path.abspath(args.db)), exist_ok=True)
    try:
        asyncio.run(serve(Hub(args.db, args.broker_host, args.broker_port, args.client_id)))
    except HubLockedError as exc:
        parser.exit(EXIT_USAGE, "error: %s\n" % exc)
    except HubFailed as exc:
        parser.exit(EXIT_HUB_FAILED, "error: %s\n" % failure_message(exc))


if __name__ == "__main__":
    main()
