"""/api/v1 of the front desk and of webhooks over a simulated park (its desk terminal on a virtual reader):
stock, issue and top up the card on the desk with the Idempotency-Key as the operation id (the same key again is
the same operation), a card that left is told, and webhooks registered, listed and removed; each needs its
scope; the top-up reaches a webhook on loopback."""

import json

import httpx
import pytest

from protocol import desk as D
from protocol import record as R
from sim.cards import card_balance
from sim.mifare import MifareClassic1K

from parkcard.services import park as park_service
from parkcard.services import apikeys, webhooks
from parkcard.services.privileges import Actor
from parkcard_devkit.park_sim import DESK_TERMINAL_ID
from test_webhooks import SECRET, receiver, signed_by  # noqa: F401 - receiver is a fixture
from web_kit import ParkThread

pytestmark = [pytest.mark.api, pytest.mark.broker, pytest.mark.slow]

UID = bytes.fromhex("04ab5c0000b002")
NEW_UID = bytes.fromhex("04ab5c0000b003")


@pytest.fixture
def park(tmp_path):
    park = ParkThread(tmp_path / "park").start()
    yield park
    park.stop()


def client(park, *scopes):
    _id, secret = park.call(apikeys.create(park.hub.storage, Actor("setup"), "-".join(scopes) or "none", scopes))
    return httpx.Client(base_url=park.url + "/api/v1", headers={"Authorization": "Bearer %s" % secret}, timeout=60)


def test_a_kiosk_stocks_issues_and_tops_up_the_card_on_the_desk_once_per_key(park, receiver):
    desk = "/desks/%d" % DESK_TERMINAL_ID
    card = MifareClassic1K(UID)
    park.hub.webhooks.poll_s = 0.05
    park.call(webhooks.add(park.hub.storage, Actor("setup"), receiver.url, ["top_up"], SECRET))
    with client(park, "desk:operate") as api:
        park.on_loop(park.sim.put_on_desk, card)
        seen = api.get(desk + "/card")
        assert seen.status_code == 200 and seen.json()["kind"] == "blank" and seen.json()["uid"] == UID.hex()
        stocked = api.post(desk + "/stock", json={"uid": UID.hex()}, headers={"Idempotency-Key": "stock-1"})
        assert stocked.status_code == 200, stocked.text
        issued = api.post(desk + "/issue", json={"cash_cents": 10000, "deposit_cents": 2000},
                          headers={"Idempotency-Key": "issue-1"})
        assert issued.status_code == 200 and issued.json()["balance"] == {"cents": 10000, "currency": "CNY"}
        top_up = {"json": {"cash_cents": 2500}, "headers": {"Idempotency-Key": "top-up-1"}}
        first = api.post(desk + "/top-up", **top_up)
        again = api.post(desk + "/top-up", **top_up)        # a retry: the same operation
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json() and first.json()["balance"]["cents"] == 12500
        assert card_balance(park.sim.park_keys, card).balance_cents == 12500
        read = api.get(desk + "/card").json()
        assert (read["kind"], read["card_no"], read["cash"]["cents"], read["status"]) == (
            "park_card", issued.json()["card_no"], 12500, "active")
        park.on_loop(park.sim.take_from_desk, card)
        gone = api.post(desk + "/top-up", json={"cash_cents": 100}, headers={"Idempotency-Key": "top-up-2"})
        assert gone.status_code == 422 and "is the card on it" in gone.json()["error"]["message"]
        assert api.post(desk + "/top-up", json={"cash_cents": 0}, headers={"Idempotency-Key": "t3"}).status_code == 422
    records = [R.Record.decode(bytes(r.raw)) for r in park.call(park.hub.storage.records(D.DESK_SOURCE_ID))]
    assert [(r.kind, r.amount_cents) for r in records] == [(R.KIND_ISSUE, 10000), (R.KIND_TOPUP, 2500)]
    headers, body, _status = receiver.next()       # the top-up's webhook, signed (the issue is no top_up)
    assert signed_by(headers, body, SECRET)
    event = json.loads(body)
    assert (event["event"], event["card_no"], event["amount_cents"]) == ("top_up", issued.json()["card_no"], 2500)
    assert receiver.got.empty()
    with client(park, "fleet:read") as api:
        refused = api.post(desk + "/top-up", json={"cash_cents": 100}, headers={"Idempotency-Key": "x-1"})
        assert refused.status_code == 403 and "desk:operate" in refused.json()["error"]["message"]


