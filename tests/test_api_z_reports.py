"""/api/v1/z-reports over real HTTP, against the hub as `parkcard up` starts it, on SQLite and PostgreSQL: the
cashiers' Z reports listed newest first by park day and desk, one with every figure, under scope reports:z alone
(a reports:read key is refused), an unknown one 404, a wrong filter told; the OpenAPI document names them."""

import asyncio
import time

import pytest

from api_kit import UpHub, api_key, cli
from parkcard.app import Hub
from parkcard.services import park
from parkcard_devkit.testing import DESK_ID
from test_api import error
from test_credits_cli_api import issued_card

pytestmark = [pytest.mark.api, pytest.mark.broker]


def park_today(db):
    """The park day of now, as its gates count it."""
    async def read():
        hub = await Hub(db).open()
        try:
            return await park.today(hub.storage, time.time())
        finally:
            await hub.stop()
    return asyncio.run(read())


def test_z_reports_are_listed_by_day_and_desk_and_read_with_every_figure(tmp_path, store_url):
    issued_card(tmp_path, store_url)            # 100.00 paid in cash at the desk, in a shift with no float
    for args in (("shift", "close", "--desk", str(DESK_ID), "--counted", "99.50"),      # Z 1: 0.50 short
                 ("shift", "open", "--desk", str(DESK_ID), "--float", "50"),
                 ("shift", "close", "--desk", str(DESK_ID), "--counted", "50")):        # Z 2: even
        out = cli(tmp_path, store_url, *args)
        assert out.returncode == 0, out.stderr
    today = park_today(store_url)
    reviewer = api_key(tmp_path, store_url, "finance-z", "reports:z")
    totals_only = api_key(tmp_path, store_url, "finance", "reports:read")
    hub = UpHub(tmp_path, store_url).start()
    try:
        with hub.client(reviewer) as c:
            listed = c.get("/z-reports").json()
            assert [(z["number"], z["desk_terminal_id"], z["cash_expected"]["cents"], z["cash_counted"]["cents"],
                     z["difference"]) for z in listed] == [
                (2, DESK_ID, 5000, 5000, {"cents": 0, "currency": "CNY"}),
                (1, DESK_ID, 10000, 9950, {"cents": -50, "currency": "CNY"})]
            assert listed[1]["opened_by"] == "desk-fixture" and listed[1]["closed"] >= listed[1]["opened"]
            assert [z["number"] for z in c.get("/z-reports", params={"day": today, "desk": DESK_ID}).json()] == [2, 1]
            assert c.get("/z-reports", params={"day": today - 1}).json() == []
            assert c.get("/z-reports", params={"desk": DESK_ID + 1}).json() == []
            assert [z["number"] for z in c.get("/z-reports", params={"limit": 1}).json()] == [2]
            one = c.get("/z-reports/1").json()
            assert (one["number"], one["shift"], one["issues"], one["drawer_float"]["cents"]) == (1, 1, 1, 0)
            assert one["issue_loads"] == [{"method": "cash", "count": 1, "amount": {"cents": 10000, "currency": "CNY"}}]
            assert one["difference"]["cents"] == -50 and one["top_ups"] == []
            assert "no Z report 9" in error(c.get("/z-reports/9"), 404, "z_report_not_found")
            error(c.get("/z-reports", params={"day": "yesterday"}), 422, "invalid_request")
            error(c.get("/z-reports", params={"limit": 0}), 422, "invalid_request")
            paths = c.get("/openapi.json").json()["paths"]
            assert "/api/v1/z-reports" in paths and "/api/v1/z-reports/{number}" in paths
        with hub.client(totals_only) as c:
            for path in ("/z-reports", "/z-reports/1"):
                assert "needs scope reports:z" in error(c.get(path), 403, "scope_missing"), path
    finally:
        assert hub.stop() == 0
