"""/api/v1's card trace, credit cancellation, finance reports and occupancy over real HTTP, against the hub as
`parkcard up` starts it, on SQLite and PostgreSQL: scopes, the park's currency, an idempotent cancellation."""

import time

import pytest

from api_kit import UpHub, api_key, cli
from test_api import error
from test_credits_cli_api import credit_cli, issued_card

pytestmark = [pytest.mark.api, pytest.mark.broker]


def test_trace_reports_occupancy_and_a_cancelled_credit_through_the_api(tmp_path, store_url):
    card_no = issued_card(tmp_path, store_url)          # issued at the desk with 100.00
    assert credit_cli(tmp_path, store_url, "grant", card_no, "12.50", "--reason", "paid by phone").returncode == 0
    finance = api_key(tmp_path, store_url, "finance", "reports:read", "cards:read", "gates:read", "credits:write")
    fleet = api_key(tmp_path, store_url, "fleet", "fleet:read")
    hub = UpHub(tmp_path, store_url).start()
    try:
        now = int(time.time())
        with hub.client(finance) as c:
            (use,) = c.get("/cards/%d/trace" % card_no).json()
            assert (use["kind"], use["amount"], use["balance_after"]) == (
                7, {"cents": 10000, "currency": "CNY"}, {"cents": 10000, "currency": "CNY"})
            error(c.get("/cards/%d/trace" % (card_no + 1)), 422, "card_not_issued")
            (day,) = c.get("/reports/top-ups", params={"start": now - 86400, "end": now + 1}).json()
            assert day["loaded"]["cents"] == 10000 and day["bonus"]["cents"] == 0 and day["records"] == 1
            assert c.get("/reports/sales-by-terminal", params={"start": now - 86400, "end": now + 1}).json() == []
            error(c.get("/reports/top-ups", params={"start": now, "end": now}), 422, "invalid_period")
            owed = c.get("/reports/liabilities").json()
            assert owed["cards"]["cents"] == 10000 and owed["pending_credits"]["cents"] == 1250
            assert c.get("/occupancy").json() == {"total": 0, "areas": {}}
            first = c.post("/cards/%d/credits/1/cancel" % card_no, headers={"Idempotency-Key": "undo-1"})
            assert first.json() == {"card_no": card_no, "credit_no": 1, "amount": {"cents": 1250, "currency": "CNY"}}
            again = c.post("/cards/%d/credits/1/cancel" % card_no, headers={"Idempotency-Key": "undo-1"})
            assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
            error(c.post("/cards/%d/credits/1/cancel" % card_no, headers={"Idempotency-Key": "undo-2"}), 422,
                  "credit_not_cancellable")
            assert c.get("/reports/liabilities").json()["pending_credits"]["cents"] == 0
        with hub.client(fleet) as c:
            for path in ("/cards/%d/trace" % card_no, "/reports/liabilities", "/occupancy"):
                assert "needs scope" in error(c.get(path), 403, "scope_missing")
    finally:
        assert hub.stop() == 0
