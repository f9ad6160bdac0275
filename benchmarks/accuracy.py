"""Errors and wall time of the graded run, hw02.py, on planted case families.

Missed + wrongly flagged (the grader's count) a case; hw02.py runs as its own process, as the grader runs it, so
wall times include start-up.

    python -m benchmarks accuracy                       # every small family, 20 seeds each
    python -m benchmarks accuracy --families exact --seeds 5
    python -m benchmarks accuracy --families large-10k --seeds 1
    python -m benchmarks accuracy --families exact --first-seed 120 --seeds 40   # other cases than the table's

The families are benchmarks/harness/cases.py's; a family's cases are seeds first-seed, first-seed + 1, ...
"""

from __future__ import annotations

import statistics
import sys

from benchmarks.harness.cases import FAMILIES, SMALL, planted
from benchmarks.harness.runs import run_methods


def options(parser) -> None:
    parser.add_argument("--families", nargs="+", default=SMALL, choices=list(FAMILIES))
    parser.add_argument("--seeds", type=int, default=20, help="cases per family")
    parser.add_argument(
        "--first-seed", type=int, default=100, help="the cases are seeds first-seed, first-seed + 1, ..."
    )


def run(args, report) -> None:
    table = report.table(
        {
            "family": "",
            "N": "d",
            "cases": "d",
            "mean errors": ".2f",
            "worst": "d",
            "mean missed": ".2f",
            "mean wrongly flagged": ".2f",
            "median s": ".1f",
            "max s": ".1f",
        }
    )
    for family in args.families:
        scores, seconds = [], []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            case = planted(family, seed)
            hw02 = run_methods(case, ["hw02"])["hw02"]  # n_classes left to the labels: the grader's command line
            scores.append(hw02.score(case.truth))
            seconds.append(hw02.seconds)
            print(f"  {family} seed {seed}: {scores[-1]}, {hw02.seconds:.1f} s", file=sys.stderr, flush=True)
        table.add(
            {
                "family": family,
                "N": len(case.labels),
                "cases": len(scores),
                "mean errors": statistics.mean(s.errors for s in scores),
                "worst": max(s.errors for s in scores),
                "mean missed": statistics.mean(s.missed for s in scores),
                "mean wrongly flagged": statistics.mean(s.false for s in scores),
                "median s": statistics.median(seconds),
                "max s": max(seconds),
            }
        )
