"""Ingest over a real Mosquitto: exactly once, conflicts, gaps, quarantine, clones, uncertain records, fleet."""

import asyncio
import threading

import paho.mqtt.client as mqtt
import pytest

from protocol import card as C
from protocol import frames, hub_frames, topics
from protocol import record as R

from parkcard import audit
from parkcard.ingest.registry import Registry
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, ScriptedTerminal, desk_issued, start_hub
from store_kit import alarms, quarantined, read, records, statuses, terminal

pytestmark = pytest.mark.broker

UID = b"\x04\xa1\xb2\xc3"


def run(coro, timeout_s=120):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


async def booth(hub, broker, terminal_id, **kw):
    key = await hub.register_terminal(terminal_id, MERCHANT_ICE, frames.ROLE_POS, "booth %d" % terminal_id)
    term = ScriptedTerminal(broker.host, broker.port, terminal_id, key, **kw)
    return await asyncio.to_thread(term.connect)


async def issued_card(hub, cash_cents=10000, uid=UID):
    result = await desk_issued(hub, uid, cash_cents)
    return result.card_no, result.balance_cents


async def balance(hub, account):
    return await hub.storage.account_balance(account)


def test_resent_batch_is_applied_once(tmp_path, broker, monkeypatch):
    from parkcard.store.sqlite.write_tx import WriteTx

    gap_writes = []
    set_gaps = WriteTx.set_gaps
    monkeypatch.setattr(WriteTx, "set_gaps", lambda tx, *a: (gap_writes.append(a), set_gaps(tx, *a))[1])

    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        card_no, bal = await issued_card(hub)
        term = await booth(hub, broker, 5)
        for i in range(10):
            bal -= 100
            term.record(R.KIND_DEBIT, card_no, 2 + i, 100, bal)
        entries = [term.journal[s] for s in sorted(term.journal)]
        term.upload(entries)
        await asyncio.to_thread(term.wait_acked, 10)
        term.upload(entries)           # the terminal missed the ack and sends again (new frame counter)
        await hub.wait_until(lambda: hub.stats().get("duplicates", 0) == 10)
        assert await balance(hub, "card:%d" % card_no) == 9000
        assert await balance(hub, "merchant:%d" % MERCHANT_ICE) == 900
        assert (await audit.check(hub.storage)).ok
        await asyncio.to_thread(term.wait, lambda t: len(t.downlinks(frames.T_ACK)) == 2)
        acks = term.downlinks(frames.T_ACK)
        assert [frames.parse_ack(a.body) for a in acks] == [(10, 10, 0), (10, 10, 0)]
        assert gap_writes == []    # records in order leave no gaps to rewrite
        term.close()
        await hub.stop()
    run(scenario())
    assert len(records(tmp_path / "hub.db", 5)) == 10


def test_same_seq_other_bytes_is_a_conflict_kept_and_not_applied(tmp_path, broker):
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        card_no, _ = await issued_card(hub)
        term = await booth(hub, broker, 5)
        term.record(R.KIND_DEBIT, card_no, 2, 300, 9700)
        term.upload()
        await asyncio.to_thread(term.wait_acked, 1)
        term.seq = 0                                   # a terminal that lost its journal reuses seq 1
        forged = term.record(R.KIND_DEBIT, card_no, 3, 5000, 4700)
        term.upload([(R.STATUS_COMMITTED, forged)])
        await hub.wait_until(lambda: hub.stats().get("conflicts", 0) == 1)
        assert await balance(hub, "card:%d" % card_no) == 9700
        await asyncio.to_thread(term.wait, lambda t: len(t.downlinks(frames.T_ACK)) == 2)
        ack = frames.parse_ack(term.downlinks(frames.T_ACK)[-1].body)
        assert ack == (1, 0, 1)
        term.close()
        await hub.stop()
    run(scenario())
    db = tmp_path / "hub.db"
    assert [(c.terminal_id, c.seq) for c in read(db, lambda s: s.conflicts())] == [(5, 1)]
    assert [a.kind for a in alarms(db)] == ["conflict"]
    assert [r.amount_cents for r in records(db, 5)] == [300]


