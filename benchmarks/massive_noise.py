"""Label noise past the homework's shape, beside a majority vote and cleanlab (issue 21).

Errors of ours, a majority vote over copy groups and cleanlab on random-label copies, one dominant class and uniform
noise.

    python -m benchmarks massive_noise                      # 5 shapes x 5 cases: ~35 min on 2 cores
    python -m benchmarks massive_noise --shapes copies-5 --cases 1

Shapes (benchmarks/harness/cases.py, noise_case), all drawn from the bundled MNIST test digits (seeds 100, 101, ...):
- copies-5, copies-20: Rolnick et al. (2017)'s NoisyLabelDataset: every distinct digit followed by alpha exact
  copies with uniformly random labels (500 x (1 + 5), 150 x (1 + 20)); evil twins en masse.
- imbalance: 1,000 ones and 136 other digits, 15 of which are labelled 1 (one class swallows some of the others).
- uniform-20, uniform-40: 2,000 distinct digits, 20% or 40% of them given another label at random; no twins.
Methods: `ours` is pipeline.api.find_issues with the defaults params.yaml mirrors (flags without a twin included,
as the pipeline does; no time budget); `ours-unbalanced` and `ours-apart`, asked for by --methods, are the same
with train.balance_classes false, and with conflicting groups never training (train.conflict_share 1);
`majority` flags every sample whose label is not its copy group's most common (ties to the smallest label; it
needs the groups, and is given the true ones); `cleanlab` is cleanlab.filter.find_label_issues on 5-fold
out-of-sample probabilities of this project's CNN, the folds keeping each group's copies together (GroupKFold on
the true groups). Errors = missed + wrongly flagged; precision and recall pool the cases of a row.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from benchmarks.harness.cases import NOISE_SHAPES, noise_case
from benchmarks.harness.peers import cleanlab_flags, majority_flags
from benchmarks.harness.scores import Tally, tally
from pipeline.plant import load_source
from stages.train import TrainParams

METHODS = ("ours", "majority", "cleanlab")
VARIANTS = {"ours-unbalanced": {"balance_classes": False}, "ours-apart": {"conflict_share": 1.0}}  # by --methods
COLUMNS = {
    "shape": "",
    "N": "d",
    "wrong": ".0f",
    "method": "",
    "cases": "d",
    "mean errors": ".1f",
    "precision": ".3f",
    "recall": ".3f",
    "mean wall s": ".1f",
}


def options(parser) -> None:
    parser.add_argument("--shapes", nargs="+", default=list(NOISE_SHAPES), choices=NOISE_SHAPES)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS + tuple(VARIANTS))
    parser.add_argument("--cases", type=int, default=5)


def flags(method: str, images, given, group, seed: int) -> np.ndarray:
    if method.startswith("ours"):
        from pipeline.api import find_issues

        train = {"seed": seed, **VARIANTS.get(method, {})}
        return np.flatnonzero(find_issues(images, given, params={"train": train}).flagged)
    if method == "majority":
        return majority_flags(given, group)
    return cleanlab_flags(images, given, 10, TrainParams(seed=seed), groups=group)


def run(args, report) -> None:
    source = load_source("mnist")
    wide = (["shape", "N", "wrong", "cases"], "method", ["mean errors"])
    table = report.table(COLUMNS, "Mean errors a case by method", wide=wide)
    for shape in args.shapes:
        cases = [noise_case(shape, 100 + k, *source) for k in range(args.cases)]
        for method in args.methods:
            scores, seconds = [], []
            for k, (images, given, truth, group) in enumerate(cases):
                start = time.perf_counter()
                scores.append(tally(flags(method, images, given, group, 100 + k), np.flatnonzero(given != truth)))
                seconds.append(time.perf_counter() - start)
            pooled = sum(scores, Tally())
            values = [shape, len(cases[0][1]), pooled.wrong / len(cases), method, len(cases)]
            values += [statistics.mean(s.errors for s in scores), pooled.precision, pooled.recall]
            table.add(dict(zip(COLUMNS, [*values, statistics.mean(seconds)])))
