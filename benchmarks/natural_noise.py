"""Natural label errors (issue 31): plausible wrong labels at low rates on real data, and each data set as it is,
beside cleanlab on the same run's evidence and on a plain 5-fold CNN.

    python -m benchmarks.natural_noise                          # 3 sources x 3 rates x 5 cases: about 2 h on 2 cores
    python -m benchmarks.natural_noise --sources fashion --rates 0.01 --seeds 1
    python -m benchmarks.natural_noise --sources fashion --rates 0.02 --flips random --seeds 5   # issue 31's user
    python -m benchmarks.natural_noise --as-is --sources mnist fashion notmnist --montage benchmarks/natural
    python -m benchmarks.natural_noise --rates 0.01 --seeds 2 --methods ours --train epochs=10   # another recipe

Data from ../shared/data (not shipped with the repo): MNIST's 60,000 training digits, Fashion-MNIST's 10,000 test
items and notMNIST's 10,000 letters. Per source, a reference CNN (this project's member recipe, 10 epochs) trains
on 4,000 images set aside once; each case draws `--n` of the others and moves `--rates` of their labels to the
class the reference rates most likely after the given one (`--flips confusable`: the 4 written as a 9, the shirt
filed as a T-shirt, the mistakes people make), or to any other class (`--flips random`). The reference never sees
a case's images, so the flips follow what the data confuses, not what the tool learns. `--flips ambiguous` moves
the same way but picks the images to move in proportion to how likely the reference finds that other class, so
mostly the sloppy, doubtful pictures, as natural errors are.

Methods, one case at a time on the same images: `ours` (pipeline.runner.find_suspects, the defaults, no time
budget); `cleanlab-oob` (cleanlab.filter.find_label_issues on our members' out-of-bag probabilities); `cleanlab-5fold`
(find_label_issues on stratified 5-fold probabilities of the same CNN with the same recipe, as a cleanlab user
would). Precision, recall and F1 of the flags against the moved labels; AP is the average precision of each
method's full ranking (ours: Decisions.ranking; cleanlab: its label quality score), which does not depend on
where the flags stop; best-cut F1 is the F1 of each case's best top-k of that ranking, chosen with the truth, so the
most any single cut of it could reach (counts per class cut each class apart and may do better). The data sets' own
natural errors count as wrong flags for every method alike.

`--as-is`: each source's images with their labels untouched (`--n` of them, drawn as above): what is flagged and
how many outliers, and with `--montage PREFIX` a PNG of the 40 most certain flags for a person to judge
(PREFIX-SOURCE.png).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

from benchmarks.machine import describe
from pipeline.params import build_params
from pipeline.runner import find_suspects
from stages.decode_idx import read_images, read_labels
from stages.train import TrainParams

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
SOURCES = {  # name: (images, labels, class names or None)
    "mnist": ("mnist-train-images-idx3-ubyte.gz", "mnist-train-labels-idx1-ubyte.gz", None),
    "fashion": ("fashion-t10k-images-idx3-ubyte.gz", "fashion-t10k-labels-idx1-ubyte.gz", "fashion-classes.txt"),
    "notmnist": ("notmnist-t10k-images-idx3-ubyte.gz", "notmnist-t10k-labels-idx1-ubyte.gz", None),
}
REFERENCE_SIZE = 4000  # images set aside per source to train the reference model that chooses the flips
METHODS = ("ours", "cleanlab-oob", "cleanlab-5fold")
MONTAGE = 40


def load(source: str) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    images_file, labels_file, names_file = SOURCES[source]
    try:
        images, labels = read_images(SHARED / images_file), read_labels(SHARED / labels_file)
    except Exception as exc:
        raise SystemExit(f"benchmarks.natural_noise needs {source} in {SHARED}: {exc}") from None
    names = None
    if names_file == "fashion-classes.txt" and (SHARED / names_file).exists():
        names = (SHARED / names_file).read_text().split("\n")[: int(labels.max()) + 1]
    if source == "notmnist":
        names = list("ABCDEFGHIJ")
    return images, labels, names


_REFERENCES: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def reference(source: str, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pool, probabilities over the pool): the images a case may draw, and a reference CNN's class probabilities
    for them, trained on REFERENCE_SIZE other images of the source (drawn once, seed 7)."""
    if source not in _REFERENCES:
        from stages.member import train_member
        from stages.train import TrainParams

        order = np.random.default_rng(7).permutation(len(labels))
        refs, pool = np.sort(order[:REFERENCE_SIZE]), np.sort(order[REFERENCE_SIZE:])
        recipe = replace(TrainParams(), epochs=10, augment="affine")  # the recipe the cases were first drawn with
        out = train_member(
            images, labels, refs, pool, n_classes=int(labels.max()) + 1, params=recipe, seed=7, threads=2
        )
        _REFERENCES[source] = pool, out.probs
    return _REFERENCES[source]