def test_late_and_out_of_order_records_fill_gaps(tmp_path, broker):
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        card_no, bal = await issued_card(hub)
        term = await booth(hub, broker, 5)
        raws = []
        for i in range(6):
            bal -= 50
            raws.append(term.record(R.KIND_DEBIT, card_no, 2 + i, 50, bal))
        c = R.STATUS_COMMITTED
        term.upload([(c, raws[5]), (c, raws[0]), (c, raws[3])])    # seqs 6, 1, 4
        await hub.wait_until(lambda: hub.stats().get("applied", 0) == 4)
        assert hub.registry.get(5).acked_upto == 1
        gaps = await hub.storage.terminal_gaps(5)
        assert gaps == [(2, 3), (5, 5)]
        reloaded = (await Registry(hub.storage).load()).get(5)     # what a restarted hub starts from
        assert (reloaded.acked_upto, reloaded.above) == (1, {4, 6})
        await asyncio.to_thread(term.wait, lambda t: t.downlinks(frames.T_ACK))
        assert frames.parse_ack(term.downlinks(frames.T_ACK)[-1].body)[0] == 1
        term.upload([(c, raws[2]), (c, raws[1])])
        await asyncio.to_thread(term.wait_acked, 4)
        term.upload([(c, raws[4])])
        await asyncio.to_thread(term.wait_acked, 6)
        assert await hub.storage.terminal_gaps(5) == []
        assert await balance(hub, "card:%d" % card_no) == 10000 - 300
        report = await audit.check(hub.storage)
        assert report.ok and report.pending == []
        term.close()
        await hub.stop()
    run(scenario())


def test_bad_frames_are_quarantined_and_the_hub_keeps_serving(tmp_path, broker):
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        card_no, _ = await issued_card(hub)
        term = await booth(hub, broker, 5)
        six = await booth(hub, broker, 6)
        stranger = ScriptedTerminal(broker.host, broker.port, 999, b"k" * 32)
        forger = ScriptedTerminal(broker.host, broker.port, 5, b"x" * 32)
        term.publish(b"garbage")                                              # malformed
        term.publish(b"PK" + bytes(frames.BODY_MAX + 100))                    # oversized
        term.record(R.KIND_DEBIT, card_no, 2, 100, 9900)
        good = term.upload()
        forger.counter = 50
        term.publish(forger.frame(frames.T_UPLOAD, hub_frames.upload_body(list(term.journal.values()))))  # bad MAC
        term.publish(good)                                                    # replay
        term.publish(stranger.frame(frames.T_SYNC, frames.sync_body(0, 0)), topic=topics.topic(999, "up"))
        term.publish(frames.encode(six.frame_mac, frames.T_SYNC, 5, 1, 0, frames.sync_body(0, 0)),
                     topic=topics.topic(6, "up"))                               # wrong topic
        topup = R.Record(R.KIND_TOPUP, 5, 2, 0, card_no, UID, 3, 10000, 19900).encode(term.record_mac)
        term.upload([(R.STATUS_COMMITTED, topup)])                            # credit from a booth
        term.publish(term.frame(frames.T_UPLOAD, b"\x05" + bytes(10)))        # upload body length
        # Inside frames whose MAC checks: records that do not.
        sixs = R.Record(R.KIND_DEBIT, 5, 7, 0, card_no, UID, 9, 1, 1).encode(six.record_mac)
        term.upload([(R.STATUS_COMMITTED, sixs)])                             # record MAC of another key
        foreign = R.Record(R.KIND_DEBIT, 6, 8, 0, card_no, UID, 9, 1, 1).encode(term.record_mac)
        term.upload([(R.STATUS_COMMITTED, foreign)])                          # another terminal's record
        odd = R.Record(R.KIND_DEBIT, 5, 3, 0, card_no, UID, 3, 100, 9800).encode(term.record_mac)
        term.upload([(7, odd)])                                               # no such upload status
        term.publish(term.frame(frames.T_STATUS, b""))                        # a type that is not for `up`
        term.publish(term.frame(frames.T_AUTH, bytes(12)))                    # auth with a 0-byte UID
        term.seq = 3
        term.journal.clear()
        term.record(R.KIND_DEBIT, card_no, 3, 100, 9800)
        term.upload()                                                         # still served
        await asyncio.to_thread(term.wait_acked, 4)
        await hub.wait_until(lambda: sum(v for k, v in hub.stats().items() if k.startswith("quarantined.")) >= 13)
        stats = hub.stats()
        assert await balance(hub, "card:%d" % card_no) == 9800
        term.close()
        await hub.stop()
        return stats
    stats = run(scenario())
    reasons = sorted(q.reason for q in quarantined(tmp_path / "hub.db"))
    assert reasons == sorted(["malformed", "malformed", "bad_mac", "replay", "unknown_terminal", "wrong_topic",
                              "credit_from_booth", "malformed", "record_bad_mac", "record_terminal",
                              "record_status", "unexpected_type", "malformed"])
    assert stats["quarantined.malformed"] == 4 and stats["quarantined.replay"] == 1   # oversized is malformed
    assert statuses(tmp_path / "hub.db", 5) == [
        (1, "applied"), (2, "quarantined"), (3, "quarantined"), (4, "applied")]


