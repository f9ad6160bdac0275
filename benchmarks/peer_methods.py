"""Two peer methods for finding wrong labels, each a command that prints its suspects the way hw02.py does
(one line, indices ascending, joined by ', '; empty when none):

    python -m benchmarks.peer_methods subsets  --data IMAGES --labels LABELS [--num-classes K] [--seed S]
    python -m benchmarks.peer_methods subsets-all --data IMAGES --labels LABELS [--num-classes K] [--seed S]
    python -m benchmarks.peer_methods cleanlab --data IMAGES --labels LABELS [--num-classes K] [--seed S]

subsets: the seed's own advice. Nine models, each trained on a random 2/3 of the samples (three rounds of three
    folds over samples, not groups: a copy and its original may land on different sides), each scoring the third
    it left out; a sample is flagged when most of the members that held it out predicted another label.
subsets-all: the other reading of the same advice. The same nine members, but every member votes on every sample,
    the ones it trained on included; a sample is flagged when most of the nine predicted another label.
cleanlab: cleanlab.filter.find_label_issues(labels, pred_probs) on out-of-sample probabilities from 5-fold
    cross-validation (stratified folds over samples), as a cleanlab user would do it.

Both train this project's CNN with its recipe (stages.member.train_member, TrainParams defaults) on the same two
joblib workers of one torch thread each that hw02.py uses on a 2-core machine.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from stages.member import train_member
from stages.train import TrainParams
from stages.workers import worker_layout

SUBSET_ROUNDS, SUBSET_FOLDS = 3, 3  # 9 members, each on 2/3 of the samples
CV_FOLDS = 5


def subset_plan(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) sample indices per member: rounds of random folds over samples."""
    rng = np.random.default_rng(seed)
    plan = []
    for _ in range(SUBSET_ROUNDS):
        folds = np.array_split(rng.permutation(n), SUBSET_FOLDS)
        for k, held in enumerate(folds):
            plan.append((np.sort(np.concatenate(folds[:k] + folds[k + 1 :])), np.sort(held)))
    return plan


def cv_plan(labels: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) sample indices per fold of stratified 5-fold cross-validation."""
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)
    return list(folds.split(np.zeros(len(labels)), labels))


def train_plan(images, labels, plan, n_classes: int, params: TrainParams) -> list[np.ndarray]:
    """Train one model per (train, held-out) pair in parallel, as hw02.py does; their held-out probabilities."""
    from joblib import Parallel, delayed

    n_jobs, threads = worker_layout(params)
    outputs = Parallel(n_jobs=n_jobs, backend=params.backend)(
        delayed(train_member)(
            images,
            labels,
            train,
            held,
            n_classes=n_classes,
            params=params,
            seed=params.seed * 1000 + k,
            threads=threads,
        )
        for k, (train, held) in enumerate(plan)
    )
    return [probs for probs, *_ in outputs]


def subsets_flags(images, labels, n_classes: int, params: TrainParams = TrainParams()) -> np.ndarray:
    """Indices where most of the members that held the sample out predicted another label."""
    plan = subset_plan(len(labels), params.seed)
    scored, wrong = np.zeros(len(labels)), np.zeros(len(labels))
    for (_, held), probs in zip(plan, train_plan(images, labels, plan, n_classes, params)):
        scored[held] += 1
        wrong[held] += probs.argmax(1) != labels[held]
    return np.flatnonzero(2 * wrong > scored)


def subsets_all_flags(images, labels, n_classes: int, params: TrainParams = TrainParams()) -> np.ndarray:
    """Indices where most of all the members, in-bag ones included, predicted another label.

    A member that trained on a sample has mostly memorised its label, so this vote leans towards the given labels:
    of an evil twin and its original, the copy whose label more members trained on tends to win."""
    everyone = np.arange(len(labels))
    plan = [(train, everyone) for train, _ in subset_plan(len(labels), params.seed)]
    wrong = sum(probs.argmax(1) != labels for probs in train_plan(images, labels, plan, n_classes, params))
    return np.flatnonzero(2 * wrong > len(plan))


def cleanlab_flags(images, labels, n_classes: int, params: TrainParams = TrainParams()) -> np.ndarray:
    """Indices cleanlab.filter.find_label_issues marks, on cross-validated out-of-sample probabilities."""
    from cleanlab.filter import find_label_issues

    plan = cv_plan(labels, params.seed)
    pred_probs = np.zeros((len(labels), n_classes))
    for (_, held), probs in zip(plan, train_plan(images, labels, plan, n_classes, params)):
        pred_probs[held] = probs
    return np.flatnonzero(find_label_issues(labels, pred_probs))


METHODS = {"subsets": subsets_flags, "subsets-all": subsets_all_flags, "cleanlab": cleanlab_flags}


def main(argv: list[str]) -> int:
    from dataclasses import replace

    from stages.aggregate import format_indices
    from stages.decode import DecodeParams, decode_files

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("method", choices=list(METHODS))
    parser.add_argument("--data", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    images, labels = decode_files(DecodeParams(args.data, args.labels, args.num_classes))
    flagged = METHODS[args.method](images, labels, int(labels.max()) + 1, replace(TrainParams(), seed=args.seed))
    print(format_indices(flagged))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
