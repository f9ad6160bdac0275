"""The aggregate stage's rule for samples without a conflicting twin, against the rule it replaced, on the same
out-of-bag evidence: each case is grouped and trained once, then decided both ways.

    python -m benchmarks.aggregate_rules                                   # small families, 8 seeds: ~15 min
    python -m benchmarks.aggregate_rules --families orphans --seeds 2

Rules: `posterior` (the default: flag when the posterior probability of a wrong label, given the share of wrong
labels estimated by EM, exceeds 0.5) and `budget` (the previous default: flag below 0.1 / n, n the number of
samples without a conflicting twin, so about 0.1 clean samples are flagged in expectation). Twin groups are decided
the same way under both. Errors = missed + wrongly flagged. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from benchmarks.cases import SMALL, spec
from benchmarks.machine import describe
from pipeline.plant import load_source, plant
from stages.aggregate import AggregateParams, decide
from stages.group import GroupParams, group_images
from stages.train import TrainParams, train_ensemble


def errors_by_rule(family: str, seed: int) -> dict[str, tuple[int, int]]:
    source, case_spec = spec(family, seed)
    case = plant(*load_source(source), case_spec)
    group = group_images(case.images, GroupParams()).group
    oob = train_ensemble(case.images, case.labels, group, TrainParams())
    truth = np.zeros(len(case.labels), bool)
    truth[case.truth] = True
    posterior = decide(case.labels, group, oob.prob_sum, oob.n_scored, oob.votes, AggregateParams())
    conflicted = np.isin(group, group[posterior.reason == "twin"])
    n_alone = int(((oob.n_scored > 0) & ~conflicted).sum())
    budget = replace(AggregateParams(), threshold=min(0.01, 0.1 / max(n_alone, 1)))
    old = decide(case.labels, group, oob.prob_sum, oob.n_scored, oob.votes, budget)
    return {name: (int((truth & ~d.flagged).sum()), int((~truth & d.flagged).sum()))
            for name, d in (("posterior", posterior), ("budget", old))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=SMALL, choices=SMALL)
    parser.add_argument("--seeds", type=int, default=8, help="cases per family (seeds 100, 101, ...)")
    args = parser.parse_args()
    print(describe())
    print("| family | cases | rule | mean errors | mean missed | mean wrongly flagged |")
    print("|---|---:|---|---:|---:|---:|")
    for family in args.families:
        runs = [errors_by_rule(family, 100 + i) for i in range(args.seeds)]
        for rule in ("posterior", "budget"):
            missed = np.mean([r[rule][0] for r in runs])
            false = np.mean([r[rule][1] for r in runs])
            print(f"| {family} | {len(runs)} | {rule} | {missed + false:.2f} | {missed:.2f} | {false:.2f} |",
                  flush=True)

    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