def test_restored_card_is_applied_alarmed_and_blacklisted_everywhere(tmp_path, broker):
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        card_no, _ = await issued_card(hub)
        a = await booth(hub, broker, 5)
        b = await booth(hub, broker, 6)
        other = await booth(hub, broker, 7)
        a.record(R.KIND_DEBIT, card_no, 2, 3000, 7000)
        a.upload()
        await asyncio.to_thread(a.wait_acked, 1)
        b.record(R.KIND_DEBIT, card_no, 2, 2000, 8000, flags=R.FLAG_OFFLINE)   # the card restored from its dump
        b.upload()
        await asyncio.to_thread(b.wait_acked, 1)
        await asyncio.to_thread(other.wait, lambda t: t.downlinks(frames.T_BLACKLIST))
        delta = frames.parse_blacklist(other.downlinks(frames.T_BLACKLIST)[0].body)
        assert delta == (0, 1, frames.BL_DELTA, 0, 1, (card_no,), ())
        assert await balance(hub, "card:%d" % card_no) == 5000    # both sales are facts
        report = await audit.check(hub.storage)
        assert report.ok and report.flagged == [card_no]
        for t in (a, b, other):
            t.close()
        await hub.stop()
    run(scenario())
    db = tmp_path / "hub.db"
    [listed] = read(db, lambda s: s.blacklist_cards())
    assert [(a.kind, a.card_no) for a in alarms(db)] == [("clone", listed)]
    assert read(db, lambda s: s.card(listed)).status == "blacklisted"


def test_uncertain_records_are_settled_by_counter_continuity(tmp_path, broker):
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        card_no, _ = await issued_card(hub)
        term = await booth(hub, broker, 5)
        # counter 2 uncertain, then the retry holds counter 2: the first did not happen
        term.record(R.KIND_DEBIT, card_no, 2, 500, 9500, status=R.STATUS_UNCERTAIN)
        term.record(R.KIND_DEBIT, card_no, 2, 500, 9500)
        # counter 3 uncertain, then counter 4 chains on it: it happened
        term.record(R.KIND_DEBIT, card_no, 3, 700, 8800, status=R.STATUS_UNCERTAIN)
        term.upload()
        await asyncio.to_thread(term.wait_acked, 3)
        assert await balance(hub, "card:%d" % card_no) == 9500
        term.record(R.KIND_DEBIT, card_no, 4, 800, 8000)
        term.record(R.KIND_DEBIT, card_no, 5, 1, 7999, status=R.STATUS_VOIDED)
        term.upload()
        await asyncio.to_thread(term.wait_acked, 5)
        assert await balance(hub, "card:%d" % card_no) == 8000
        assert (await audit.check(hub.storage)).ok
        term.close()
        await hub.stop()
    run(scenario())
    assert statuses(tmp_path / "hub.db", 5) == [
        (1, "voided"), (2, "applied"), (3, "applied"), (4, "applied"), (5, "voided")]
    assert alarms(tmp_path / "hub.db") == []


