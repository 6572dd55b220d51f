"""A seeded, deterministic simulation of the whole park with every fault at once (after TigerBeetle's VOPR).

One seed drives everything: terminals running the real firmware (wallet,
journal, sync, card writer) on virtual readers and a power-cuttable flash
layer, visitors with virtual MIFARE cards, the real hub (ingest, store on a
real SQLite file) and an in-process broker and network between them, all on a
simulated clock. An auditor checks the park after every step.

    from vopr.runner import run_seed, Options
    outcome = run_seed(7, Options())          # same seed, same trace, byte for byte
    outcome.ok, outcome.violations, outcome.trace

It lives under tests/ because it is test kit: it drives the product from the
outside (hub, firmware, protocol) and is never shipped with the hub package.
"""