def test_webhooks_are_registered_listed_and_removed_through_the_api(park):
    with client(park, "webhooks:manage") as api:
        added = api.post("/webhooks", json={"url": "https://tickets.example.com/in", "events": ["top_up"]},
                         headers={"Idempotency-Key": "hook-1"})
        assert added.status_code == 200 and len(added.json()["secret"]) >= 16
        listed = api.get("/webhooks").json()
        assert [(h["id"], h["url"], h["events"], h["due"]) for h in listed] == [
            (added.json()["id"], "https://tickets.example.com/in", ["top_up"], 0)]
        bad = api.post("/webhooks", json={"url": "mailto:x@example.com", "events": ["sale"]},
                       headers={"Idempotency-Key": "hook-2"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_webhook"
        assert api.delete("/webhooks/%d" % added.json()["id"]).json() == {"changed": True}
        assert api.delete("/webhooks/%d" % added.json()["id"]).status_code == 404
        assert api.get("/webhooks").json() == []
    with client(park, "fleet:read") as api:
        assert api.get("/webhooks").status_code == 403


def test_a_card_is_reported_lost_found_and_replaced_through_the_api_with_its_hold(tmp_path):
    park = ParkThread(tmp_path / "park", terminals=1).start()
    try:
        sim = park.sim
        park.call(park_service.set_offline_rules(sim.hub.storage, sim.hub.actor("test:manager"), 86400, 1500))
        old = park.call(sim.new_card(UID))
        card_no = park.call(sim.at_desk(old, park.hub.desk(DESK_TERMINAL_ID).issue("issue-to-lose", 8000))).card_no
        booth = sim.terminals[0]
        park.on_loop(booth.relay.cut)     # a booth offline at the report: it may hold the card's debits
        park.call(sim.wait_for(lambda: not booth.terminal.client.connected, 30, "the booth stayed connected"))
        lost_path, found_path = "/cards/%d/lost" % card_no, "/cards/%d/found" % card_no
        with client(park, "cards:loss", "desk:replace") as api:
            unknown = api.post("/cards/999999/lost", json={}, headers={"Idempotency-Key": "l0"})
            assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "card_not_issued"
            lost = api.post(lost_path, json={"reason": "stolen"}, headers={"Idempotency-Key": "l1"})
            assert lost.status_code == 200, lost.text
            assert (lost.json()["state"], lost.json()["reason"]) == ("lost", "stolen")
            assert card_no in park.call(park.hub.storage.blacklist_cards())
            found = api.post(found_path, json={}, headers={"Idempotency-Key": "f1"})
            assert found.status_code == 200 and found.json()["state"] == "found"
            assert card_no not in park.call(park.hub.storage.blacklist_cards())
            again = api.post(found_path, json={}, headers={"Idempotency-Key": "f2"})
            assert again.status_code == 422 and again.json()["error"]["code"] == "card_not_lost"
            assert api.post(lost_path, json={}, headers={"Idempotency-Key": "l2"}).json()["state"] == "lost"
            new = park.call(sim.new_card(NEW_UID))
            park.on_loop(sim.put_on_desk, new)
            replace = {"json": {"lost_card_no": card_no}, "headers": {"Idempotency-Key": "r1"}}
            replaced = api.post("/desks/%d/replace" % DESK_TERMINAL_ID, **replace)
            assert replaced.status_code == 200, replaced.text
            body = replaced.json()
            assert body["lost_card_no"] == card_no and body["card_no"] != card_no
            assert 0 < body["hold"]["cents"] < 8000 and body["hold"]["currency"] == "CNY"     # a daily cap or more
            assert body["balance"]["cents"] + body["hold"]["cents"] == 8000
            assert body["release_at"] > lost.json()["reported_at"]
            assert api.post("/desks/%d/replace" % DESK_TERMINAL_ID, **replace).json() == body    # a retry
            assert card_balance(sim.park_keys, new).balance_cents == body["balance"]["cents"]
            refused = api.post(found_path, json={}, headers={"Idempotency-Key": "f3"})
            assert refused.status_code == 422
            assert "replaced card stays blacklisted" in refused.json()["error"]["message"]
        with client(park, "desk:operate") as api:
            no_scope = api.post("/desks/%d/replace" % DESK_TERMINAL_ID, json={"lost_card_no": card_no},
                                headers={"Idempotency-Key": "r2"})
            assert no_scope.status_code == 403 and "desk:replace" in no_scope.json()["error"]["message"]
            no_scope = api.post(lost_path, json={}, headers={"Idempotency-Key": "l3"})
            assert no_scope.status_code == 403 and "cards:loss" in no_scope.json()["error"]["message"]
    finally:
        park.stop()