def test_an_uncertain_record_settled_twice_in_one_upload_is_applied_once(tmp_path, broker):
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        card_no, _ = await issued_card(hub)
        term = await booth(hub, broker, 5)
        term.record(R.KIND_DEBIT, card_no, 2, 500, 9500, status=R.STATUS_UNCERTAIN)
        raw = term.journal[1][1]
        term.upload()
        await asyncio.to_thread(term.wait_acked, 1)
        # The terminal settled it and sent it again, twice in one frame (a resend
        # built from a journal read twice): the second must see the first's settling.
        term.upload([(R.STATUS_COMMITTED, raw), (R.STATUS_COMMITTED, raw)])
        await hub.wait_until(lambda: hub.stats().get("duplicates", 0) == 2)
        term.record(R.KIND_DEBIT, card_no, 3, 100, 9400)  # the hub still serves this terminal
        term.upload()
        await asyncio.to_thread(term.wait_acked, 2)
        assert await balance(hub, "card:%d" % card_no) == 9400
        assert (await audit.check(hub.storage)).ok
        term.close()
        await hub.stop()
    run(scenario())
    assert statuses(tmp_path / "hub.db", 5) == [
        (1, "applied"), (2, "applied")]
    assert alarms(tmp_path / "hub.db") == []


def test_chain_break_raises_an_alarm(tmp_path, broker):
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        card_no, _ = await issued_card(hub)
        term = await booth(hub, broker, 5)
        term.record(R.KIND_DEBIT, card_no, 2, 100, 9999)     # 10000 - 100 is not 9999
        term.upload()
        await asyncio.to_thread(term.wait_acked, 1)
        assert not (await audit.check(hub.storage)).ok
        term.close()
        await hub.stop()
    run(scenario())
    assert [a.kind for a in alarms(tmp_path / "hub.db")] == ["chain"]


def test_status_ordered_by_boot_and_last_will(tmp_path, broker):
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        term = await booth(hub, broker, 5)
        db = tmp_path / "hub.db"
        term.status(boot=2, online=1, firmware=b"1.2.0", queue_depth=7, free_heap=51000, uptime_s=30)
        await hub.wait_until(lambda: hub.registry.get(5).status_boot == 2)
        term.status(boot=1, online=1, queue_depth=99)                  # an older boot: ignored
        will = term.frame(frames.T_STATUS, hub_frames.Status(boot=2, online=0).encode())
        term.publish(will, leaf=topics.STATUS, retain=True)
        await hub.wait_until(lambda: hub.fleet.stats["status_stale"] == 1 and hub.fleet.stats["status_applied"] == 2)
        term.close()
        await hub.stop()
        t = terminal(db, 5)
        return t.online, t.status_boot, t.firmware, t.queue_depth
    assert run(scenario()) == (0, 2, "1.2.0", 7)   # offline keeps the last report


def test_sync_gets_blacklist_config_and_time(store_url, broker):
    async def scenario():
        hub = await start_hub(store_url, broker.host, broker.port)
        term = await booth(hub, broker, 5)
        for card_no in (30, 10, 20):
            await hub.blacklist_add(card_no, "lost", force=True)     # numbers this park never issued
        await hub.blacklist_remove(20, "found")
        await asyncio.to_thread(term.wait, lambda t: len(t.downlinks(frames.T_BLACKLIST)) == 4)
        term.publish(term.frame(frames.T_SYNC, frames.sync_body(0, 0)))
        await asyncio.to_thread(term.wait, lambda t: t.downlinks(frames.T_TIME))
        delta = frames.parse_blacklist(term.downlinks(frames.T_BLACKLIST)[-1].body)
        assert delta == (0, 4, frames.BL_DELTA, 0, 1, (10, 30), (20,))
        cfg = frames.Config.decode(term.downlinks(frames.T_CONFIG)[0].body)
        assert (cfg.role, cfg.merchant_id, cfg.version) == (frames.ROLE_POS, MERCHANT_ICE, 1)
        term.close()
        await hub.stop()
    run(scenario())


