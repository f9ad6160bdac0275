"""The aggregate stage's rule for samples without a conflicting twin, against the rules it replaced, on the same
out-of-bag evidence: each case is grouped and trained once, then decided every way.

    python -m benchmarks.aggregate_rules                                   # small families, 8 seeds: ~16 min
    python -m benchmarks.aggregate_rules --families orphans --seeds 2
    python -m benchmarks.aggregate_rules --posteriors 0.8 0.9     # joint at other min_posterior values too
    python -m benchmarks.aggregate_rules --families exact --first-seed 120 --seeds 40

Rules, each flagging a sample when every member predicted another label and its calibrated probability is below
a threshold:
- `joint` (the default): temperature and share of wrong labels fitted together, posterior above min_posterior 0.7
  (`joint-0.9` and so on: the same at another min_posterior, with `--posteriors`);
- `separate` (default until 2026-11-25): the temperature fitted alone to the given labels, then the share of wrong
  labels by EM, posterior above 0.5;
- `budget` (default before that): the separate fit's calibration, threshold 0.1 / n, n the number of samples
  without a conflicting twin, so about 0.1 clean samples are flagged in expectation.
Twin groups are decided the same way under all. Errors = missed + wrongly flagged. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import numpy as np

from benchmarks.cases import SMALL, spec
from benchmarks.machine import describe
from pipeline.plant import load_source, plant
from stages.aggregate import TEMPERATURES, AggregateParams, decide, estimate_noise_rate, pick_threshold, softmax
from stages.group import GroupParams, group_images
from stages.train import TrainParams, train_ensemble


def separately_calibrated(log_prob: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The probability of each given label after a temperature fitted alone to the given labels (least log loss)."""
    rows = np.arange(len(labels))
    losses = [-np.log(softmax(log_prob / t)[rows, labels] + 1e-12).mean() for t in TEMPERATURES]
    temperature = TEMPERATURES[int(np.argmin(losses))]
    return softmax(log_prob / temperature)[rows, labels]


def errors_by_rule(family: str, seed: int, posteriors: tuple[float, ...] = ()) -> dict[str, tuple[int, int]]:
    source, case_spec = spec(family, seed)
    case = plant(*load_source(source), case_spec)
    group = group_images(case.images, GroupParams()).group
    oob = train_ensemble(case.images, case.labels, group, TrainParams())
    truth = np.zeros(len(case.labels), bool)
    truth[case.truth] = True
    joint = decide(case.labels, group, oob.prob_sum, oob.n_scored, oob.votes, AggregateParams())
    twins = joint.reason == "twin"
    every = (oob.n_scored > 0) & ~np.isin(group, group[twins])
    alone = np.flatnonzero(every & (joint.disagreement >= 1))
    log_prob = np.log(oob.prob_sum / np.maximum(oob.n_scored, 1)[:, None] + 1e-6)
    calibrated = np.full(len(truth), np.nan)
    calibrated[every] = separately_calibrated(log_prob[every], case.labels[every])
    n_classes = len(np.unique(case.labels))
    thresholds = {"separate": pick_threshold(estimate_noise_rate(calibrated[every], n_classes), n_classes,
                                             AggregateParams(min_posterior=0.5)),
                  "budget": min(0.01, 0.1 / max(every.sum(), 1))}
    flagged = {"joint": joint.flagged}
    for posterior in posteriors:
        flagged[f"joint-{posterior:g}"] = decide(case.labels, group, oob.prob_sum, oob.n_scored, oob.votes,
                                                 AggregateParams(min_posterior=posterior)).flagged
    for rule, threshold in thresholds.items():
        flagged[rule] = twins.copy()
        flagged[rule][alone[calibrated[alone] < threshold]] = True
    return {rule: (int((truth & ~f).sum()), int((~truth & f).sum())) for rule, f in flagged.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=SMALL, choices=SMALL)
    parser.add_argument("--seeds", type=int, default=8, help="cases per family")
    parser.add_argument("--first-seed", type=int, default=100,
                        help="the cases are seeds first-seed, first-seed + 1, ...")
    parser.add_argument("--posteriors", nargs="*", type=float, default=[],
                        help="also decide by the joint rule at these min_posterior values")
    args = parser.parse_args()
    print(describe())
    print("| family | cases | rule | mean errors | mean missed | mean wrongly flagged |")
    print("|---|---:|---|---:|---:|---:|")
    for family in args.families:
        runs = [errors_by_rule(family, args.first_seed + i, tuple(args.posteriors)) for i in range(args.seeds)]
        for rule in runs[0]:
            missed = np.mean([r[rule][0] for r in runs])
            false = np.mean([r[rule][1] for r in runs])
            print(f"| {family} | {len(runs)} | {rule} | {missed + false:.2f} | {missed:.2f} | {false:.2f} |",
                  flush=True)

    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