def make_case(source: str, n: int, rate: float, flips: str, seed: int):
    """(images, given labels, true labels, flipped indices, class names) of one case."""
    images, labels, names = load(source)
    pool, ref_prob = reference(source, images, labels)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(pool), n, replace=False))
    given = labels[pool[pick]].copy()
    if flips == "ambiguous":  # the sloppy 4 is likelier to be mislabelled than the clear one
        second = np.sort(ref_prob[pick], axis=1)[:, -2]
        flipped = np.sort(rng.choice(n, int(round(rate * n)), replace=False, p=second / second.sum()))
    else:
        flipped = np.sort(rng.choice(n, int(round(rate * n)), replace=False))
    if flips == "random":
        n_classes = int(labels.max()) + 1
        given[flipped] = (given[flipped] + rng.integers(1, n_classes, len(flipped))) % n_classes
    else:
        other = ref_prob[pick[flipped]].copy()
        other[np.arange(len(flipped)), given[flipped]] = -1
        given[flipped] = other.argmax(1)
    return images[pool[pick]], given, labels[pool[pick]], flipped, names


def five_fold_probabilities(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Out-of-sample class probabilities of stratified 5-fold cross-validation (benchmarks.peer_methods)."""
    from benchmarks.peer_methods import cv_plan, train_plan
    from stages.train import TrainParams

    n_classes = int(labels.max()) + 1
    plan = cv_plan(labels, 0)
    prob = np.zeros((len(labels), n_classes))
    for (_, held), probs in zip(plan, train_plan(images, labels, plan, n_classes, TrainParams())):
        prob[held] = probs
    return prob


def cleanlab_on(labels: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flagged indices, ranking most suspect first) by cleanlab's find_label_issues and label quality scores."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    prob = np.nan_to_num(prob, nan=1 / prob.shape[1])
    prob = prob / prob.sum(1, keepdims=True)
    return np.flatnonzero(find_label_issues(labels, prob)), np.argsort(
        get_label_quality_scores(labels, prob), kind="stable"
    )


def average_precision(ranking: np.ndarray, positive: np.ndarray) -> float:
    hit = np.isin(ranking, positive)
    if not hit.any():
        return float("nan")
    return float((np.cumsum(hit) / np.arange(1, len(hit) + 1))[hit].sum() / len(positive))


def best_cut(ranking: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(flagged, right) where the ranking's top k have the best F1 over every k, chosen with the truth: no rule
    that flags a top part of this ranking does better."""
    hit = np.isin(ranking, truth)
    right = np.cumsum(hit)
    k = int(np.argmax(2 * right / (np.arange(1, len(hit) + 1) + len(truth)))) if len(hit) else -1
    return (k + 1, int(right[k])) if k >= 0 else (0, 0)


def scores(flagged: np.ndarray, ranking: np.ndarray, truth: np.ndarray) -> dict:
    right = len(np.intersect1d(flagged, truth))
    best_flagged, best_right = best_cut(ranking, truth)
    precision = right / len(flagged) if len(flagged) else float("nan")
    recall = right / len(truth) if len(truth) else float("nan")
    f1 = 2 * right / (len(flagged) + len(truth)) if len(flagged) + len(truth) else float("nan")
    return {
        "flagged": len(flagged),
        "right": right,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "ap": average_precision(ranking, truth),
        "best_flagged": best_flagged,
        "best_right": best_right,
    }


def run_case(
    source: str, n: int, rate: float, flips: str, seed: int, methods, train_params: TrainParams = TrainParams()
) -> dict[str, dict]:
    images, given, _, flipped, _ = make_case(source, n, rate, flips, seed)
    rows = {}
    start = time.monotonic()
    run = find_suspects(images, given, train_params=train_params)
    d = run.decisions
    rows["ours"] = scores(np.flatnonzero(d.flagged), d.ranking(), flipped) | {
        "seconds": time.monotonic() - start,
        "outliers": int(d.outlier.sum()),
    }
    if "cleanlab-oob" in methods:
        flagged, ranking = cleanlab_on(given, run.oob.prob)
        rows["cleanlab-oob"] = scores(flagged, ranking, flipped)
    if "cleanlab-5fold" in methods:
        start = time.monotonic()
        flagged, ranking = cleanlab_on(given, five_fold_probabilities(images, given))
        rows["cleanlab-5fold"] = scores(flagged, ranking, flipped) | {"seconds": time.monotonic() - start}
    return rows


def montage(
    images: np.ndarray, given: np.ndarray, suggested: np.ndarray, chosen: np.ndarray, names, path: Path, title: str
) -> None:
    from matplotlib.figure import Figure

    columns = 10
    rows = max(1, -(-len(chosen) // columns))
    fig = Figure(figsize=(columns * 1.0, rows * 1.25 + 0.5))
    fig.suptitle(title, fontsize=9)

    def name(c):
        return names[c] if names else str(c)

    for k, i in enumerate(chosen):
        ax = fig.add_subplot(rows, columns, k + 1)
        ax.imshow(images[i].squeeze(), cmap="gray", vmin=0, vmax=255)
        ax.set_axis_off()
        ax.set_title(f"{name(given[i])}->{name(suggested[i])}"[:14], fontsize=7)
    fig.savefig(path, dpi=80)


def as_is(source: str, n: int, seed: int, prefix: Path | None) -> dict:
    images, labels, names = load(source)
    rng = np.random.default_rng(seed)
    if n < len(labels):
        pick = np.sort(rng.choice(len(labels), n, replace=False))
        images, labels = images[pick], labels[pick]
    start = time.monotonic()
    d = find_suspects(images, labels).decisions
    row = {
        "n": len(labels),
        "flagged": int(d.flagged.sum()),
        "outliers": int(d.outlier.sum()),
        "odd": int((d.odd != "").sum()),
        "seconds": time.monotonic() - start,
    }
    if prefix is not None:
        top = d.ranking()[: min(MONTAGE, int(d.flagged.sum()))]
        path = Path(f"{prefix}-{source}.png")
        montage(
            images,
            labels,
            d.suggested,
            top,
            names,
            path,
            f"{source}, {len(labels)} images as they are: the {len(top)} most certain of {row['flagged']} flags "
            f"(given -> suggested)",
        )
        row["montage"] = str(path)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--rates", nargs="+", type=float, default=[0.002, 0.01, 0.03])
    parser.add_argument("--flips", choices=("confusable", "ambiguous", "random"), default="confusable")
    parser.add_argument("--n", type=int, default=2000, help="images a case")
    parser.add_argument("--seeds", type=int, default=5, help="cases a row")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--as-is", action="store_true", help="each source as it is, no labels moved")
    parser.add_argument("--montage", type=Path, help="with --as-is: write PREFIX-SOURCE.png of the top flags")
    parser.add_argument(
        "--train",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="our members' parameters other than the defaults (the peers keep theirs), e.g. epochs=10",
    )
    args = parser.parse_args()
    values = {key: yaml.safe_load(value) for key, _, value in (pair.partition("=") for pair in args.train)}
    train_params = build_params(TrainParams, values, "--train", "train")
    print(describe())
    if args.as_is:
        print("| source | N | flagged | outliers | odd | s | montage |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for source in args.sources:
            r = as_is(source, args.n, args.first_seed, args.montage)
            print(
                f"| {source} | {r['n']} | {r['flagged']} | {r['outliers']} ({100 * r['outliers'] / r['n']:.2f}%) | "
                f"{r['odd']} | {r['seconds']:.0f} | {r.get('montage', '-')} |",
                flush=True,
            )
        print(describe().replace("# ", "# after: ", 1))
        return
    print(
        f"# {args.n} images a case, labels moved: {args.flips}; seeds {args.first_seed}.."
        f"{args.first_seed + args.seeds - 1}; precision, recall and F1 pool a row's cases, AP is their mean; "
        "best-cut F1 pools each case's best top-k of the method's ranking, chosen with the truth"
        + (f"; ours with {' '.join(args.train)}" if args.train else "")
    )
    print("| source | rate | wrong labels | method | flagged | precision | recall | F1 | AP | best-cut F1 | mean s |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for source in args.sources:
        for rate in args.rates:
            runs = []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                runs.append(run_case(source, args.n, rate, args.flips, seed, args.methods, train_params))
                print(f"  {source} {rate} seed {seed}: {runs[-1]}", file=sys.stderr, flush=True)
            wrong = int(round(rate * args.n)) * len(runs)
            for method in runs[0]:
                flagged = sum(r[method]["flagged"] for r in runs)
                right = sum(r[method]["right"] for r in runs)
                precision = right / flagged if flagged else float("nan")
                f1 = 2 * right / (flagged + wrong) if flagged + wrong else float("nan")
                best_flagged = sum(r[method]["best_flagged"] for r in runs)
                best = (
                    2 * sum(r[method]["best_right"] for r in runs) / (best_flagged + wrong)
                    if best_flagged + wrong
                    else float("nan")
                )
                seconds = [r[method]["seconds"] for r in runs if "seconds" in r[method]]
                print(
                    f"| {source} | {rate:.1%} | {wrong} | {method} | {flagged} | {precision:.2f} | "
                    f"{right / wrong:.2f} | {f1:.2f} | {np.nanmean([r[method]['ap'] for r in runs]):.2f} | "
                    f"{best:.2f} | {np.mean(seconds) if seconds else float('nan'):.0f} |",
                    flush=True,
                )
    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