def test_a_message_the_hub_cannot_handle_is_kept_in_quarantine_and_the_rest_goes_on(tmp_path, broker, monkeypatch):
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        card_no, bal = await issued_card(hub)
        five = await booth(hub, broker, 5)
        six = await booth(hub, broker, 6)
        apply = hub.ingest.apply

        async def failing_for_six(messages):
            if any(topic == topics.topic(6, topics.UP) for topic, _ in messages):
                raise RuntimeError("a bug the batch trips over")
            return await apply(messages)

        monkeypatch.setattr(hub.ingest, "apply", failing_for_six)
        six.record(R.KIND_DEBIT, card_no, 2, 100, bal - 100)
        six.upload()
        five.record(R.KIND_DEBIT, card_no, 3, 200, bal - 300)
        five.upload()
        await asyncio.to_thread(five.wait_acked, 1)       # term-5's record goes through, batch or not
        await hub.wait_until(lambda: hub.stats()["failed_messages"] == 1)
        five.record(R.KIND_DEBIT, card_no, 4, 50, bal - 350)
        five.upload()
        await asyncio.to_thread(five.wait_acked, 2)       # and the hub keeps serving
        assert await balance(hub, "merchant:%d" % MERCHANT_ICE) == 225     # 250 less 10 % commission
        six.close()
        five.close()
        await hub.stop()
    run(scenario())
    [(reason, terminal_id, detail)] = [(q.reason, q.terminal_id, q.detail) for q in quarantined(tmp_path / "hub.db")]
    assert (reason, terminal_id) == ("hub_error", 6) and "a bug the batch trips over" in detail


def test_topics_that_only_look_like_a_terminal_are_quarantined_and_the_hub_keeps_serving(tmp_path, broker):
    """term-\u00b2 once made int() raise inside the failure path itself: the hub acked nothing again, ever."""
    spellings = ("parkcard/term-\u00b2/up", "parkcard/term-\u2460/up", "parkcard/term-\u0661/up", "parkcard/term-05/up")

    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        card_no, bal = await issued_card(hub)
        five = await booth(hub, broker, 5)
        raw = five.record(R.KIND_DEBIT, card_no, 2, 100, bal - 100)
        for topic in spellings:
            five.publish(five.frame(frames.T_UPLOAD, hub_frames.upload_body([(R.STATUS_COMMITTED, raw)])), topic=topic)
        five.upload()
        await asyncio.to_thread(five.wait_acked, 1)
        await hub.wait_until(lambda: hub.stats().get("quarantined", 0) >= len(spellings))
        stats = hub.stats()
        five.close()
        await hub.stop()
        return stats
    stats = run(scenario())
    assert stats.get("failed_messages", 0) == 0
    kept = [(q.topic, q.reason, q.terminal_id) for q in quarantined(tmp_path / "hub.db")]
    assert sorted(kept) == sorted((t, "foreign_topic", None) for t in spellings)


def test_quarantine_keeps_a_bounded_prefix_with_the_size_and_digest_of_the_whole(tmp_path):
    import hashlib

    from parkcard.store import open_store
    from parkcard.store.batch import QUARANTINE_KEPT_MAX

    payload = bytes(range(256)) * 80                 # 20 KB of a refused payload

    async def scenario():
        storage = await open_store(tmp_path / "hub.db")
        try:
            await storage.write(lambda tx: (tx.add_quarantine(payload, "parkcard/term-5/up", 5, "malformed", "x"),
                                            tx.add_quarantine(b"small", "parkcard/term-5/up", 5, "malformed", "y")))
            return storage.stats["quarantine_cut"], await storage.quarantined()
        finally:
            await storage.close()
    cut, listed = run(scenario())
    assert cut == 1 and [row.size for row in listed] == [len(payload), 5]
    assert (listed[0].raw, listed[0].sha256) == (payload[:QUARANTINE_KEPT_MAX], hashlib.sha256(payload).digest())
    assert listed[1].raw == b"small"


