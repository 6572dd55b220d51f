"""The hub prices every booth sale again (SPEC.md §4.11): from the price list and discount rules versions
its sale lines name, with the same protocol.pricing as the terminal. A difference is a fact, not a
refusal: the sale stands as the card paid it, and an alarm names both figures (parkcard.domain.repricing).
"""

from protocol import frames, pricing
from protocol import record as R
from protocol import sale_line as SL

from parkcard.domain.lifecycle import ALARM_REPRICING, RecordStatus
from parkcard.domain.repricing import LINES_BELOW, lines_of, reprice
from parkcard.services.discounts import merchant_rules
from parkcard.services.items import entries_of


class _Versions:
    """The price lists and rules versions one pass needs, each read once."""

    def __init__(self, store):
        self.store = store
        self.lists = {}
        self.rules = {}

    async def price_list(self, merchant_id, version):
        """({code: Item}, free_allowed) of the merchant's list at version (empty when the hub has no such version)."""
        key = (merchant_id, version)
        if key not in self.lists:
            found = await self.store.price_list(merchant_id, version) if version else None
            self.lists[key] = ({item.code: item for item in entries_of(found)},
                               found is None or found.free_amount)
        return self.lists[key]

    async def discounts(self, merchant_id, version):
        """The protocol.pricing.Discounts the merchant's terminals had at that rules version (0: none)."""
        key = (merchant_id, version)
        if key not in self.rules:
            found = await self.store.discount_rules(version) if version else None
            self.rules[key] = (await merchant_rules(self.store, merchant_id, version) if found is not None
                               else pricing.Discounts(version))
        return self.rules[key]


async def _price_stored(versions, merchant_id, stored, seqs):
    """[Repricing] of the applied debits at seqs among one terminal's [StoredRecord] `stored` that carry lines."""
    records = {row.seq: (row, R.Record.decode(row.raw)) for row in stored}
    below = {seq: rec for seq, (_row, rec) in records.items()}
    done = []
    for seq in seqs:
        row, sale = records.get(seq, (None, None))
        if sale is None or sale.kind != R.KIND_DEBIT or row.status != RecordStatus.APPLIED:
            continue
        lines = lines_of(sale, below)
        if lines is None:
            continue            # a keyed amount, or a booth without a price list: nothing to price again
        _tier, _i, _n, list_version, rules_version = SL.line_fields(lines[0])
        items, free_allowed = await versions.price_list(merchant_id, list_version)
        rules = await versions.discounts(merchant_id, rules_version)
        done.append(reprice(sale, lines, items, free_allowed, rules))
    return done


async def reprice_sales(store, sales):
    """Price again the applied debits [(terminal_id, merchant_id, seq)] that carry sale lines; alarm each
    difference once. Return [domain.repricing.Repricing] of the sales priced."""
    versions = _Versions(store)
    by_terminal = {}
    for terminal_id, merchant_id, seq in sales:
        by_terminal.setdefault((terminal_id, merchant_id), []).append(seq)
    done = []
    for (terminal_id, merchant_id), seqs in by_terminal.items():
        stored = await store.records_between(terminal_id, min(seqs) - LINES_BELOW, max(seqs))
        for result in await _price_stored(versions, merchant_id, stored, seqs):
            if result.difference is not None:
                await store.add_alarm_once(ALARM_REPRICING, result.difference, result.card_no, terminal_id)
            done.append(result)
    return done


async def reprice_all(store):
    """The auditor's pass (parkcard.audit): every booth sale priced again, nothing written.
    Return ([Repricing], [Repricing differences with no repricing alarm])."""
    versions = _Versions(store)
    alarmed = {(a.terminal_id, a.detail) for a in await store.alarms() if a.kind == ALARM_REPRICING}
    done = []
    for terminal in await store.terminals():
        if terminal.role != frames.ROLE_POS:
            continue
        stored = await store.records(terminal.id)
        seqs = [row.seq for row in stored if row.kind == R.KIND_DEBIT]
        done += await _price_stored(versions, terminal.merchant_id, stored, seqs)
    return done, [r for r in done if r.difference is not None and (r.terminal_id, r.difference) not in alarmed]
