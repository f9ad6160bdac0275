"""How often does an ensemble trained on a small clean set decide an evil-twin group wrongly?

    python -m benchmarks.twin_decisions                       # every config, 4 training sets of 150
    python -m benchmarks.twin_decisions --configs default all-clean-3 --trials 6

A conflicting twin group is decided by comparing the ensemble's mean probability of the two labels it carries:
the original's (right) and the evil copy's (wrong, any other class). That is a two-way choice on an image no
member saw, so it can be measured without planting whole cases: train on `--n-train` random MNIST test digits
(the clean groups of a 150-clean + 15-twin case), then for each of `--n-eval` other digits draw
a wrong label and count how often the wrong label gets at least the right one's probability. Thousands of such
decisions per training set give a far steadier figure than the 15 groups of one planted case.

Each config is a set of TrainParams changes plus how the members' training sets are drawn: `fraction` of the
training digits per member (the ensemble's train_fraction) or all of them. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from benchmarks.machine import describe
from pipeline.plant import load_source
from stages.member import train_member
from stages.train import TrainParams

# name: (TrainParams changes, share of the training digits each member sees, members)
CONFIGS: dict[str, tuple[dict, float, int]] = {
    "default": ({}, 0.667, 9),  # what decides a twin group: the 9 members, each on a random 2/3
    "all-clean-1": ({}, 1.0, 1),  # members on every clean digit instead ("judges"): no better, see BENCHMARKS.md
    "all-clean-3": ({}, 1.0, 3),
    "all-clean-5": ({}, 1.0, 5),
    "lr-0.001": (dict(learning_rate=0.001), 0.667, 9),
    "lr-0.002": (dict(learning_rate=0.002), 0.667, 9),  # the peak learning rate before 2026-11-25 (afternoon)
    "lr-0.004": (dict(learning_rate=0.004), 0.667, 9),
    "lr-0.008": (dict(learning_rate=0.008), 0.667, 9),
    "lr-0.002+smoothing-0.2": (dict(learning_rate=0.002, label_smoothing=0.2), 0.667, 9),
    "lr-0.002+weight-decay-0.05": (dict(learning_rate=0.002, weight_decay=0.05), 0.667, 9),
    "before-2026-11-25": (dict(learning_rate=0.002, label_smoothing=0.0, max_rotation=12.0, max_scale=0.1), 0.667, 9),
    "no-smoothing": (dict(learning_rate=0.002, label_smoothing=0.0), 0.667, 9),
    "shift-only": (dict(learning_rate=0.002, augment="shift"), 0.667, 9),
}


def run_config(images, labels, name: str, trials: int, n_train: int, n_eval: int, seed: int, n_jobs: int) -> dict:
    from joblib import Parallel, delayed

    changes, fraction, n_members = CONFIGS[name]
    params = replace(TrainParams(), **changes)
    errors, accuracies, single_errors, seconds = [], [], [], []
    for trial in range(trials):
        rng = np.random.default_rng(seed + trial)
        picks = rng.permutation(len(labels))
        train, held = picks[:n_train], picks[n_train : n_train + n_eval]
        truth = labels[held]
        wrong = (truth + rng.integers(1, 10, len(held))) % 10
        subsets = [np.sort(rng.choice(train, int(round(fraction * n_train)), replace=False)) for _ in range(n_members)]
        start = time.monotonic()
        outputs = Parallel(n_jobs=n_jobs)(
            delayed(train_member)(
                images, labels, subset, held, n_classes=10, params=params, seed=1000 * trial + k, threads=1
            )
            for k, subset in enumerate(subsets)
        )
        seconds.append(time.monotonic() - start)
        probs = np.stack([p for p, *_ in outputs])  # (members, eval, classes)
        rows = np.arange(len(held))
        mean = probs.mean(0)
        errors.append(float((mean[rows, wrong] >= mean[rows, truth]).mean()))
        single_errors.append(float((probs[:, rows, wrong] >= probs[:, rows, truth]).mean()))
        accuracies.append(float((mean.argmax(1) == truth).mean()))
    return {
        "config": name,
        "members": n_members,
        "fraction": fraction,
        "pair_error": np.mean(errors),
        "pair_error_sd": np.std(errors),
        "single_pair_error": np.mean(single_errors),
        "accuracy": np.mean(accuracies),
        "seconds": np.mean(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--trials", type=int, default=4, help="training sets per config")
    parser.add_argument("--n-train", type=int, default=150)
    parser.add_argument("--n-eval", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    images, labels = load_source("mnist")
    print(describe())
    print(f"# {args.trials} training sets of {args.n_train} MNIST digits, {args.n_eval} held-out decisions each")
    print(
        "| config | members | share seen | wrong decisions (ensemble) | sd over sets | one member alone "
        "| 10-way accuracy | s per ensemble (2 cores) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.configs:
        r = run_config(images, labels, name, args.trials, args.n_train, args.n_eval, args.seed, args.n_jobs)
        print(
            f"| {name} | {r['members']} | {r['fraction']:.2f} | {r['pair_error']:.2%} | {r['pair_error_sd']:.2%} "
            f"| {r['single_pair_error']:.2%} | {r['accuracy']:.1%} | {r['seconds']:.1f} |",
            flush=True,
        )
    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
