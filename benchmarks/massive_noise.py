"""Label noise past the homework's shape, side by side with two peers on the same cases (issue 21):

    python -m benchmarks.massive_noise                      # 5 shapes x 5 cases: ~35 min on 2 cores
    python -m benchmarks.massive_noise --shapes copies-5 --cases 1

Shapes, all drawn from the bundled MNIST test digits (seeds 100, 101, ...):
- copies-5, copies-20: Rolnick et al. (2017)'s NoisyLabelDataset: every distinct digit followed by alpha exact
  copies with uniformly random labels (500 x (1 + 5), 150 x (1 + 20)); evil twins en masse.
- imbalance: 1,000 ones and 136 other digits, 15 of which are labelled 1 (one class swallows some of the others).
- uniform-20, uniform-40: 2,000 distinct digits, 20% or 40% of them given another label at random; no twins.
Methods: `ours` is pipeline.api.find_issues with the defaults params.yaml mirrors (flags without a twin included,
as the pipeline does; no time budget); `ours-unbalanced` and `ours-apart`, asked for by --methods, are the same
with train.balance_classes false, and with conflicting groups never training (train.conflict_share 1);
`majority` flags every sample whose label is not its copy group's most common (ties to the smallest label; it
needs the groups, and is given the true ones); `cleanlab` is
cleanlab.filter.find_label_issues on 5-fold out-of-sample probabilities of this project's CNN, the folds keeping
each group's copies together (GroupKFold on the true groups).
Errors = missed + wrongly flagged; precision and recall pool the cases of a row.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.machine import describe
from benchmarks.peers import summarize, tally
from pipeline.plant import load_source, random_label_copies

SHAPES = ("copies-5", "copies-20", "imbalance", "uniform-20", "uniform-40")
METHODS = ("ours", "majority", "cleanlab")
VARIANTS = {"ours-unbalanced": {"balance_classes": False}, "ours-apart": {"conflict_share": 1.0}}  # by --methods
CV_FOLDS = 5


def make_case(shape: str, seed: int, images: np.ndarray, labels: np.ndarray):
    """(images, given labels, true labels, true group ids) of one case."""
    rng = np.random.default_rng(seed)
    if shape.startswith("copies-"):
        alpha = int(shape.split("-")[1])
        distinct = 500 if alpha <= 5 else 150
        pick = rng.choice(len(labels), distinct, replace=False)
        return random_label_copies(images[pick], labels[pick], alpha, rng)
    if shape == "imbalance":
        ones = rng.choice(np.flatnonzero(labels == 1), 1000, replace=False)
        others = rng.choice(np.flatnonzero(labels != 1), 136, replace=False)
        pick = rng.permutation(np.concatenate([ones, others]))
        given = labels[pick].copy()
        wrong = rng.choice(np.flatnonzero(given != 1), 15, replace=False)
        given[wrong] = 1
        return images[pick], given, labels[pick], np.arange(len(pick))
    rate = int(shape.split("-")[1]) / 100
    pick = rng.choice(len(labels), 2000, replace=False)
    given = labels[pick].copy()
    wrong = rng.choice(len(pick), round(rate * len(pick)), replace=False)
    given[wrong] = (given[wrong] + rng.integers(1, 10, len(wrong))) % 10
    return images[pick], given, labels[pick], np.arange(len(pick))


def label_counts(given: np.ndarray, group: np.ndarray) -> np.ndarray:
    """int64 (groups, 10): how many of each group's samples carry each label."""
    counts = np.zeros((group.max() + 1, 10), np.int64)
    np.add.at(counts, (group, given), 1)
    return counts


def majority_flags(given: np.ndarray, group: np.ndarray) -> np.ndarray:
    return np.flatnonzero(given != label_counts(given, group).argmax(1)[group])


def cleanlab_flags(images: np.ndarray, given: np.ndarray, group: np.ndarray, seed: int) -> np.ndarray:
    from cleanlab.filter import find_label_issues
    from sklearn.model_selection import GroupKFold

    from benchmarks.peer_methods import train_plan
    from stages.train import TrainParams

    plan = list(GroupKFold(n_splits=CV_FOLDS).split(np.zeros(len(given)), given, group))
    pred_probs = np.zeros((len(given), 10))
    for (_, held), probs in zip(plan, train_plan(images, given, plan, 10, TrainParams(seed=seed))):
        pred_probs[held] = probs
    return np.flatnonzero(find_label_issues(given, pred_probs))


def flags(method: str, images, given, group, seed: int) -> np.ndarray:
    if method.startswith("ours"):
        from pipeline.api import find_issues

        train = {"seed": seed, **VARIANTS.get(method, {})}
        return np.flatnonzero(find_issues(images, given, params={"train": train}).flagged)
    if method == "majority":
        return majority_flags(given, group)
    return cleanlab_flags(images, given, group, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS + tuple(VARIANTS))
    parser.add_argument("--cases", type=int, default=5)
    args = parser.parse_args()
    source = load_source("mnist")
    print(describe())
    print("| shape | N | wrong | method | cases | mean errors | precision | recall | mean wall s |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for shape in args.shapes:
        cases = [make_case(shape, 100 + k, *source) for k in range(args.cases)]
        for method in args.methods:
            rows = []
            for k, (images, given, truth, group) in enumerate(cases):
                start = time.perf_counter()
                flagged = set(flags(method, images, given, group, 100 + k).tolist())
                rows.append(
                    {
                        "method": method,
                        "family": shape,
                        "n": len(given),
                        "peak_mb": 0.0,
                        "seconds": time.perf_counter() - start,
                        **tally(flagged, np.flatnonzero(given != truth)),
                    }
                )
            [row] = summarize(rows)
            wrong = sum(r["hit"] + r["missed"] for r in rows) / len(rows)
            print(
                f"| {shape} | {row['n']} | {wrong:.0f} | {method} | {row['cases']} | {row['errors']:.1f} "
                f"| {row['precision'] or 0:.3f} | {row['recall'] or 0:.3f} | {row['seconds']:.1f} |",
                flush=True,
            )
    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