def test_the_broker_refuses_a_publish_larger_than_any_frame(tmp_path, broker):
    """Twelve 1-20 MB publishes once grew the database by 108 MB: the broker now drops them at the door."""
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        hung_up = threading.Event()
        big = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="term-5")
        big.on_disconnect = lambda *args: hung_up.set()
        try:
            card_no, bal = await issued_card(hub)
            big.connect(broker.host, broker.port)
            big.loop_start()
            big.publish(topics.topic(5, topics.UP), b"PK" + bytes(hub_frames.FRAME_SIZE_MAX + 1024), qos=1)
            assert await asyncio.to_thread(hung_up.wait, 10)          # the broker hung up on it
            six = await booth(hub, broker, 6)
            six.record(R.KIND_DEBIT, card_no, 2, 100, bal - 100)
            six.upload()
            await asyncio.to_thread(six.wait_acked, 1)
            six.close()
        finally:
            big.loop_stop()
            await hub.stop()
    run(scenario())
    assert quarantined(tmp_path / "hub.db") == []


def test_a_full_disk_stops_acks_quarantines_nothing_and_the_hub_resumes_on_its_own(tmp_path, broker):
    """SQLite's own SQLITE_FULL (max_page_count caps the file): once every message was quarantined as hub_error."""
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        five = None
        try:
            card_no, bal = await issued_card(hub)
            five = await booth(hub, broker, 5)
            pages = await hub.storage.write(lambda tx: tx.conn.execute("PRAGMA page_count").fetchone()[0])
            await hub.storage.write(lambda tx: tx.conn.execute("PRAGMA max_page_count=%d" % pages))   # the disk is full (SQLite)
            for i in range(1, 41):
                five.record(R.KIND_DEBIT, card_no, 1 + i, 10, bal - 10 * i, item=i)
            five.upload_all(records_max=8)
            await hub.wait_until(lambda: hub.stats()["storage_errors"] >= 2)
            stuck = hub.registry.get(5).acked_upto      # a first batch may still fit the file's free pages
            await hub.wait_until(lambda: hub.stats()["storage_errors"] >= 4, 30)   # retried, never given up
            assert hub.registry.get(5).acked_upto == stuck < 40 and five.acked_upto <= stuck
            assert hub.stats()["storage_unavailable"] == 1
            await hub.storage.write(lambda tx: tx.conn.execute("PRAGMA max_page_count=1073741823"))   # space freed
            await asyncio.to_thread(five.wait_acked, 40, 30)
            stats = hub.stats()
            assert stats["storage_unavailable"] == 0 and stats["failed_messages"] == 0
            assert await balance(hub, "card:%d" % card_no) == bal - 400
        finally:
            if five is not None:
                five.close()
            await hub.stop()
    run(scenario())
    assert quarantined(tmp_path / "hub.db") == []
    [(kind, detail)] = [(a.kind, a.detail) for a in alarms(tmp_path / "hub.db")]
    assert kind == "storage" and "database or disk is full" in detail
async def hub_with_booth(tmp_path, broker):
    """A hub with an issued card and booth terminal 5: (hub, card_no, balance_cents, terminal)."""
    hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
    card_no, bal = await issued_card(hub)
    return hub, card_no, bal, await booth(hub, broker, 5)


def _damage(raw, at):
    """The record with one byte flipped (a flash bit error the terminal's journal kept)."""
    return raw[:at] + bytes((raw[at] ^ 0x01,)) + raw[at + 1:]


