"""The whole park in one seeded simulation with every fault at once (tests/vopr), checked by its auditor.

The CI budget runs SEEDS_CI seeds with every fault and check that holds
today. What is known to fail is switched on in tests of its own, each
recording the seed that shows it (strict xfail: the mark goes once the fix
lands). The seeds that showed a desk top-up posted before its card write, a
full disk and a poisoned topic stopping the hub, and uncertain records decided
before the record holding their counter had arrived, stay as tests.
"""

import pytest

from protocol.card import counter_newer

from parkcard.domain import ingest_rules
from parkcard.domain.lifecycle import UncertainOutcome
from parkcard.ingest.downlink import Downlink

from vopr.faults import FAULT_KINDS, KNOWN_WEAK, Options
from vopr.runner import run_seed, shortest

SEEDS_CI = 120
STEPS_CI = 300
# The fault kinds the recorded seeds below were found with (a seed's events depend on the set).
FOUND_WITH = frozenset(FAULT_KINDS) - {"disk_full", "poisoned_topic", "desk_top_up"}


def found(*more, **shape):
    """Options as the recorded seeds were found with, plus more fault kinds."""
    return Options(faults=FOUND_WITH | set(more), **shape)


def _failure(outcome):
    """The report of the shortest failing trace, for the assertion message."""
    return shortest(outcome.seed, outcome.options).report()


def test_same_seed_same_trace_byte_for_byte():
    first, second = run_seed(5), run_seed(5)
    assert first.trace == second.trace
    assert first.ok, _failure(first)
    assert len(first.faults) >= 8 and first.acks_checked > 5     # a run that exercises something
    assert run_seed(6).trace != first.trace


@pytest.mark.slow
def test_a_budget_of_seeds_keeps_every_invariant():
    faults_seen = set()
    for seed in range(SEEDS_CI):
        outcome = run_seed(seed, Options(steps=STEPS_CI))
        assert outcome.ok, _failure(outcome)
        faults_seen.update(outcome.faults)
    assert faults_seen == set(FAULT_KINDS) - set(KNOWN_WEAK)


def test_an_ack_for_a_record_not_stored_is_caught(monkeypatch):
    ack = Downlink.ack

    async def ack_one_ahead(self, terminal_id, upto_seq, applied, rejected):
        return await ack(self, terminal_id, upto_seq + 1, applied, rejected)
    monkeypatch.setattr(Downlink, "ack", ack_one_ahead)
    outcome = run_seed(5, Options(steps=60))
    assert "ack_not_durable" in {v.kind for v in outcome.violations}


def test_seed_32_two_uncertain_records_of_a_card_decided_together_stay_applied():
    # Found by the simulation: the second was re-decided after a nested decision applied it, and
    # marked not_happened while its ledger transaction stayed (parkcard/ingest/pipeline.py Ingest._apply_value).
    outcome = run_seed(32, found(steps=300))
    assert outcome.ok, outcome.report()


def test_seed_28_an_ack_that_met_a_full_flash_leaves_no_phantom_backlog():
    # Found by the simulation: the journal took the ack in RAM before its state file was written; when
    # that write failed no later ack refreshed the depth, and the terminal reported 3 records for ever.
    outcome = run_seed(28, found(terminals=4, cards=5, steps=1000))
    assert outcome.ok, outcome.report()


def test_a_full_disk_never_quarantines_a_good_message():
    # Seed 8 kept a genuine upload as hub_error while the hub quarantined what it failed to store.
    outcome = run_seed(8, found("disk_full"))
    assert "disk_full" in outcome.faults and outcome.ok, outcome.report()


def test_a_poisoned_topic_does_not_stop_the_hub():
    # Seed 0 stopped the consumer for good: parkcard/term-\u00b2/up made int() raise in its failure path.
    outcome = run_seed(0, found("poisoned_topic"))
    assert "poisoned_topic" in outcome.faults and outcome.ok, outcome.report()


def test_a_top_up_whose_card_was_pulled_credits_nothing():
    # Seed 2 posted a desk top-up before its card write: a card pulled first kept its old balance while the
    # ledger credited it. The desk now keeps it pending until the card is read back (parkcard/services/desk).
    outcome = run_seed(2, Options(steps=120, faults=("desk_top_up",)))   # first pulled at step 10
    assert outcome.ok, outcome.report()
    desk = [line for line in outcome.trace if "FAULT desk_top_up" in line]
    assert any("card pulled" in line for line in desk) and any("nothing was charged" in line for line in desk)
    assert sum("posted as desk seq" in line for line in desk) >= 3


def test_seed_13_no_honest_card_is_alarmed_as_a_clone():
    outcome = run_seed(13, found(steps=300).with_checks("false_clone_alarm"))
    assert outcome.ok, outcome.report()


# Seeds 13, 200 and 24 failed while an uncertain record was decided as soon as a later counter of its card
# was known, before the record holding its counter arrived from another terminal: an honest card alarmed as a
# clone (13), the write that never landed applied and the one that did voided (200 by 430 cents, 24 of a bigger
# park by 1790). The rule waits for the next counter's chain now (parkcard/domain/ingest_rules.py). Since the
# blacklist comes in chunks of 128 cards their traces no longer meet that case; seed 49 of the bigger park does.
@pytest.mark.parametrize("seed, options", [(200, found(steps=300)), (24, found(terminals=6, cards=16, steps=600)),
                                           (49, found(terminals=6, cards=16, steps=600))])
def test_every_card_ends_equal_to_its_ledger_account(seed, options):
    outcome = run_seed(seed, options)
    assert outcome.ok, outcome.report()


@pytest.mark.slow
def test_a_failing_seed_shrinks_to_fewer_steps_that_still_fail(monkeypatch):
    # The early uncertain rule put back: seed 49 of a bigger park then applies a write that never landed (as seeds
    # 200 and 24 did in the ledger test above, before the blacklist came in smaller chunks and moved their traces).
    monkeypatch.setattr(ingest_rules, "decide_uncertain", _decided_by_any_newer_counter)
    options = found(terminals=6, cards=16, steps=600)
    full = run_seed(49, options)
    short = shortest(49, options)
    assert not full.ok and not short.ok
    assert short.fault_steps < full.fault_steps
    reported = short.report().split("trace:\n")[1].splitlines()
    assert len(reported) < len(full.trace)
    assert short.trace[:short.fault_steps] == full.trace[:short.fault_steps]    # the same seed: the same events


def _decided_by_any_newer_counter(tx, rec):
    """The uncertain rule before seeds 13, 200 and 24 were fixed: any newer counter of the card decides it."""
    k = rec.card_counter
    if k in tx.counter_rows(rec.card_no, (k,)):
        return UncertainOutcome.VOIDED
    last = tx.card(rec.card_no)[2]
    return UncertainOutcome.HAPPENED if last is not None and counter_newer(last, k) else UncertainOutcome.OPEN
