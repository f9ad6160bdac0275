"""The peer methods, what people would use instead, on this project's CNN and recipe (stages.member.train_member,
TrainParams defaults) and the same two joblib workers of one torch thread each that hw02.py uses on 2 cores:

subsets: the seed's own advice. Nine models, each trained on a random 2/3 of the samples (three rounds of three
    folds over samples, not groups: a copy and its original may land on different sides), each scoring the third
    it left out; a sample is flagged when most of the members that held it out predicted another label.
subsets-all: the other reading of the same advice. The same nine members, but every member votes on every sample,
    the ones it trained on included; a sample is flagged when most of the nine predicted another label.
cleanlab: cleanlab.filter.find_label_issues(labels, pred_probs) on out-of-sample probabilities from 5-fold
    cross-validation (stratified folds over samples, or folds that keep given groups together), as a cleanlab user
    would do it; `cleanlab_on` runs it on any probabilities (our members' out-of-bag ones, say).
majority: every sample whose label is not its copy group's most common (it needs the groups).

Each of the first three is also a command that prints its suspects the way hw02.py does (one line, indices
ascending, joined by ', '), so that benchmarks time it as they time hw02.py (benchmarks/harness/runs.py):

    python -m benchmarks.harness.peers subsets --data IMAGES --labels LABELS [--num-classes K] [--seed S]
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


def cv_plan(labels: np.ndarray, seed: int, groups: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) sample indices per fold of 5-fold cross-validation: stratified over samples, or, given
    groups, keeping each group's samples in one fold (GroupKFold)."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    if groups is not None:
        return list(GroupKFold(n_splits=CV_FOLDS).split(np.zeros(len(labels)), labels, groups))
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


def fold_probabilities(
    images, labels, n_classes: int, params: TrainParams = TrainParams(), groups: np.ndarray | None = None
) -> np.ndarray:
    """float (N, n_classes): each sample's class probabilities from the cross-validation fold that held it out."""
    plan = cv_plan(labels, params.seed, groups)
    pred_probs = np.zeros((len(labels), n_classes))
    for (_, held), probs in zip(plan, train_plan(images, labels, plan, n_classes, params)):
        pred_probs[held] = probs
    return pred_probs


def cleanlab_on(labels: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flagged indices, ranking most suspect first) by cleanlab's find_label_issues and label quality scores on
    probabilities (float (N, K); nan rows, unscored samples, count as uniform)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    prob = np.nan_to_num(prob, nan=1 / prob.shape[1])
    prob = prob / prob.sum(1, keepdims=True)
    ranking = np.argsort(get_label_quality_scores(labels, prob), kind="stable")
    return np.flatnonzero(find_label_issues(labels, prob)), ranking


def cleanlab_flags(
    images, labels, n_classes: int, params: TrainParams = TrainParams(), groups: np.ndarray | None = None
) -> np.ndarray:
    """Indices cleanlab.filter.find_label_issues marks, on cross-validated out-of-sample probabilities (given groups:
    folds that keep each group's samples together)."""
    from cleanlab.filter import find_label_issues

    return np.flatnonzero(find_label_issues(labels, fold_probabilities(images, labels, n_classes, params, groups)))


def majority_flags(given: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Indices whose label is not their group's most common (ties to the smallest label)."""
    from benchmarks.harness.cases import label_counts

    return np.flatnonzero(given != label_counts(given, group).argmax(1)[group])


METHODS = {"subsets": subsets_flags, "subsets-all": subsets_all_flags, "cleanlab": cleanlab_flags}


def main(argv: list[str]) -> int:
    from dataclasses import replace

    from stages.aggregate import format_indices
    from stages.decode import DecodeParams, decode_files

    parser = argparse.ArgumentParser(prog="python -m benchmarks.harness.peers", description=__doc__.split("\n\n")[0])
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