def test_a_damaged_record_in_the_journal_is_acknowledged_past_and_later_records_are_applied(tmp_path, broker):
    async def scenario():
        hub, card_no, bal, term = await hub_with_booth(tmp_path, broker)
        c = R.STATUS_COMMITTED
        one = term.record(R.KIND_DEBIT, card_no, 2, 100, bal - 100)
        two = _damage(term.record(R.KIND_DEBIT, card_no, 3, 200, bal - 300), 30)    # the amount: MAC fails
        three = term.record(R.KIND_DEBIT, card_no, 3, 300, bal - 400)
        later = b"\x09" + term.record(R.KIND_DEBIT, card_no, 4, 1, bal - 401)[1:48]   # a version it cannot read
        four = later + term.record_mac.tag(R.RECORD_MAC_SIZE, later)
        five = term.record(R.KIND_DEBIT, card_no, 4, 50, bal - 450)
        # The terminal-side encoder refuses a version it cannot size; the body is written by hand.
        body = bytes((4,)) + b"".join(bytes((c,)) + r for r in (one, two, three, four))
        term.publish(term.frame(frames.T_UPLOAD, body))
        await asyncio.to_thread(term.wait_acked, 4)
        assert frames.parse_ack(term.downlinks(frames.T_ACK)[-1].body) == (4, 2, 2)
        term.upload([(c, two)])                            # sent again: held already, still refused
        await asyncio.to_thread(term.wait, lambda t: len(t.downlinks(frames.T_ACK)) == 2)
        assert frames.parse_ack(term.downlinks(frames.T_ACK)[-1].body) == (4, 0, 1)
        six = _damage(term.record(R.KIND_DEBIT, card_no, 5, 1, bal - 451), 47)
        term.upload([(c, six)])                            # above a hole (5 not sent yet): held above the ack
        await hub.wait_until(lambda: hub.stats().get("damaged", 0) == 3)
        await hub.stop()
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)   # the held seq survives
        term.upload([(c, five)])
        await asyncio.to_thread(term.wait_acked, 6)
        assert await balance(hub, "card:%d" % card_no) == bal - 450
        assert (await audit.check(hub.storage)).ok
        term.close()
        await hub.stop()
    run(scenario())
    db = tmp_path / "hub.db"
    assert sorted((q.seq, q.reason) for q in quarantined(db) if q.seq is not None) == [
        (2, "record_bad_mac"), (4, "record_unsupported"), (6, "record_bad_mac")]
    assert [r.seq for r in records(db, 5)] == [1, 3, 5]
    assert sorted((a.kind, a.seq) for a in alarms(db)) == [
        ("damaged_record", 2), ("damaged_record", 4), ("damaged_record", 6)]
    assert terminal(db, 5).acked_upto == 6


def test_a_damaged_record_that_names_no_seq_of_its_terminal_holds_the_ack(tmp_path, broker):
    async def scenario():
        hub, card_no, bal, term = await hub_with_booth(tmp_path, broker)
        c = R.STATUS_COMMITTED
        one = term.record(R.KIND_DEBIT, card_no, 2, 100, bal - 100)
        two = _damage(term.record(R.KIND_DEBIT, card_no, 3, 200, bal - 300), 5)     # terminal id 5 -> 4
        term.upload([(c, one), (c, two)])
        await asyncio.to_thread(term.wait_acked, 1)
        assert frames.parse_ack(term.downlinks(frames.T_ACK)[-1].body) == (1, 1, 1)
        term.close()
        await hub.stop()
    run(scenario())
    assert [(q.reason, q.seq) for q in quarantined(tmp_path / "hub.db")] == [("record_bad_mac", None)]


def test_a_valid_record_for_a_seq_held_by_a_damaged_one_is_a_conflict(tmp_path, broker):
    async def scenario():
        hub, card_no, bal, term = await hub_with_booth(tmp_path, broker)
        good = term.record(R.KIND_DEBIT, card_no, 2, 100, bal - 100)
        term.upload([(R.STATUS_COMMITTED, _damage(good, 40))])
        await asyncio.to_thread(term.wait_acked, 1)
        term.upload([(R.STATUS_COMMITTED, good)])
        await hub.wait_until(lambda: hub.stats().get("conflicts", 0) == 1)
        assert await balance(hub, "card:%d" % card_no) == bal
        term.close()
        await hub.stop()
    run(scenario())
    assert [(c.terminal_id, c.seq) for c in read(tmp_path / "hub.db", lambda s: s.conflicts())] == [(5, 1)]


