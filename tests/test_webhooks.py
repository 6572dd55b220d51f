"""Webhooks to a real HTTP receiver on loopback: a sale uploaded by a booth (real Mosquitto, ingest) is POSTed as
JSON signed with HMAC-SHA256 of the body; a receiver that fails is tried again with the same event; an event
stored before a hub restart is delivered after it, once; a removed webhook gets nothing more; the CLI and the
API register, list and remove webhooks. On SQLite and PostgreSQL."""

import asyncio
import hashlib
import hmac
import http.server
import json
import queue
import threading

import httpx
import pytest
from click.testing import CliRunner

from protocol import record as R

from parkcard.cli import main
from parkcard.domain import webhooks as rules
from parkcard.domain.lifecycle import RecordStatus
from parkcard.services import webhooks
from parkcard.services.privileges import Actor
from parkcard_devkit.testing import connect_booth, desk_issued, start_hub

pytestmark = [pytest.mark.broker]

SECRET = "a secret agreed with the ticket office"
UID = b"\x04\x0a\x0b\x0c"
WAIT_S = 30
FAST_RETRY_S = 0.05


class Receiver:
    """An HTTP server on loopback that keeps every POST it gets and answers with the statuses it is given."""

    def __init__(self):
        self.got = queue.Queue()
        self.statuses = queue.Queue()       # the answers to give, in order; 200 once they run out
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    status = receiver.statuses.get_nowait()
                except queue.Empty:
                    status = 200
                receiver.got.put((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/parkcard" % self.server.server_address[1]

    def next(self):
        """(headers, body, status answered) of the next POST (waits for it, at most WAIT_S)."""
        return self.got.get(timeout=WAIT_S)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def signed_by(headers, body, secret):
    """True when the signature header is HMAC-SHA256 of body under secret."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers[rules.SIGNATURE_HEADER], expected)


async def started(db, broker):
    hub = await start_hub(db, broker.host, broker.port)
    hub.webhooks.poll_s = FAST_RETRY_S
    hub.webhooks.retry_delay_s = lambda attempts: FAST_RETRY_S
    return hub


def test_a_sale_is_posted_signed_retried_after_a_failure_and_kept_across_a_restart(tmp_path, broker, receiver,
                                                                                    store_url):
    async def scenario():
        hub = await started(store_url, broker)
        try:
            admin = Actor("admin")
            webhook_id, _ = await webhooks.add(hub.storage, admin, receiver.url, ["sale", "alarm"], SECRET)
            card_no = (await desk_issued(hub, UID, 1000)).card_no     # an issue is no event of this webhook
            booth = await connect_booth(hub, broker.host, broker.port, 5)
            try:
                receiver.statuses.put(500)          # the receiver fails once
                booth.record(R.KIND_DEBIT, card_no, 2, 250, 750, uid=UID)
                booth.upload()
                await asyncio.to_thread(booth.wait_acked, 1)
                first = await asyncio.to_thread(receiver.next)
                again = await asyncio.to_thread(receiver.next)
                # The receiver is away while a second sale is stored: the hub stops before it is delivered.
                for _ in range(3):
                    receiver.statuses.put(503)
                booth.record(R.KIND_DEBIT, card_no, 3, 100, 650, uid=UID)
                booth.upload()
                await asyncio.to_thread(booth.wait_acked, 2)
                refused = await asyncio.to_thread(receiver.next)
            finally:
                booth.close()
        finally:
            await hub.stop()
        while not receiver.statuses.empty():
            receiver.statuses.get_nowait()          # back, answering 200
        hub = await started(store_url, broker)      # a new hub process: the outbox is all it has
        try:
            after = await asyncio.to_thread(receiver.next)
            await hub.wait_until(lambda: hub.webhooks.stats["delivered"] == 1)
            deliveries = await hub.storage.webhook_deliveries(webhook_id)
            await webhooks.remove(hub.storage, admin, webhook_id)
            listed = await webhooks.listing(hub.storage, admin)
        finally:
            await hub.stop()
        return card_no, first, again, refused, after, deliveries, listed

    card_no, first, again, refused, after, deliveries, listed = asyncio.run(asyncio.wait_for(scenario(), 120))
    headers, body, status = first
    assert status == 500 and signed_by(headers, body, SECRET) and headers[rules.EVENT_HEADER] == "sale"
    sale = json.loads(body)
    assert (sale["event"], sale["card_no"], sale["terminal_id"], sale["seq"], sale["amount_cents"],
            sale["balance_after_cents"], sale["currency"]) == ("sale", card_no, 5, 1, 250, 750, "CNY")
    assert again[1] == body and again[2] == 200 and signed_by(again[0], again[1], SECRET)      # the same event
    assert not signed_by(headers, body, "another secret of sixteen+")
    assert refused[2] == 503 and json.loads(refused[1])["seq"] == 2
    assert after[1] == refused[1] and after[2] == 200      # delivered after the restart, the same bytes
    assert [(d.event, d.state) for d in deliveries] == [("sale", "delivered")] * 2
    assert deliveries[0].attempts == 2 and deliveries[1].attempts >= 1     # the 503 may end with the old hub
    assert listed == []
    assert receiver.got.empty()                             # nothing delivered twice once answered 200


async def cursor_past(store, record_id):
    """Wait until the first webhook's record cursor has passed record_id (at most WAIT_S)."""
    async def passed():
        while (await store.webhooks())[0].record_cursor < record_id:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(passed(), WAIT_S)


class WriteCounter:
    """Counts the write transactions the task that made it asks of the store (the hub's own tasks write too)."""

    def __init__(self, store):
        self.count = 0
        self._write = store.write
        task = asyncio.current_task()

        async def counted(fn, audit=None):
            if asyncio.current_task() is task:
                self.count += 1
            return await self._write(fn, audit)
        store.write = counted


def test_records_applied_after_their_ack_each_give_one_event_and_the_sender_wakes_on_commit(tmp_path, broker,
                                                                                         receiver, store_url):
    async def scenario():
        hub = await started(store_url, broker)
        hub.webhooks.poll_s = 3600      # far beyond WAIT_S: every delivery here comes from a wake-up or a retry due
        try:
            admin = Actor("admin")
            webhook_id, _ = await webhooks.add(hub.storage, admin, receiver.url, ["sale"], SECRET)
            card_no = (await desk_issued(hub, UID, 1000)).card_no
            await hub.wait_until(lambda: hub.webhooks.stats["sleeps"] >= 1)     # the sender is idle now
            booth = await connect_booth(hub, broker.host, broker.port, 5)
            try:
                receiver.statuses.put(500)      # the first POST fails: its retry is due 50 ms later
                # seq 1 uncertain: stored and acknowledged, no event yet.
                booth.record(R.KIND_DEBIT, card_no, 2, 500, 500, uid=UID, status=R.STATUS_UNCERTAIN)
                booth.upload()
                await asyncio.to_thread(booth.wait_acked, 1)
                [uncertain] = await hub.storage.records(5)
                await cursor_past(hub.storage, uncertain.id)    # the sender has looked at it while uncertain
                # seq 2 chains on seq 1's counter: seq 1 happened, applied now. seq 3 uncertain and seq 4 chaining
                # on it arrive together: seq 3 is stored and applied in one transaction.
                booth.record(R.KIND_DEBIT, card_no, 3, 100, 400, uid=UID)
                booth.record(R.KIND_DEBIT, card_no, 4, 100, 300, uid=UID, status=R.STATUS_UNCERTAIN)
                booth.record(R.KIND_DEBIT, card_no, 5, 100, 200, uid=UID)
                booth.upload()
                await asyncio.to_thread(booth.wait_acked, 4)
                posts = [await asyncio.to_thread(receiver.next) for _ in range(5)]
                await hub.wait_until(lambda: hub.webhooks.stats["delivered"] == 4)
            finally:
                booth.close()
            deliveries = await hub.storage.webhook_deliveries(webhook_id)
            records = {r.seq: r.status for r in await hub.storage.records(5)}
            writes = WriteCounter(hub.storage)
            async with httpx.AsyncClient() as client:
                idle_round = await hub.webhooks.round(client)       # nothing new, nothing due
                idle_writes = writes.count
                await webhooks.remove(hub.storage, admin, webhook_id)
                writes.count = 0
                unregistered_round = await hub.webhooks.round(client)   # no webhook at all
                unregistered_writes = writes.count
            due_reads, due_at = [], hub.storage.next_webhook_due_at

            async def counted_due_at():
                due_reads.append(1)
                return await due_at()
            hub.storage.next_webhook_due_at = counted_due_at
            sleeps = hub.webhooks.stats["sleeps"]
            await desk_issued(hub, b"\x04\x99\x88\x77", 100)     # a commit that stores a record wakes the sender
            await hub.wait_until(lambda: hub.webhooks.stats["sleeps"] > sleeps)
            unregistered_due_reads = len(due_reads)     # with no webhook, no retry can be due: none asked
            stats = dict(hub.webhooks.stats)
            [hook] = await hub.storage.webhooks(with_removed=True)
        finally:
            await hub.stop()
        return (posts, deliveries, records, idle_round, idle_writes, unregistered_round, unregistered_writes,
                unregistered_due_reads, stats, hook)

    (posts, deliveries, records, idle_round, idle_writes, unregistered_round, unregistered_writes,
     unregistered_due_reads, stats, hook) = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert hook.late_cursor >= 2       # seq 1 and seq 3 came through the log of records applied late
    assert records == {1: "applied", 2: "applied", 3: "applied", 4: "applied"}
    assert [p[2] for p in posts] == [500, 200, 200, 200, 200]
    delivered = [json.loads(p[1]) for p in posts if p[2] == 200]
    assert sorted(e["seq"] for e in delivered) == [1, 2, 3, 4]     # each applied sale once, however applied
    assert len({e["id"] for e in delivered}) == 4
    assert sorted(json.loads(d.body)["seq"] for d in deliveries) == [1, 2, 3, 4]
    assert all(d.state == "delivered" for d in deliveries)
    assert stats["woken"] >= 1
    assert (idle_round, idle_writes) == (False, 0)
    assert (unregistered_round, unregistered_writes, unregistered_due_reads) == (False, 0, 0)
    assert receiver.got.empty()


def test_a_hub_with_no_webhook_makes_no_http_client_and_its_first_delivery_makes_one(tmp_path, broker, receiver,
                                                                                       monkeypatch):
    made = []

    class CountedClient(httpx.AsyncClient):
        def __init__(self, *args, **kwargs):
            made.append(1)
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(httpx, "AsyncClient", CountedClient)

    async def scenario():
        hub = await started(tmp_path / "hub.db", broker)
        try:
            card_no = (await desk_issued(hub, UID, 1000)).card_no      # commits that wake the sender
            await hub.wait_until(lambda: hub.webhooks.stats["woken"] >= 1)
            before = len(made)
            await webhooks.add(hub.storage, Actor("admin"), receiver.url, ["sale"], SECRET)
            booth = await connect_booth(hub, broker.host, broker.port, 5)
            try:
                booth.record(R.KIND_DEBIT, card_no, 2, 100, 900, uid=UID)
                booth.upload()
                await asyncio.to_thread(receiver.next)
            finally:
                booth.close()
        finally:
            await hub.stop()
        return before, len(made)

    assert asyncio.run(asyncio.wait_for(scenario(), 60)) == (0, 1)


def test_events_are_what_a_webhook_wants_only_and_signatures_and_retries_follow_the_rules():
    applied = RecordStatus.APPLIED
    sale = (7, 5, 3, R.KIND_DEBIT, 100001, 250, 750, 1_700_000_000, applied)
    event, key, body = rules.event_of("record", sale, {"sale"}, "CNY")
    assert (event, key) == ("sale", "record:7") and json.loads(body)["amount_cents"] == 250
    assert rules.event_of("record", sale, {"top_up"}, "CNY") is None
    assert rules.event_of("record", sale[:-1] + (RecordStatus.QUARANTINED,), {"sale"}, "CNY") is None
    top_up = (8, 65534, 4, R.KIND_TOPUP, 100001, 5000, 5750, 1_700_000_100, applied)
    assert rules.event_of("record", top_up, {"top_up"}, "CNY")[0] == "top_up"
    alarm = (3, "clone", 100001, 5, 9, "two records with counter 4", 1_700_000_200.5)
    event, key, body = rules.event_of("alarm", alarm, {"alarm"}, "CNY")
    assert (event, key, json.loads(body)["kind"]) == ("alarm", "alarm:3", "clone")
    assert rules.signature("k" * 16, b"{}") == "sha256=" + hmac.new(b"k" * 16, b"{}", hashlib.sha256).hexdigest()
    delays = [rules.retry_delay_s(n) for n in range(1, 12)]
    assert delays[:3] == [rules.RETRY_DELAY_S_MIN, 2 * rules.RETRY_DELAY_S_MIN, 4 * rules.RETRY_DELAY_S_MIN]
    assert delays == sorted(delays) and delays[-1] == rules.RETRY_DELAY_S_MAX
    for bad in ("ftp://x/y", "http://", "not a url"):
        with pytest.raises(rules.WebhookError, match="not a webhook URL"):
            rules.checked_url(bad)
    with pytest.raises(rules.WebhookError, match="unknown event type refund"):
        rules.checked_events(["sale", "refund"])


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_cli_adds_lists_and_removes_a_webhook_and_refuses_a_bad_one(tmp_path):
    db = tmp_path / "hub.db"
    added = cli("--db", db, "webhook", "add", "--url", "https://tickets.example.com/in", "--event", "sale",
                "--event", "alarm")
    assert added.exit_code == 0, added.output
    assert "webhook 1: https://tickets.example.com/in gets sale, alarm" in added.output
    assert "secret: " in added.output and rules.SIGNATURE_HEADER in added.output
    listed = cli("--db", db, "webhook", "list")
    assert listed.exit_code == 0 and "https://tickets.example.com/in" in listed.output and "sale alarm" in listed.output
    bad = cli("--db", db, "webhook", "add", "--url", "tickets.example.com", "--event", "sale")
    assert bad.exit_code != 0 and "not a webhook URL" in bad.output and "Traceback" not in bad.output
    short = cli("--db", db, "webhook", "add", "--url", "https://x.example/", "--event", "sale", "--secret", "abc")
    assert short.exit_code != 0 and "16 to 200 printable characters" in short.output
    assert cli("--db", db, "webhook", "remove", 1).exit_code == 0
    again = cli("--db", db, "webhook", "remove", 1)
    assert again.exit_code != 0 and "webhook 1 is not registered" in again.output
    assert "tickets.example.com" not in cli("--db", db, "webhook", "list").output
