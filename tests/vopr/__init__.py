"""A seeded, deterministic simulation of the whole park with every fault at once (after TigerBeetle's VOPR).

One seed drives everything: terminals running the real firmware (wallet,
journal, sync's upload/ack/blacklist handling, state; the desk's card writer
while the starting park is built) on virtual readers and a power-cuttable
flash layer, visitors with virtual MIFARE cards, the real hub (parkcard.app.Hub:
ingest, fleet, downlinks, desk, store on a real SQLite file, restarted by
rebuilding every hub object from that file) and an in-process broker and
lossy network between them, all on one simulated clock. The auditor checks
the park as it goes and after the drain.

    from vopr.runner import run_seed, shortest
    from vopr.faults import Options
    outcome = run_seed(7)                            # every fault whose handling holds today
    outcome.ok, outcome.violations, outcome.faults
    print(shortest(7, Options().with_faults("disk_full")).report())

Modules: clock (the simulated clock, and the hub reading it), flash (power
cuts and a full flash at any firmware file write), net (broker, network,
the terminals' client and the hub's link), terminals (booths and visitors),
park (the world and its single steps), template (the starting park, built
once per process), auditor (the invariants), faults (what a run may do),
runner (the seeded stepper, drain, replay and shrinking).

It lives under tests/ because it is test kit: it drives the product from the
outside and is never shipped with the hub (bench/bench_vopr.py reaches it the
way bench_ingest reaches the hub).

Not simulated: the firmware's own MQTT client and the hub's paho session
(SimClient and SimLink stand in for them), Mosquitto's limits, ACLs and
retained messages, the tap UI and keypad (the wallet is driven directly),
MicroPython and littlefs (CPython on host files: a cut keeps a prefix of the
write), a kill inside SQLite's commit (only before or after a transaction),
lost fsyncs, the hub's wall-clock timers (registry poll, card-write timeout),
CLI-queued commands and admin card requests, settlement, PostgreSQL, and
anything concurrent inside the hub (every step awaits the hub until parked).
"""
