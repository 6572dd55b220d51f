"""The hub service: storage, broker link, ingest, fleet and downlinks wired in one TaskGroup.

    hub = Hub("var/parkcard.db", broker_port=1883)
    await hub.start()            # returns once the tasks run; the broker may still be connecting
    ...
    await hub.stop()

`python -m parkcard.service --db PATH --broker-port N` runs a hub until
SIGTERM/SIGINT (tests kill it with SIGKILL to check crash safety).
"""

import argparse
import asyncio
import logging
import os
import secrets
import signal
import time

from protocol import frames

from parkcard.desk import Desk
from parkcard.downlink import Downlink
from parkcard.fleet import Fleet
from parkcard.ingest import Ingest
from parkcard.mqtt_link import MqttLink
from parkcard.registry import Registry
from parkcard.storage import Storage

log = logging.getLogger("parkcard.hub")

BATCH_FRAMES_MAX = 64          # frames per database transaction (64 x 64 records)
TERMINAL_KEY_SIZE = 32
RECHECK_S = 0.05


class Hub:
    """One park hub. All public methods are coroutines run on the hub's event loop."""

    def __init__(self, db_path, broker_host="127.0.0.1", broker_port=1883, client_id="parkcard-hub",
                 username=None, password=None, park_keys=None, batch_frames_max=BATCH_FRAMES_MAX,
                 queue_max=1024, tls_ca=None):
        self.storage = Storage(db_path)
        self.registry = Registry(self.storage)
        self.link = MqttLink(broker_host, broker_port, client_id, username, password, queue_max, tls_ca)
        self.ingest = Ingest(self.storage, self.registry)
        self.fleet = Fleet(self.storage, self.registry)
        self.downlink = Downlink(self.storage, self.registry, self.link.publish)
        self.park_keys = park_keys
        self.batch_frames_max = batch_frames_max
        self._task = None
        self._settled = None
        self._desks = {}
        self.batches = 0

    # -- lifecycle
    async def open(self):
        """Open the database and load state, without the broker (CLI, desk-only use)."""
        await self.storage.open()
        await self.registry.load()
        await self.ingest.load()
        self._settled = asyncio.Condition()
        return self

    async def start(self):
        """Open the database, connect to the broker and start the tasks."""
        await self.open()
        await self.link.start()
        self._task = asyncio.create_task(self._run_tasks(), name="hub")
        log.info("event=hub_started db=%s broker=%s:%d", self.storage.path, self.link.host, self.link.port)
        return self

    async def _run_tasks(self):
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._consume(), name="consume")

    async def stop(self):
        """Stop the tasks, the broker link and the database."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
            await self.link.stop()
        await self.storage.close()
        log.info("event=hub_stopped")

    async def run(self):
        """Start and serve until cancelled."""
        await self.start()
        try:
            await self._task
        finally:
            await self.stop()

    async def wait_connected(self, timeout_s=10):
        """Wait until the broker session is up."""
        await asyncio.wait_for(self.link.connected.wait(), timeout_s)

    # -- the one consumer
    async def _consume(self):
        while True:
            batch = await self.link.get_batch(self.batch_frames_max)
            try:
                await self._handle(batch)
            finally:
                self.link.release(len(batch))

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
            await self.downlink.push_blacklist(min(result.blacklist_versions) - 1)
        for terminal_id, bl_version, cfg_version in result.syncs:
            await self.downlink.answer_sync(terminal_id, bl_version, cfg_version)
        for terminal_id, admin_card_no, _uid in result.auths:
            await self._authorise(terminal_id, admin_card_no)

    async def _authorise(self, terminal_id, admin_card_no):
        state = self.registry.get(terminal_id)
        if state.locked:
            await self.downlink.command(terminal_id, frames.CMD_AUTH_REJECT)
            return
        await self.storage.set_terminal(terminal_id, authorised=1)
        state.authorised = 1
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

    # -- registry
    async def add_merchant(self, merchant_id, name, commission_bps, park_id=1):
        """Create or update a merchant (commission in basis points)."""
        await self.storage.add_merchant(merchant_id, name, commission_bps, park_id)
        for state in self.registry.terminals.values():
            if state.merchant_id == merchant_id:
                await self.registry.reload_terminal(state.id)

    async def register_terminal(self, terminal_id, merchant_id, role, name, key=None, fixed_price_cents=0,
                                category=0):
        """Register a terminal; return its 32-byte key (generated unless given)."""
        key = key or secrets.token_bytes(TERMINAL_KEY_SIZE)
        if isinstance(role, str):
            role = {v: k for k, v in frames.ROLE_NAMES.items()}[role]
        await self.storage.add_terminal(terminal_id, merchant_id, role, key, name, fixed_price_cents, category)
        await self.registry.reload_terminal(terminal_id)
        log.info("event=terminal_registered terminal=%d merchant=%d role=%s", terminal_id, merchant_id,
                 frames.ROLE_NAMES[role])
        return key

    def desk(self, terminal_id):
        """Return the front desk working as (hub-side) desk terminal terminal_id."""
        if terminal_id not in self._desks:
            self._desks[terminal_id] = Desk(self.storage, self.registry, self.ingest, terminal_id, self.park_keys)
        return self._desks[terminal_id]

    async def blacklist_add(self, card_no, reason):
        """Blacklist a card and push the delta to every terminal; return the new version (None: listed)."""
        version = await self.storage.blacklist_change(card_no, reason, add=True)
        if version is not None:
            log.info("event=blacklisted card_no=%d version=%d reason=%r", card_no, version, reason)
            await self.downlink.push_blacklist(version - 1)
        return version

    async def blacklist_remove(self, card_no, reason):
        """Take a card off the blacklist and push the delta; return the new version (None: not listed)."""
        version = await self.storage.blacklist_change(card_no, reason, add=False)
        if version is not None:
            await self.downlink.push_blacklist(version - 1)
        return version

    def stats(self):
        """Counters of the running hub."""
        out = dict(self.ingest.stats)
        out.update(self.fleet.stats)
        out.update(batches=self.batches, downlinks=self.downlink.sent,
                   backpressure_waits=self.link.backpressure_waits, connects=self.link.connects)
        return out


def configure_logging(level=logging.INFO):
    """key=value logs on stderr."""
    logging.basicConfig(level=level, format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    logging.Formatter.converter = time.gmtime


async def serve(hub):
    """Run a hub until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await hub.run()
    except asyncio.CancelledError:
        pass


def main(argv=None):
    """python -m parkcard.service --db PATH --broker-port N"""
    parser = argparse.ArgumentParser(prog="python -m parkcard.service", description="Run the ParkCard hub.")
    parser.add_argument("--db", default=os.path.join("var", "parkcard.db"))
    parser.add_argument("--broker-host", default="127.0.0.1")
    parser.add_argument("--broker-port", type=int, default=1883)
    parser.add_argument("--client-id", default="parkcard-hub")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = parser.parse_args(argv)
    configure_logging(getattr(logging, args.log_level))
    os.makedirs(os.path.dirname(os.path.abspath(args.db)), exist_ok=True)
    asyncio.run(serve(Hub(args.db, args.broker_host, args.broker_port, args.client_id)))


if __name__ == "__main__":
    main()
