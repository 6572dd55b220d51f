"""Pending credits at the hub: granted, listed, cancelled; delivered by the real firmware at taps on two
offline terminals and ingested exactly once, on SQLite and PostgreSQL."""

import asyncio

import pytest

from protocol import card, credits
from protocol import hub_credits
from protocol import record as R

from parkcard import audit
from parkcard.app import Hub
from parkcard.domain import accounts
from parkcard.services import credits as credit_service
from parkcard.services.errors import Refusal
from parkcard.services.privileges import Actor, ServiceError
from parkcard.store import credits as credit_store
from parkcard_devkit.testing import DESK_ID, desk_issued
from sim.cards import card_balance, issued_card
from terminal.credits import Credits
from protocol.record import STATUS_COMMITTED, STATUS_UNCERTAIN, STATUS_VOIDED
from terminal.journal import COMMITTED, HANDED_OVER, VOIDED
from test_hub_records import DAY_S, UID, park
from test_credits_terminal import card_leaves_after_the_marker
from test_wallet import PARK, Rig

ADMIN = Actor("test:admin")


def run(coro, timeout_s=120):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


class _Frame:
    def __init__(self, body):
        self.body = body


async def with_card(db, steps):
    """Run steps(hub, card_no) on a park with one issued card of 100.00; return steps' result."""
    hub = await park(db)
    try:
        card_no = (await desk_issued(hub, UID, 10000, time_s=DAY_S)).card_no
        return await steps(hub, card_no)
    finally:
        await hub.stop()


def terminal(tmp_path, hub, terminal_id, name):
    """The real firmware wallet of booth terminal_id (its own records MAC), on a virtual reader."""
    rig = Rig(tmp_path / name)
    rig.wallet.terminal_id = terminal_id
    rig.wallet.record_mac = hub.registry.get(terminal_id).record_mac
    rig.now = DAY_S + 3600
    rig.wallet.last_hub_contact_s = rig.wallet.blacklist_updated_s = rig.now
    return rig


async def send_list(hub, rig, tmp_path, name):
    """What the hub's T_CREDITS would bring the terminal (the same bodies Downlink.credits sends)."""
    version, listed = await hub.storage.credits_list()
    store = Credits(str(tmp_path / name))
    for body in hub_credits.credits_bodies(version, listed):
        store.on_frame(_Frame(body))
    rig.wallet.credits = store
    await hub.storage.credits_sent([c[:2] for c in listed])


def journal_entries(rig):
    """[(upload status, raw)] of what the terminal's sync would upload now."""
    upload_status = {COMMITTED: STATUS_COMMITTED, VOIDED: STATUS_VOIDED, HANDED_OVER: STATUS_UNCERTAIN}  # SPEC §4.3
    return [(upload_status[status], raw) for _seq, status, raw in rig.journal.unsynced(50)]


def the_card(card_no):
    return issued_card(PARK, UID, card.CardInfo(card_no, expiry_day=0, perms=0xFFFF), 10000, DAY_S)


async def books(hub, card_no):
    """(card ledger balance, pending liability, losses, the ledger check's verdict)."""
    report = await audit.check(hub.storage)
    return (await hub.storage.account_balance(accounts.card_account(card_no)),
            await hub.storage.account_balance(accounts.PENDING_CREDITS),
            await hub.storage.account_balance(accounts.LOSSES), report.ok, report.lines())


def test_a_credit_is_granted_listed_and_cancelled_with_its_postings(store_url):
    async def steps(hub, card_no):
        first = await credit_service.grant_credit(hub.storage, ADMIN, card_no, 2500, "top-up paid at desk 2")
        second = await credit_service.grant_credit(hub.storage, ADMIN, card_no, 700, "API top-up",
                                                   source=accounts.API_PAYMENTS)
        listed = await hub.storage.credits_list()
        cancelled = await credit_service.cancel_credit(hub.storage, ADMIN, card_no, 1)
        after = await hub.storage.credits_list()
        rows = await credit_service.pending_credits(hub.storage, ADMIN, card_no)
        return (first.credit_no, second.credit_no, listed, cancelled, after, [(r.credit_no, r.state) for r in rows],
                await hub.storage.account_balance(accounts.PENDING_CREDITS),
                await hub.storage.account_balance(accounts.API_PAYMENTS), (await audit.check(hub.storage)).ok)
    (n1, n2, listed, cancelled, after, rows, pending, api, ok) = run(with_card(store_url, steps))
    card_no = listed[1][0][0]
    assert (n1, n2) == (1, 2)
    assert listed == (2, [(card_no, 1, 2500), (card_no, 2, 700)])
    assert cancelled == 2500 and after == (3, [(card_no, 2, 700)])
    assert rows == [(1, "cancelled"), (2, "granted")]
    assert (pending, api) == (700, -700)
    assert ok


