"""Pending credits end to end over a real Mosquitto, on SQLite and PostgreSQL: the hub pushes the list to
two booths, whose real firmware wallets both hold it offline; the card taps at one, then the other; both
upload later over MQTT: the card is credited once and the ledger check re-derives it all."""

import asyncio

import pytest

from protocol import frames

from parkcard import audit
from parkcard.domain import accounts
from parkcard.services import credits as credit_service
from parkcard_devkit.testing import DESK_ID, connect_booth, desk_issued, start_hub
from sim.cards import card_balance
from terminal.credits import Credits
from test_credits_hub import journal_entries, terminal, the_card
from test_hub_records import DAY_S, UID
from test_wallet import PARK

pytestmark = pytest.mark.broker


def run(coro, timeout_s=120):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


async def wait_for(term, ftype, n):
    await asyncio.to_thread(term.wait, lambda t: len(t.downlinks(ftype)) >= n)
    return term.downlinks(ftype)


def test_a_credit_pushed_to_two_offline_booths_lands_once(store_url, broker, tmp_path):
    async def scenario():
        hub = await start_hub(store_url, broker.host, broker.port)
        try:
            card_no = (await desk_issued(hub, UID, 10000, time_s=DAY_S)).card_no
            booths = {tid: await connect_booth(hub, broker.host, broker.port, tid) for tid in (5, 6)}
            await credit_service.grant_credit(hub.storage, hub.actor("test:cashier"), card_no, 2500,
                                              "top-up paid at the gift shop")
            wallets = {}
            for tid, term in booths.items():
                [pushed] = await wait_for(term, frames.T_CREDITS, 1)
                rig = terminal(tmp_path, hub, tid, "t%d" % tid)
                store = Credits(str(tmp_path / ("c%d" % tid)))
                store.on_frame(pushed)      # the frame as the broker delivered it, verified by the terminal
                rig.wallet.credits = store
                wallets[tid] = rig
            # A terminal that holds the version is not sent the list again at its sync; one with none is.
            held = wallets[5].wallet.credits.version
            booths[5].publish(booths[5].frame(frames.T_SYNC, frames.sync_body(0, 0, 0, held)))
            booths[6].publish(booths[6].frame(frames.T_SYNC, frames.sync_body(0, 0, 0, 0)))
            await wait_for(booths[5], frames.T_TIME, 1)
            await wait_for(booths[6], frames.T_TIME, 1)
            resent = [len(booths[t].downlinks(frames.T_CREDITS)) for t in (5, 6)]
            # Offline: the card taps at 5, then at 6.
            vc = wallets[5].tap(the_card(card_no))
            assert wallets[5].wallet.debit(300).ok
            wallets[6].tap(vc)
            assert wallets[6].wallet.debit(200).ok
            # Back online, 6 uploads first, then 5.
            for tid in (6, 5):
                entries = journal_entries(wallets[tid])
                booths[tid].upload(entries)
                await asyncio.to_thread(booths[tid].wait_acked, len(entries))
            rows = await hub.storage.pending_credits(card_no)
            report = await audit.check(hub.storage)
            return (resent, [(r.state, r.delivered_terminal) for r in rows], card_balance(PARK, vc).balance_cents,
                    await hub.storage.account_balance(accounts.card_account(card_no)),
                    await hub.storage.account_balance(accounts.PENDING_CREDITS), report.ok, report.lines(),
                    await hub.storage.quarantined())
        finally:
            for term in locals().get("booths", {}).values():
                term.close()
            await hub.stop()
    resent, rows, on_card, ledger_card, pending, ok, lines, quarantined = run(scenario())
    assert resent == [1, 2]
    assert rows == [("delivered", 5)]
    assert on_card == ledger_card == 10000 + 2500 - 500
    assert pending == 0 and quarantined == []
    assert ok, lines