def test_a_refused_frame_that_authenticates_is_acknowledged_and_a_forged_one_is_not(tmp_path, broker):
    async def scenario():
        hub, card_no, bal, term = await hub_with_booth(tmp_path, broker)
        forger = ScriptedTerminal(broker.host, broker.port, 5, b"x" * 32)
        term.record(R.KIND_DEBIT, card_no, 2, 100, bal - 100)
        good = term.upload()
        await asyncio.to_thread(term.wait_acked, 1)
        refused = [good,                                                # replay
                   term.frame(frames.T_STATUS, b""),                    # not a type for `up`
                   term.frame(frames.T_UPLOAD, b"\x02" + bytes(10))]    # body length
        for n, payload in enumerate(refused, 2):     # one at a time: an ack answers a whole batch
            term.publish(payload)
            await asyncio.to_thread(term.wait, lambda t: len(t.downlinks(frames.T_ACK)) == n)
        forger.counter = 50
        unanswered = [forger.frame(frames.T_UPLOAD, hub_frames.upload_body([])),                    # bad MAC
                      frames.encode(term.frame_mac, frames.T_SYNC, 6, 60, 0, frames.sync_body(0, 0))]  # wrong_topic
        for payload in unanswered:
            term.publish(payload)
        await hub.register_terminal(6, MERCHANT_ICE, frames.ROLE_POS, "booth 6")
        term.publish(term.frame(frames.T_SYNC, frames.sync_body(0, 0)), topic=topics.topic(6, topics.UP))
        # checked with the topic's key (term-6), so term-5's frame there is a bad MAC, not wrong_topic
        await hub.wait_until(lambda: hub.stats().get("quarantined.bad_mac", 0) == 2
                             and hub.stats().get("quarantined.wrong_topic", 0) == 1)
        term.record(R.KIND_DEBIT, card_no, 3, 100, bal - 200)
        term.upload()
        await asyncio.to_thread(term.wait_acked, 2)
        acks = [frames.parse_ack(f.body) for f in term.downlinks(frames.T_ACK)]   # in order on one topic
        assert acks == [(1, 1, 0), (1, 0, 0), (1, 0, 0), (1, 0, 0), (2, 1, 0)]
        term.close()
        await hub.stop()
    run(scenario())


def test_uploads_from_a_locked_terminal_are_applied_with_an_alarm(tmp_path, broker):
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        card_no, bal = await issued_card(hub)
        never = await booth(hub, broker, 6)          # registered, never authorised: applied, no alarm
        never.record(R.KIND_DEBIT, card_no, 2, 100, bal - 100)
        never.upload()
        await asyncio.to_thread(never.wait_acked, 1)
        term = await booth(hub, broker, 5)
        await hub.lock_terminal(5)
        sale = term.record(R.KIND_DEBIT, card_no, 3, 200, bal - 300, flags=R.FLAG_OFFLINE)   # before the lock
        term.upload()
        await asyncio.to_thread(term.wait_acked, 1)
        term.upload([(R.STATUS_COMMITTED, sale)])    # a resend of what is stored: no second alarm
        await hub.wait_until(lambda: hub.stats().get("duplicates", 0) == 1)
        assert await balance(hub, "card:%d" % card_no) == bal - 300
        for t in (never, term):
            t.close()
        await hub.stop()
    run(scenario())
    assert [(a.kind, a.terminal_id, a.seq) for a in alarms(tmp_path / "hub.db")] == [("locked_terminal", 5, 1)]


def test_status_within_one_boot_follows_uptime_as_terminals_send_it(tmp_path, broker):
    async def scenario():
        hub = await start_hub(tmp_path / "hub.db", broker.host, broker.port)
        term = await booth(hub, broker, 5)

        def status(**fields):       # as the firmware sends it: frame counter 0, retained (SPEC.md §5.3)
            body = hub_frames.Status(boot=3, **fields).encode()
            term.publish(term.frame(frames.T_STATUS, body, counter=0), leaf=topics.STATUS, retain=True)

        status(online=1, uptime_s=30, queue_depth=7)
        status(online=1, uptime_s=60, queue_depth=4)             # the 30 s refresh
        status(online=0, uptime_s=0)                             # the will, composed at connect
        status(online=1, uptime_s=95, queue_depth=2)             # reconnected, same boot
        status(online=1, uptime_s=90, queue_depth=9)             # older than the last report
        await hub.wait_until(lambda: hub.fleet.stats["status_stale"] >= 1)   # the last one: all are handled
        assert hub.fleet.stats["status_stale"] == 1
        term.close()
        await hub.stop()
    run(scenario())
    t = terminal(tmp_path / "hub.db", 5)
    assert (t.online, t.queue_depth, t.uptime_s) == (1, 2, 95)