def test_bad_grants_are_refused_and_grant_nothing(store_url):
    async def steps(hub, card_no):
        out = []
        for args in ((card_no + 7, 100, "x"), (card_no, 0, "x"), (card_no, card.BALANCE_MAX_CENTS + 1, "x"),
                     (card_no, 100, " "), (card_no, 100, "x", "park:bonus")):
            try:
                await credit_service.grant_credit(hub.storage, ADMIN, *args)
                out.append("granted")
            except Refusal as exc:
                out.append(exc.code)
        try:
            await credit_service.grant_credit(hub.storage, Actor("tech", roles=("technician",)), card_no, 100, "x")
        except ServiceError as exc:
            out.append("refused: %s" % ("credits.grant" in str(exc)))
        await credit_service.grant_credit(hub.storage, ADMIN, card_no, 100, "x")
        await hub.storage.credits_sent([(card_no, 1)])
        try:
            await credit_service.cancel_credit(hub.storage, ADMIN, card_no, 1)
        except Refusal as exc:
            out.append(exc.code)
        return out, await hub.storage.credits_list()
    out, (version, listed) = run(with_card(store_url, steps))
    assert out == ["card_not_issued", "out_of_range", "out_of_range", "bad_reason", "bad_source", "refused: True",
                   "credit_not_cancellable"]
    assert version == 1 and len(listed) == 1


def test_a_grant_sent_again_after_a_hub_restart_is_the_first_grant(store_url):
    async def granted_once(hub, card_no):
        first = await credit_service.grant_credit(hub.storage, ADMIN, card_no, 1500, "paid at desk 2",
                                                  grant_id="form-7f3a")
        return card_no, first
    card_no, first = run(with_card(store_url, granted_once))

    async def sent_again():     # a new hub process on the same database: nothing of the first one in memory
        hub = await Hub(store_url).open()
        try:
            again = await credit_service.grant_credit(hub.storage, ADMIN, card_no, 1500, "paid at desk 2",
                                                      grant_id="form-7f3a")
            try:
                await credit_service.grant_credit(hub.storage, ADMIN, card_no, 900, "paid at desk 2",
                                                  grant_id="form-7f3a")
                reused = "granted"
            except Refusal as exc:
                reused = exc.code, str(exc)
            other = await credit_service.grant_credit(hub.storage, ADMIN, card_no, 900, "paid at desk 2",
                                                      grant_id="form-80c1")
            grants = [e for e in hub.storage.oplog.entries() if e["action"] == "credit.grant"]
            return (again, reused, other, await hub.storage.credits_list(),
                    await hub.storage.account_balance(accounts.PENDING_CREDITS), len(grants),
                    (await audit.check(hub.storage)).ok)
        finally:
            await hub.stop()
    again, reused, other, (_version, listed), pending, audited_grants, ok = run(sent_again())
    assert (again.credit_no, again.amount_cents) == (first.credit_no, first.amount_cents) == (1, 1500)
    assert isinstance(again, credit_store.GrantedBefore)
    assert reused[0] == "grant_id_reused" and "credit 1 of 1500 cents to card %d" % card_no in reused[1]
    assert other.credit_no == 2
    assert listed == [(card_no, 1, 1500), (card_no, 2, 900)]
    assert pending == 2400 and audited_grants == 2 and ok


def test_two_offline_terminals_credit_the_card_once(store_url, tmp_path):
    async def steps(hub, card_no):
        await credit_service.grant_credit(hub.storage, ADMIN, card_no, 2500, "top-up paid at desk 2")
        a, b = terminal(tmp_path, hub, 5, "a"), terminal(tmp_path, hub, 6, "b")
        await send_list(hub, a, tmp_path, "ca")
        await send_list(hub, b, tmp_path, "cb")
        # Both go offline; the card taps at A, then at B.
        vc = a.tap(the_card(card_no))
        assert a.wallet.debit(300).balance_cents == 10000 + 2500 - 300
        b.tap(vc)
        assert b.wallet.debit(200).balance_cents == 10000 + 2500 - 500
        # Both upload later, B first.
        quarantined = []
        for rig in (b, a):
            result = await hub.ingest.apply_local(rig.wallet.terminal_id, journal_entries(rig))
            quarantined += result.quarantined
        rows = await hub.storage.pending_credits(card_no)
        return quarantined, [(r.state, r.delivered_terminal) for r in rows], card_balance(PARK, vc).balance_cents, \
            await books(hub, card_no)
    quarantined, rows, on_card, (ledger_card, pending, losses, ok, lines) = run(with_card(store_url, steps))
    assert quarantined == []
    assert rows == [("delivered", 5)]
    assert on_card == ledger_card == 12000
    assert (pending, losses) == (0, 0)
    assert ok, lines


