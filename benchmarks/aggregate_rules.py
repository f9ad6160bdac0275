"""The aggregate stage's rules against the rules they replaced, on the same out-of-bag evidence: each case is
grouped and trained once, then decided every way.

    python -m benchmarks.aggregate_rules                                   # small families, 8 seeds: ~18 min
    python -m benchmarks.aggregate_rules --families orphans --seeds 2
    python -m benchmarks.aggregate_rules --posteriors 0.8 0.9     # joint at other min_posterior values too
    python -m benchmarks.aggregate_rules --families exact --first-seed 120 --seeds 40
    python -m benchmarks.aggregate_rules --families --size 60000 --train-seconds 13 --seeds 2   # ~3 min

Rules, each flagging a sample when every member predicted another label and its calibrated probability is below
a threshold:
- `joint` (the default): temperature and share of wrong labels fitted together, posterior above min_posterior 0.7
  (`joint-0.9` and so on: the same at another min_posterior, with `--posteriors`), plus each class's count of
  wrong labels (stages/aggregate.py, wrong_label_counts);
- `global-rate` (default until 2026-11-26): the joint rule without the per-class counts;
- `separate` (default until 2026-11-25): the temperature fitted alone to the given labels, then the share of wrong
  labels by EM, posterior above 0.5;
- `budget` (default before that): the separate fit's calibration, threshold 0.1 / n, n the number of samples
  without a conflicting twin, so about 0.1 clean samples are flagged in expectation.
Twin groups are decided the same way under all of these. One more rule differs in the twin groups only:
- `no-count-prior` (default before commit eed096b): a conflicting group goes to the label with the largest sum,
  over the group's members, of the log mean out-of-bag probability, however many members carry each label (the
  default adds the log of that count to the mean; see stages/aggregate.py).
- `twins-only`: the joint rule's twin groups and nothing else, no flags on evidence alone (the graded setting's
  question: there every mislabelled sample has a twin, so what do those flags buy?).
`--size N` adds the size family of benchmarks/peers.py at N samples, and `--train-seconds` trains under a deadline
as a short time budget would: members that get few steps are where the two twin rules part.
Errors = missed + wrongly flagged. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np

from benchmarks.cases import SMALL, spec
from benchmarks.machine import describe
from benchmarks.peers import plant_case
from pipeline.plant import load_source, plant
from stages.aggregate import AggregateParams, decide
from stages.budget import Budget
from stages.group import GroupParams, group_images
from stages.labels import group_samples
from stages.noise_model import TEMPERATURES, estimate_noise_rate, pick_threshold, softmax
from stages.train import TrainParams, train_ensemble


def separately_calibrated(log_prob: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The probability of each given label after a temperature fitted alone to the given labels (least log loss)."""
    rows = np.arange(len(labels))
    losses = [-np.log(softmax(log_prob / t)[rows, labels] + 1e-12).mean() for t in TEMPERATURES]
    temperature = TEMPERATURES[int(np.argmin(losses))]
    return softmax(log_prob / temperature)[rows, labels]


def twin_flags_without_count_prior(
    labels: np.ndarray, group: np.ndarray, log_prob: np.ndarray, scored: np.ndarray
) -> np.ndarray:
    """The members the earlier twin rule flags: in each conflicting group, the label whose summed log
    probability over the group's scored members is largest wins, whatever its count."""
    flagged = np.zeros(len(labels), bool)
    for members in group_samples(group):
        present = np.unique(labels[members])
        if len(present) > 1 and scored[members].any():
            winner = present[np.argmax(log_prob[members[scored[members]]][:, present].sum(0))]
            flagged[members[labels[members] != winner]] = True
    return flagged


def errors_by_rule(
    case, posteriors: tuple[float, ...] = (), train_seconds: float | None = None
) -> dict[str, tuple[int, int]]:
    group = group_images(case.images, GroupParams()).group
    oob = train_ensemble(case.images, case.labels, group, TrainParams(), budget=Budget().within(train_seconds))
    truth = np.zeros(len(case.labels), bool)
    truth[case.truth] = True
    joint = decide(case.labels, group, oob, AggregateParams())
    twins = joint.reason == "twin"
    every = (oob.n_scored > 0) & ~np.isin(group, group[twins])
    alone = np.flatnonzero(every & (joint.disagreement >= 1))
    log_prob = np.log(np.nan_to_num(oob.prob, nan=0.0) + 1e-6)
    calibrated = np.full(len(truth), np.nan)
    calibrated[every] = separately_calibrated(log_prob[every], case.labels[every])
    n_classes = len(np.unique(case.labels))
    thresholds = {
        "separate": pick_threshold(
            estimate_noise_rate(calibrated[every], n_classes), n_classes, min_posterior=0.5, max_threshold=0.01
        ),
        "budget": min(0.01, 0.1 / max(every.sum(), 1)),
    }
    flagged = {
        "joint": joint.flagged,
        "global-rate": decide(case.labels, group, oob, AggregateParams(per_class_counts=False)).flagged,
        "twins-only": twins,
        "no-count-prior": (joint.reason == "wrong_label")
        | twin_flags_without_count_prior(case.labels, group, log_prob, oob.n_scored > 0),
    }
    for posterior in posteriors:
        flagged[f"joint-{posterior:g}"] = decide(
            case.labels, group, oob, AggregateParams(min_posterior=posterior)
        ).flagged
    for rule, threshold in thresholds.items():
        flagged[rule] = twins.copy()
        flagged[rule][alone[calibrated[alone] < threshold]] = True
    return {rule: (int((truth & ~f).sum()), int((~truth & f).sum())) for rule, f in flagged.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="*", default=SMALL, choices=SMALL)
    parser.add_argument("--seeds", type=int, default=8, help="cases per family")
    parser.add_argument(
        "--first-seed", type=int, default=100, help="the cases are seeds first-seed, first-seed + 1, ..."
    )
    parser.add_argument(
        "--posteriors",
        nargs="*",
        type=float,
        default=[],
        help="also decide by the joint rule at these min_posterior values",
    )
    parser.add_argument("--size", type=int, nargs="*", default=[], help="also the size family at these N")
    parser.add_argument(
        "--train-seconds",
        type=float,
        default=None,
        help="train every case under this deadline (default: none, the full ensemble)",
    )
    args = parser.parse_args()
    print(describe())
    print("| family | cases | rule | mean errors | mean missed | mean wrongly flagged |")
    print("|---|---:|---|---:|---:|---:|")

    def small_case(family, seed):
        source, case_spec = spec(family, seed)
        return plant(*load_source(source), case_spec)

    def size_case(n, seed):
        return plant_case("size", n, seed)[0]

    rows = [(family, partial(small_case, family)) for family in args.families]
    rows += [(f"size {n}", partial(size_case, n)) for n in args.size]
    for name, make_case in rows:
        runs = [
            errors_by_rule(make_case(args.first_seed + i), tuple(args.posteriors), args.train_seconds)
            for i in range(args.seeds)
        ]
        for rule in runs[0]:
            missed = np.mean([r[rule][0] for r in runs])
            false = np.mean([r[rule][1] for r in runs])
            print(f"| {name} | {len(runs)} | {rule} | {missed + false:.2f} | {missed:.2f} | {false:.2f} |", flush=True)

    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
