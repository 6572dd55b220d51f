"""/api/v1 and /metrics over real HTTP, against the hub as `parkcard up` starts it (its own Mosquitto),
on SQLite and PostgreSQL: every endpoint, every error code, API keys and their scopes, idempotent POSTs."""

import time

import pytest

from api_kit import UpHub, api_key, cli

pytestmark = [pytest.mark.api, pytest.mark.broker]

ALL_SCOPES = ("fleet:read", "terminals:control", "merchants:write", "blacklist:write", "settlement:close")
DAY_S = 86400


@pytest.fixture
def park(tmp_path, store_url):
    """A park with merchant 2 (terminal 12) and an all-scopes key `ops`, its hub up; yields (hub, ops secret)."""
    for args in (("merchant", "add", "--id", "2", "--name", "Food court", "--commission-bps", "1200"),
                 ("terminal", "add", "--id", "12", "--merchant", "2", "--role", "pos", "--name", "Food 1")):
        out = cli(tmp_path, store_url, *args)
        assert out.returncode == 0, out.stderr
    secret = api_key(tmp_path, store_url, "ops", *ALL_SCOPES)
    hub = UpHub(tmp_path, store_url).start()
    yield hub, secret
    assert hub.stop() == 0


def audit_lines(hub):
    """The audit log as `parkcard audit show` prints it."""
    out = cli(hub.workdir, hub.db, "audit", "show")
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def error(response, status, code):
    """Assert a refusal's status and stable code; return its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]["message"]


def test_health_openapi_and_docs_need_no_key(park):
    hub, _ = park
    with hub.client() as c:
        health = c.get("/health").json()
        assert health["status"] == "ok" and health["storage_available"] is True
        assert set(health) == {"status", "broker_connected", "storage_available"}
        doc = c.get("/openapi.json").json()
        assert doc["info"]["title"] == "ParkCard hub API"
        assert "/api/v1/terminals/{terminal_id}/lock" in doc["paths"]
        assert c.get("/docs").status_code == 200
        error(c.get("/terminals"), 401, "unauthenticated")
        error(c.get("/nothing-here"), 404, "not_found")


def test_keys_refused_without_wrong_revoked_or_short_of_scope(park):
    hub, ops = park
    reader = api_key(hub.workdir, hub.db, "reader", "fleet:read")
    with hub.client("pk_not-a-key") as c:
        error(c.get("/terminals"), 401, "unauthenticated")
    with hub.client(reader) as c:
        assert [t["id"] for t in c.get("/terminals").json()] == [12]
        message = error(c.post("/terminals/12/lock", headers={"Idempotency-Key": "k1"}), 403, "scope_missing")
        assert "terminals:control" in message
        error(c.get("/settlements"), 403, "scope_missing")
    out = cli(hub.workdir, hub.db, "apikey", "revoke", "reader")
    assert out.returncode == 0 and "revoked" in out.stdout
    with hub.client(reader) as c:
        error(c.get("/terminals"), 401, "unauthenticated")
    listed = cli(hub.workdir, hub.db, "apikey", "list").stdout
    assert "reader" in listed and "pk_" not in listed      # never the secret
    with hub.client(ops) as c:
        assert c.get("/terminals").status_code == 200
    assert any("apikey.create" in line and "reader" in line for line in audit_lines(hub))
    assert any("apikey.revoke" in line and "reader" in line for line in audit_lines(hub))


def test_terminals_fleet_one_and_control_audited_as_the_key(park):
    hub, ops = park
    with hub.client(ops) as c:
        (row,) = c.get("/terminals").json()
        assert row["id"] == 12 and row["role"] == "pos" and row["merchant_id"] == 2
        assert row["online"] is False and row["last_seen"] is None and row["locked"] is False
        assert c.get("/terminals/12").json() == row
        error(c.get("/terminals/13"), 404, "terminal_not_registered")
        error(c.get("/terminals/0"), 422, "invalid_request")
        error(c.post("/terminals/13/lock", headers={"Idempotency-Key": "t13"}), 404, "terminal_not_registered")
        assert c.post("/terminals/12/lock", headers={"Idempotency-Key": "l1"}).json() == {"changed": True}
        assert c.post("/terminals/12/lock", headers={"Idempotency-Key": "l2"}).json() == {"changed": False}
        assert c.get("/terminals/12").json()["locked"] is True
        assert c.post("/terminals/12/unlock", headers={"Idempotency-Key": "u1"}).json() == {"changed": True}
        assert c.post("/terminals/12/deauthorise", headers={"Idempotency-Key": "d1"}).json() == {"changed": False}
        assert c.get("/terminals/12").json()["locked"] is False
        assert c.post("/terminals/12/config", headers={"Idempotency-Key": "c1"}).json() == {"changed": True}
        error(c.post("/terminals/13/config", headers={"Idempotency-Key": "c13"}), 404, "terminal_not_registered")
    actions = [line for line in audit_lines(hub) if "api:ops" in line]
    assert sum("terminal.config_push" in line for line in actions) == 1
    assert [a for a in ("terminal.lock", "terminal.unlock") if any(a in line for line in actions)] == \
        ["terminal.lock", "terminal.unlock"]
    assert sum("terminal.lock" in line for line in actions) == 1     # the second lock changed nothing


def test_merchants_list_add_set(park):
    hub, ops = park
    with hub.client(ops) as c:
        assert c.get("/merchants").json() == [
            {"id": 2, "park_id": 1, "name": "Food court", "commission_bps": 1200, "terminal_ids": [12]}]
        new = {"id": 3, "name": "Rides", "commission_bps": 500}
        assert c.post("/merchants", json=new, headers={"Idempotency-Key": "m1"}).json() == {"changed": True}
        assert c.post("/merchants", json=new, headers={"Idempotency-Key": "m2"}).json() == {"changed": False}
        error(c.post("/merchants", json=dict(new, commission_bps=600), headers={"Idempotency-Key": "m3"}),
              409, "merchant_exists")
        error(c.post("/merchants", json=dict(new, commission_bps=10001), headers={"Idempotency-Key": "m4"}),
              422, "invalid_request")
        error(c.post("/merchants", json=dict(new, id=4, name="   "), headers={"Idempotency-Key": "m5"}),
              422, "out_of_range")
        assert c.post("/merchants/3", json={"commission_bps": 700}, headers={"Idempotency-Key": "s1"}).json() == \
            {"changed": True, "name": "Rides", "commission_bps": 700}
        error(c.post("/merchants/9", json={"name": "x"}, headers={"Idempotency-Key": "s2"}), 404,
              "merchant_not_found")
        assert [m["commission_bps"] for m in c.get("/merchants").json()] == [1200, 700]
    assert any("api:ops" in line and "merchant.set" in line for line in audit_lines(hub))


def test_blacklist_list_add_remove(park):
    hub, ops = park
    with hub.client(ops) as c:
        assert c.get("/blacklist").json() == []
        body = {"card_no": 100777, "reason": "lost"}
        error(c.post("/blacklist", json=body, headers={"Idempotency-Key": "b1"}), 422, "card_not_issued")
        added = c.post("/blacklist", json=dict(body, force=True), headers={"Idempotency-Key": "b2"}).json()
        assert added["changed"] is True and added["version"] >= 1
        (entry,) = c.get("/blacklist").json()
        assert entry == {"card_no": 100777, "reason": "lost", "since_version": added["version"], "attempts": 0,
                         "last_attempts": []}
        error(c.post("/blacklist", json={"card_no": 0, "reason": "x"}, headers={"Idempotency-Key": "b3"}), 422,
              "invalid_request")
        removed = c.delete("/blacklist/100777", params={"reason": "found"}).json()
        assert removed == {"changed": True, "version": added["version"] + 1}
        assert c.delete("/blacklist/100777").json() == {"changed": False, "version": None}
        assert c.get("/blacklist").json() == []


def test_alarms_quarantine_park_and_settlements(park):
    hub, ops = park
    with hub.client(ops) as c:
        assert c.get("/alarms").json() == []
        assert c.get("/quarantine").json() == {"total": 0, "by_reason": {}, "newest_at": None}
        assert c.get("/park").json() == {"currency": "CNY"}
        assert c.get("/settlements").json() == []
        end = int(time.time()) // DAY_S * DAY_S
        period = {"merchant_ids": [2], "period_start": end - DAY_S, "period_end": end}
        (closed,) = c.post("/settlements", json=period, headers={"Idempotency-Key": "c1"}).json()
        assert closed["newly_closed"] is True
        s = closed["settlement"]
        assert (s["merchant_id"], s["merchant_name"], s["period_start"], s["period_end"]) == (
            2, "Food court", end - DAY_S, end)
        assert s["payout"] == {"cents": 0, "currency": "CNY"} and s["records"] == 0
        (again,) = c.post("/settlements", json=period, headers={"Idempotency-Key": "c2"}).json()
        assert again == {"newly_closed": False, "settlement": s}
        assert c.get("/settlements").json() == [s]
        assert c.get("/settlements/%d" % s["id"]).json() == s
        error(c.get("/settlements/999"), 404, "settlement_not_found")
        error(c.post("/settlements", json=dict(period, period_start=end - 2 * DAY_S, period_end=end - DAY_S // 2),
                     headers={"Idempotency-Key": "c3"}), 409, "period_overlaps")
        error(c.post("/settlements", json=dict(period, period_start=end, period_end=end + 3 * DAY_S),
                     headers={"Idempotency-Key": "c4"}), 422, "period_in_future")
        error(c.post("/settlements", json=dict(period, merchant_ids=[9]), headers={"Idempotency-Key": "c5"}),
              404, "merchant_not_found")
        error(c.post("/settlements", json=dict(period, period_start=end, period_end=end),
                     headers={"Idempotency-Key": "c6"}), 422, "invalid_period")
    assert sum("api:ops" in line and "settlement.close" in line for line in audit_lines(hub)) == 1


def test_post_retried_with_its_key_is_done_once_and_a_reused_key_refused(park):
    hub, ops = park
    body = {"card_no": 100778, "reason": "stolen", "force": True}
    with hub.client(ops) as c:
        first = c.post("/blacklist", json=body, headers={"Idempotency-Key": "retry-1"})
        assert first.status_code == 200 and first.json()["changed"] is True
        retry = c.post("/blacklist", json=body, headers={"Idempotency-Key": "retry-1"})
        assert retry.status_code == 200 and retry.json() == first.json()      # the first answer, not "unchanged"
        assert retry.headers["Idempotent-Replayed"] == "true"
        error(c.post("/blacklist", json=dict(body, card_no=100779), headers={"Idempotency-Key": "retry-1"}),
              422, "idempotency_key_reused")
        error(c.post("/blacklist", json=body), 422, "invalid_request")    # no key
        # A refusal is the first response too: the retry gets it again without running the service.
        refused = c.post("/terminals/99/lock", headers={"Idempotency-Key": "retry-2"})
        again = c.post("/terminals/99/lock", headers={"Idempotency-Key": "retry-2"})
        assert (again.status_code, again.json()) == (refused.status_code, refused.json())
        assert c.get("/blacklist").json()[0]["card_no"] == 100778 and len(c.get("/blacklist").json()) == 1
    # Another key's Idempotency-Key of the same name is its own.
    other = api_key(hub.workdir, hub.db, "other", "blacklist:write")
    with hub.client(other) as c:
        assert c.post("/blacklist", json=body, headers={"Idempotency-Key": "retry-1"}).json() == \
            {"changed": False, "version": None}
    assert sum("blacklist.add" in line for line in audit_lines(hub)) == 1


def test_metrics_need_fleet_read_and_show_the_hub(park):
    hub, ops = park
    merchant_only = api_key(hub.workdir, hub.db, "books", "merchants:write")
    with hub.client(ops) as c:
        base = hub.url.rsplit("/api/v1", 1)[0]
        error(c.get(base + "/metrics", headers={"Authorization": ""}), 401, "unauthenticated")
        text = c.get(base + "/metrics").text
        assert 'parkcard_terminals{state="offline"} 1.0' in text
        assert "parkcard_downlinks_refused_total" in text and "parkcard_batch_frames_bucket" in text
        assert 'parkcard_terminal_backlog_records{terminal="12"} 0.0' in text
    with hub.client(merchant_only) as c:
        error(c.get(base + "/metrics"), 403, "scope_missing")


def test_metrics_text_names_every_hub_counter_and_quarantine_reason():
    from parkcard.api.metrics import HubMetrics
    from parkcard.domain.lifecycle import RecordStatus
    metrics = HubMetrics()
    metrics.batch(3)
    metrics.batch(64)
    stats = {RecordStatus.APPLIED: 7, "frames": 2, "above_full": 1, "quarantined.bad_mac": 4,
             "uncertain_cards": 2, "downlinks_refused": 5}
    gauges = dict(registered=2, online=1, backlog=[(12, 9, 30)], alarms={"clone": 1}, quarantine={"bad_mac": 4})
    text = metrics.text(stats, gauges).decode()
    for line in ('parkcard_applied_total 7.0', 'parkcard_frames_total 2.0', 'parkcard_above_full_total 1.0',
                 'parkcard_quarantined_total{reason="bad_mac"} 4.0', 'parkcard_uncertain_cards 2.0',
                 'parkcard_downlinks_refused_total 5.0', 'parkcard_terminals{state="offline"} 1.0',
                 'parkcard_terminal_backlog_records{terminal="12"} 9.0',
                 'parkcard_terminal_oldest_unsynced_seconds{terminal="12"} 30.0', 'parkcard_alarms{kind="clone"} 1.0',
                 'parkcard_quarantine_stored{reason="bad_mac"} 4.0', 'parkcard_batch_frames_count 2.0',
                 'parkcard_batch_frames_bucket{le="4.0"} 1.0', 'parkcard_batch_frames_sum 67.0'):
        assert line in text.splitlines(), line


def test_concurrent_posts_with_one_key_do_the_thing_once(park):
    import asyncio

    import httpx
    hub, ops = park
    body = {"card_no": 100780, "reason": "lost", "force": True}

    async def race():
        async with httpx.AsyncClient(base_url=hub.url, headers={"Authorization": "Bearer " + ops},
                                     timeout=30) as c:
            return await asyncio.gather(*(c.post("/blacklist", json=body, headers={"Idempotency-Key": "race"})
                                          for _ in range(8)))
    answers = asyncio.run(race())
    assert {r.status_code for r in answers} == {200}
    assert [r.json() for r in answers] == [answers[0].json()] * 8 and answers[0].json()["changed"] is True
    assert sum("blacklist.add" in line for line in audit_lines(hub)) == 1