def test_a_card_torn_between_marker_and_wallet_is_credited_once_by_the_next_terminal(store_url, tmp_path,
                                                                                      monkeypatch):
    async def steps(hub, card_no):
        await credit_service.grant_credit(hub.storage, ADMIN, card_no, 2500, "replacement hold released")
        a, b = terminal(tmp_path, hub, 5, "a"), terminal(tmp_path, hub, 6, "b")
        await send_list(hub, a, tmp_path, "ca")
        await send_list(hub, b, tmp_path, "cb")
        vc = a.tap(the_card(card_no))
        card_leaves_after_the_marker(monkeypatch, a, vc)     # A's marker lands, its wallet write does not
        assert a.wallet.debit(300).reason == "read_failed"
        b.tap(vc)
        assert b.wallet.debit(200).balance_cents == 10000 + 2500 - 200
        # A gives up on the card and uploads its credit record as uncertain; B's records come after.
        [(seq, raw)] = list(a.journal.uncertain())
        first = await hub.ingest.apply_local(5, [(R.STATUS_UNCERTAIN, raw)])
        second = await hub.ingest.apply_local(6, journal_entries(b))
        statuses = [(r.seq, r.status) for r in await hub.storage.records(5)]
        rows = await hub.storage.pending_credits(card_no)
        return first.quarantined + second.quarantined, statuses, [(r.state, r.delivered_terminal) for r in rows], \
            card_balance(PARK, vc).balance_cents, await books(hub, card_no)
    quarantined, statuses, rows, on_card, (ledger_card, pending, losses, ok, lines) = run(with_card(store_url, steps))
    assert quarantined == []
    assert statuses == [(1, "voided")]       # the counter chain decides: B's record holds the counter
    assert rows == [("delivered", 6)]
    assert on_card == ledger_card == 12300
    assert (pending, losses) == (0, 0)
    assert ok, lines


def test_a_restored_card_credited_again_is_the_parks_loss_and_blacklisted(store_url):
    async def steps(hub, card_no):
        await credit_service.grant_credit(hub.storage, ADMIN, card_no, 2500, "top-up")
        key = hub.registry.get(5).record_mac
        recs = [R.Record(R.KIND_CREDIT, 5, 1, DAY_S + 10, card_no, UID, 2, 2500, 12500, item=1, discount_cents=0),
                # The card restored to its dump before the credit (counter 1, no marker), credited again.
                R.Record(R.KIND_CREDIT, 5, 2, DAY_S + 20, card_no, UID, 3, 2500, 15000, item=1, discount_cents=0)]
        result = await hub.ingest.apply_local(5, [(R.STATUS_COMMITTED, r.encode(key)) for r in recs])
        alarms = [a.kind for a in await hub.storage.alarms()]
        return result.quarantined, alarms, card_no in await hub.storage.blacklist_cards(), await books(hub, card_no)
    quarantined, alarms, listed, (ledger_card, pending, losses, _ok, _lines) = run(with_card(store_url, steps))
    assert quarantined == [] and "credit_twice" in alarms and listed
    assert (ledger_card, pending, losses) == (15000, 0, -2500)


def test_credit_records_the_hub_did_not_grant_are_quarantined(store_url):
    async def steps(hub, card_no):
        await credit_service.grant_credit(hub.storage, ADMIN, card_no, 2500, "top-up")
        key = hub.registry.get(5).record_mac
        recs = [R.Record(R.KIND_CREDIT, 5, 1, DAY_S, card_no, UID, 2, 2500, 12500, item=2, discount_cents=0),
                R.Record(R.KIND_CREDIT, 5, 2, DAY_S, card_no, UID, 2, 9999, 19999, item=1, discount_cents=0)]
        result = await hub.ingest.apply_local(5, [(R.STATUS_COMMITTED, r.encode(key)) for r in recs])
        return [q[0] for q in result.quarantined], await books(hub, card_no)
    reasons, (ledger_card, pending, _losses, _ok, _lines) = run(with_card(store_url, steps))
    assert reasons == ["credit_unknown", "credit_mismatch"]
    assert (ledger_card, pending) == (10000, 2500)


def test_the_list_a_terminal_holds_is_sent_again_only_when_it_changed(store_url):
    async def steps(hub, card_no):
        sent = []
        hub.downlink.publish = lambda topic, payload: sent.append(payload) or True
        none = await hub.downlink.credits(5, 0)
        await credit_service.grant_credit(hub.storage, ADMIN, card_no, 2500, "top-up")
        first = await hub.downlink.credits(5, 0)
        again = await hub.downlink.credits(5, 1)
        rows = await hub.storage.pending_credits(card_no)
        return none, first, again, rows[0].state, len(sent)
    assert run(with_card(store_url, steps)) == (0, 1, 0, "sent", 1)


def test_a_credit_entry_is_bounded():
    with pytest.raises(Exception):
        hub_credits.credits_bodies(1, [(1, 1, 1)] * (credits.CREDITS_MAX + 1))
