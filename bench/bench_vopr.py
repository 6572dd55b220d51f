"""A long campaign of the whole-park fault simulation (tests/vopr): seeds per second, faults by kind, findings.

    .venv/bin/python bench/bench_vopr.py [--seeds 1000] [--first 0] [--steps 300] [--terminals 3] [--cards 8]
                                         [--fault-rate 0.12]
                                         [--with disk_full,poisoned_topic] [--check false_clone_alarm]
                                         [--shrink]

Each seed is a whole run (fault phase, drain, final audit) in this process;
the figures are for this machine, printed with the command that made them.
--with switches on fault kinds that are off by default (handling known to be
wrong today), --check counts known-weak checks as violations; --shrink prints
the shortest trace of the first failing seed.
"""

import argparse
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from vopr.faults import Options  # noqa: E402
from vopr.runner import run_seed, shortest  # noqa: E402


def main(argv=None):
    """Run the campaign and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--terminals", type=int, default=3)
    parser.add_argument("--cards", type=int, default=8)
    parser.add_argument("--fault-rate", type=float, default=None, help="share of the steps that inject a fault")
    parser.add_argument("--with", dest="extra", default="", help="more fault kinds, comma separated")
    parser.add_argument("--check", dest="checks", default="", help="known-weak checks to count, comma separated")
    parser.add_argument("--shrink", action="store_true")
    args = parser.parse_args(argv)
    options = Options(terminals=args.terminals, cards=args.cards, steps=args.steps,
                      fault_rate=args.fault_rate).with_faults(*[k for k in args.extra.split(",") if k]).with_checks(
        *[k for k in args.checks.split(",") if k])
    print("command: .venv/bin/python bench/bench_vopr.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])))
    print("options: " + options.describe())
    faults, found, suppressed, first_failing = Counter(), Counter(), Counter(), {}
    steps = acks = 0
    started = time.perf_counter()
    for seed in range(args.first, args.first + args.seeds):
        outcome = run_seed(seed, options)
        faults.update(outcome.faults)
        suppressed.update(outcome.suppressed)
        steps += len(outcome.trace)
        acks += outcome.acks_checked
        for violation in outcome.violations:
            found[violation.kind] += 1
            first_failing.setdefault(violation.kind, (seed, violation))
    elapsed = time.perf_counter() - started
    print("seeds: %d in %.1f s = %.1f seeds/s (%.0f steps/s), acks checked against the database: %d" % (
        args.seeds, elapsed, args.seeds / elapsed, steps / elapsed, acks))
    print("faults injected by kind (%d in all):" % sum(faults.values()))
    for kind, n in sorted(faults.items()):
        print("  %-22s %7d" % (kind, n))
    print("violations by kind: %s" % (dict(sorted(found.items())) or "none"))
    print("known-weak checks that failed (suppressed, --check to count them): %s" % (
        dict(sorted(suppressed.items())) or "none"))
    for kind, (seed, violation) in sorted(first_failing.items()):
        print("  first %s: seed %d, %r" % (kind, seed, violation))
    if args.shrink and first_failing:
        seed = min(s for s, _v in first_failing.values())
        print(shortest(seed, options).report())
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
