"""/api/v1's member tiers, consumption rules, booth staff and the manager's and finance's reports (booth sales,
discounts, staff shifts reconciled, the desks' day, tickets, gate passages) over real HTTP, against the hub as
`parkcard up` starts it, on SQLite and PostgreSQL: the park's currency, the scopes each needs."""

import time

import pytest

from api_kit import UpHub, api_key, cli
from test_api import error
from test_credits_cli_api import issued_card

pytestmark = [pytest.mark.api, pytest.mark.broker]


def test_tiers_rules_staff_and_the_park_reports_through_the_api(tmp_path, store_url):
    issued_card(tmp_path, store_url)            # issued at the desk with 100.00 today
    for args in (("merchant", "add", "--id", "2", "--name", "Ice cream", "--commission-bps", "1000"),
                 ("rule", "set", "--category", "3", "--tx-cap", "12.50", "--tiers", "0,1"),
                 ("staff", "add", "--name", "Mei", "--merchant", "2"),
                 ("ticket", "product", "add", "--name", "Day pass", "--type", "day", "--days", "1", "--price", "150.00")):
        out = cli(tmp_path, store_url, *args)
        assert out.returncode == 0, out.stderr
    finance = api_key(tmp_path, store_url, "finance", "reports:read", "merchants:read", "gates:read")
    fleet = api_key(tmp_path, store_url, "fleet", "fleet:read")
    manager = api_key(tmp_path, store_url, "rules", "rules:write")
    hub = UpHub(tmp_path, store_url).start()
    try:
        now = int(time.time())
        today = now // 86400
        with hub.client(finance) as c:
            tiers = c.get("/tiers").json()
            assert [t["code"] for t in tiers] == sorted(t["code"] for t in tiers) and tiers[0]["code"] == 0
            assert {"bonus_bps", "sale_discount_bp", "total_discount_bp", "discount_rules_version"} <= set(tiers[0])
            rules = c.get("/rules").json()
            assert rules["version"] == 1 and rules["rules"] == [{
                "scope": "category", "id": 3, "tx_cap": {"cents": 1250, "currency": "CNY"},
                "daily_cap": {"cents": 0, "currency": "CNY"}, "card_types": ["staff", "visitor"], "tiers": [0, 1],
                "offline_limit": {"cents": 0, "currency": "CNY"}, "member_tier": 1}]
            assert [(s["name"], s["merchant_id"], s["card_no"]) for s in c.get("/staff").json()] == [("Mei", 2, None)]
            period = {"start": now - 86400, "end": now + 1}
            assert c.get("/reports/sales", params=dict(period, by="item")).json() == []
            assert c.get("/reports/discounts", params=period).json() == []
            assert c.get("/reports/staff-shifts", params=period).json() == []
            error(c.get("/reports/sales", params={"start": now, "end": now}), 422, "invalid_period")
            assert c.get("/reports/sales", params=dict(period, by="nonsense")).status_code == 422
            (line,) = c.get("/reports/desk", params={"day": today}).json()
            assert (line["kind"], line["count"], line["amount"]) == ("issue", 1, {"cents": 10000, "currency": "CNY"})
            (product,) = c.get("/reports/tickets").json()
            assert (product["name"], product["sold"], product["revenue"]["cents"]) == ("Day pass", 0, 0)
            passages = c.get("/reports/passages", params={"day": today}).json()
            assert passages["day"] == today and passages["hours"] == [] and passages["refusals"] == {}
        with hub.client(manager) as c:
            body = {"scope": "merchant", "id": 2, "tx_cap_cents": 2000, "card_types": ["visitor"]}
            first = c.post("/rules", json=body, headers={"Idempotency-Key": "ice-cap-1"})
            assert first.json() == {"version": 2, "rule": {
                "scope": "merchant", "id": 2, "tx_cap": {"cents": 2000, "currency": "CNY"},
                "daily_cap": {"cents": 0, "currency": "CNY"}, "card_types": ["visitor"], "tiers": list(range(16)),
                "offline_limit": {"cents": 0, "currency": "CNY"}, "member_tier": 1}}
            again = c.post("/rules", json=body, headers={"Idempotency-Key": "ice-cap-1"})
            assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
            assert "card type 'pets'" in error(c.post("/rules", json=dict(body, card_types=["pets"]),
                                                      headers={"Idempotency-Key": "ice-cap-2"}), 422, "out_of_range")
            error(c.post("/rules", json=dict(body, id=99), headers={"Idempotency-Key": "ice-cap-3"}), 404,
                  "merchant_not_found")
            assert c.delete("/rules/category/3").json() == {"version": 3, "rule": None}
            error(c.delete("/rules/category/3"), 422, "rule_not_found")
            assert [r["scope"] for r in c.get("/rules").json()["rules"]] == ["merchant"]
            changed = c.post("/tiers/1/discounts", json={"sale_discount_bp": 500},
                             headers={"Idempotency-Key": "silver-5"}).json()
            (silver,) = [t for t in c.get("/tiers").json() if t["code"] == 1]
            assert (silver["sale_discount_bp"], silver["discount_rules_version"]) == (
                500, changed["discount_rules_version"])
        with hub.client(fleet) as c:
            assert c.get("/tiers").status_code == 200          # park configuration: any key reads it
            error(c.post("/rules", json={"scope": "category", "id": 1}, headers={"Idempotency-Key": "x-1"}), 403,
                  "scope_missing")
            error(c.delete("/rules/merchant/2"), 403, "scope_missing")
            error(c.post("/tiers/1/discounts", json={}, headers={"Idempotency-Key": "x-2"}), 403, "scope_missing")
            for path, params in (("/staff", None), ("/reports/sales", period), ("/reports/desk", {"day": today}),
                                 ("/reports/passages", {"day": today}), ("/reports/staff-shifts", period)):
                assert "needs scope" in error(c.get(path, params=params), 403, "scope_missing"), path
    finally:
        assert hub.stop() == 0
