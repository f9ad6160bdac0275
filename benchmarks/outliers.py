"""Strangers and broken images (issue 23): the outlier score and odd-image check, beside cleanlab.

Strangers and broken images mixed into real data: the outlier score's AUROC beside cleanlab's, the flag's precision
and recall, clean samples flagged.

    python -m benchmarks outliers                  # the five cases below, one seed: about 10 minutes on 2 cores
    python -m benchmarks outliers --cases clean-digits --seeds 3

Each case draws 2,000 base images at random and mixes in 5% strangers from another data set, carrying base labels
drawn at random, and 2% broken images (blank, pure noise, washed out to white), then runs group, train and
aggregate in one process with the default parameters. AUROC is that of the score over base images and strangers
(the broken ones left out); precision and recall are those of the outlier flag at the threshold the data set chose.
cleanlab's OutOfDistribution scores the very same out-of-bag probabilities (`pred_probs`, with the labels), the
members' features in the coordinates they share (each sample's mean similarity to each class's features,
train.feature_evidence: the map's coordinates; its kNN), and, as a floor, the images' standardised pixels.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.harness.data import shared
from benchmarks.harness.scores import auroc
from pipeline.runner import find_suspects

CASES = {  # name: (base set, stranger set or None)
    "letters-in-digits": ("mnist", "notmnist"),
    "clothes-in-digits": ("mnist", "fashion"),
    "digits-in-clothes": ("fashion", "mnist"),
    "clean-digits": ("mnist", None),
    "clean-clothes": ("fashion", None),
}
N_BASE, STRANGER_SHARE, BROKEN_SHARE = 2000, 0.05, 0.02


def broken_images(n: int, like: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """n broken images of like's shape, in turn blank (a level plus slight noise), noise, and washed out."""
    shape = like.shape[1:]
    out = []
    for k in range(n):
        if k % 3 == 0:
            out.append(np.clip(rng.normal(rng.uniform(0, 255), 2, shape), 0, 255))
        elif k % 3 == 1:
            out.append(rng.integers(0, 256, shape))
        else:
            out.append(np.clip(like[rng.integers(len(like))].astype(int) + 250, 0, 255))
    return np.array(out, np.uint8)


def make_case(name: str, seed: int):
    """(images, labels, kind per sample: "base", "stranger" or "broken"), shuffled."""
    base_name, stranger_name = CASES[name]
    rng = np.random.default_rng(seed)
    images, labels = shared(base_name)
    pick = rng.choice(len(images), N_BASE, replace=False)
    parts, given, kind = [images[pick]], [labels[pick]], ["base"] * N_BASE
    if stranger_name:
        others = shared(stranger_name)[0]
        n = int(N_BASE * STRANGER_SHARE)
        parts.append(others[rng.choice(len(others), n, replace=False)])
        given.append(rng.integers(0, labels.max() + 1, n))
        kind += ["stranger"] * n
        n = int(N_BASE * BROKEN_SHARE)
        parts.append(broken_images(n, images[pick], rng))
        given.append(rng.integers(0, labels.max() + 1, n))
        kind += ["broken"] * n
    order = rng.permutation(sum(len(p) for p in parts))
    return np.concatenate(parts)[order], np.concatenate(given)[order], np.array(kind)[order]


def cleanlab_scores(
    images: np.ndarray, labels: np.ndarray, mean_prob: np.ndarray, class_sim: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cleanlab's OOD scores, turned so that higher is stranger: on the out-of-bag probabilities, on the members'
    shared feature coordinates, and on pixels."""
    from cleanlab.outlier import OutOfDistribution

    probs = np.nan_to_num(mean_prob, nan=1 / mean_prob.shape[1])
    probs /= probs.sum(1, keepdims=True)
    on_probs = 1 - OutOfDistribution().fit_score(pred_probs=probs, labels=labels)
    on_features = 1 - OutOfDistribution().fit_score(features=np.nan_to_num(class_sim).astype(np.float32))
    x = images.reshape(len(images), -1).astype(np.float32)
    x = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-6)
    on_pixels = 1 - OutOfDistribution().fit_score(features=x)
    return on_probs, on_features, on_pixels


def run_case(name: str, seed: int, save: Path | None = None) -> dict:
    images, labels, kind = make_case(name, seed)
    start = time.monotonic()
    run = find_suspects(images, labels)
    seconds = time.monotonic() - start
    d = run.decisions
    mean_prob, class_sim = run.oob.prob, run.oob.class_sim
    if save:
        save.mkdir(parents=True, exist_ok=True)
        np.savez(
            save / f"{name}-{seed}.npz",
            kind=kind,
            labels=labels,
            outlier_score=d.outlier_score,
            odd=d.odd,
            mean_prob=mean_prob,
            class_sim=class_sim,
            n_scored=run.oob.n_scored,
            strangeness=run.oob.strangeness,
        )
    judged = kind != "broken"
    stranger = kind[judged] == "stranger"
    row = {
        "case": name,
        "seed": seed,
        "n": len(labels),
        "seconds": seconds,
        "clean_flagged": float(d.outlier[kind == "base"].mean()),
        "broken_found": int((d.odd[kind == "broken"] != "").sum()),
        "broken": int((kind == "broken").sum()),
        "base_odd": int((d.odd[kind == "base"] != "").sum()),
    }
    if stranger.any():
        on_probs, on_features, on_pixels = cleanlab_scores(images, labels, mean_prob, class_sim)
        flagged = d.outlier[judged]
        row |= {
            "auroc": auroc(d.outlier_score[judged], stranger),
            "precision": float(stranger[flagged].mean()) if flagged.any() else float("nan"),
            "recall": float(flagged[stranger].mean()),
            "cleanlab_probs": auroc(on_probs[judged], stranger),
            "cleanlab_features": auroc(on_features[judged], stranger),
            "cleanlab_pixels": auroc(on_pixels[judged], stranger),
            "strangers_as_wrong_label": int(d.flagged[kind == "stranger"].sum()),
        }
    return row


COLUMNS = {
    "case": "",
    "seed": "d",
    "N": "d",
    "AUROC ours": ".3f",
    "cleanlab on OOB probabilities": ".3f",
    "cleanlab on members' features": ".3f",
    "cleanlab on pixels": ".3f",
    "precision": ".2f",
    "recall": ".2f",
    "clean samples flagged": ".2%",
    "broken found": "d",
    "broken": "d",
    "base called odd": "d",
    "strangers flagged as wrong labels": "d",
    "s": ".0f",
}
KEYS = ["case", "seed", "n", "auroc", "cleanlab_probs", "cleanlab_features", "cleanlab_pixels", "precision", "recall"]
KEYS += ["clean_flagged", "broken_found", "broken", "base_odd", "strangers_as_wrong_label", "seconds"]


def options(parser) -> None:
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--save", type=Path, help="keep each case's kinds and scores here (an .npz per case)")


def run(args, report) -> None:
    table = report.table(COLUMNS)
    for name in args.cases:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            r = run_case(name, seed, args.save)
            print(f"  {r}", file=sys.stderr, flush=True)
            table.add({column: r.get(key) for column, key in zip(COLUMNS, KEYS)})
