"""`parkcard credit` and /api/v1/cards/{card_no}/credits: the same service, the park's currency, clear refusals,
and a third party's retried POST granting one credit (the API over `parkcard up`, on SQLite and PostgreSQL)."""

import asyncio

import pytest

from api_kit import UpHub, api_key, cli
from parkcard.app import Hub
from parkcard_devkit.testing import DESK_ID, desk_issued

UID = b"\x04\x01\x02\x03"


def credit_cli(workdir, db, *args):
    return cli(workdir, db, "credit", *[str(a) for a in args])


def issued_card(workdir, db):
    """A park with a desk and one issued card of 100.00; return its number."""
    for args in (("merchant", "add", "--id", "1", "--name", "Park desk", "--commission-bps", "0"),
                 ("terminal", "add", "--id", str(DESK_ID), "--merchant", "1", "--role", "desk", "--name", "desk")):
        out = cli(workdir, db, *args)
        assert out.returncode == 0, out.stderr

    async def issue():
        hub = await Hub(db).open()
        try:
            return (await desk_issued(hub, UID, 10000)).card_no
        finally:
            await hub.stop()
    return asyncio.run(issue())


def test_the_cli_grants_lists_and_cancels_in_the_parks_currency(tmp_path, store_url):
    card_no = issued_card(tmp_path, store_url)
    out = credit_cli(tmp_path, store_url, "grant", card_no, "12.50", "--reason", "paid at desk 2")
    assert out.returncode == 0, out.stderr
    assert "credit 1 of card %d: CNY 12.50, lands at the card's next tap" % card_no in out.stdout
    listed = credit_cli(tmp_path, store_url, "--card", card_no).stdout
    assert "CNY 12.50" in listed and "granted" in listed and "paid at desk 2" in listed
    cancelled = credit_cli(tmp_path, store_url, "cancel", card_no, 1)
    assert cancelled.returncode == 0 and "CNY 12.50 back to its source" in cancelled.stdout
    for args, says in ((("grant", card_no, "12.505", "--reason", "x"), "at most 2 decimals"),
                       (("grant", card_no, "1,000", "--reason", "x"), "is not an amount"),
                       (("grant", card_no + 1, "5", "--reason", "x"), "was never issued here"),
                       (("cancel", card_no, 1), "is cancelled")):
        bad = credit_cli(tmp_path, store_url, *args)
        assert bad.returncode == 2 and says in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    assert "cancelled" in credit_cli(tmp_path, store_url).stdout


@pytest.mark.api
@pytest.mark.broker
def test_a_third_party_credits_a_card_once_per_idempotency_key(tmp_path, store_url):
    card_no = issued_card(tmp_path, store_url)
    writer = api_key(tmp_path, store_url, "payments", "credits:write")
    reader = api_key(tmp_path, store_url, "fleet", "fleet:read")
    hub = UpHub(tmp_path, store_url).start()
    try:
        with hub.client(writer) as c:
            body = {"amount_cents": 3000, "reason": "online top-up order 881"}
            first = c.post("/cards/%d/credits" % card_no, json=body, headers={"Idempotency-Key": "order-881"})
            assert first.status_code == 200, first.text
            again = c.post("/cards/%d/credits" % card_no, json=body, headers={"Idempotency-Key": "order-881"})
            assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
            credit = first.json()
            assert (credit["credit_no"], credit["amount"], credit["state"]) == (
                1, {"cents": 3000, "currency": "CNY"}, "granted")
            assert credit["granted_by"] == "api:payments"
            unknown = c.post("/cards/%d/credits" % (card_no + 1), json=body, headers={"Idempotency-Key": "o-2"})
            assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "card_not_issued"
            zero = c.post("/cards/%d/credits" % card_no, json=dict(body, amount_cents=0),
                          headers={"Idempotency-Key": "o-3"})
            assert zero.status_code == 422
            listed = c.get("/cards/%d/credits" % card_no).json()
            assert [(x["credit_no"], x["amount"]["cents"]) for x in listed] == [(1, 3000)]
        with hub.client(reader) as c:
            refused = c.get("/cards/%d/credits" % card_no)
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "scope_missing"
    finally:
        assert hub.stop() == 0
