"""Natural label errors (issue 31) on real data, and each data set as it is, beside cleanlab.

Plausible wrong labels at low rates: F1 of each method's flags, AP of its ranking and F1 of the ranking's best cut.

    python -m benchmarks natural_noise                          # 3 sources x 3 rates x 5 cases: about 2 h on 2 cores
    python -m benchmarks natural_noise --sources fashion --rates 0.01 --seeds 1
    python -m benchmarks natural_noise --sources fashion --rates 0.02 --flips random --seeds 5   # issue 31's user
    python -m benchmarks natural_noise --as-is --sources mnist fashion notmnist --montage benchmarks/natural
    python -m benchmarks natural_noise --rates 0.01 --seeds 2 --methods ours --train epochs=10   # another recipe

Data from ../shared/data (not shipped with the repo): MNIST's 60,000 training digits, Fashion-MNIST's 10,000 test
items and notMNIST's 10,000 letters. Per source, a reference CNN (this project's member recipe, 10 epochs) trains on
4,000 images set aside once; each case (benchmarks/harness/cases.py, natural_case) draws `--n` of the others and
moves `--rates` of their labels to the class the reference rates most likely after the given one (`--flips
confusable`: the 4 written as a 9, the shirt filed as a T-shirt, the mistakes people make), or to any other class
(`--flips random`). The reference never sees a case's images, so the flips follow what the data confuses, not what
the tool learns. `--flips ambiguous` moves the same way but picks the images to move in proportion to how likely the
reference finds that other class, so mostly the sloppy, doubtful pictures, as natural errors are.

Methods, one case at a time on the same images: `ours` (pipeline.runner.find_suspects, the defaults, no time
budget); `cleanlab-oob` (cleanlab.filter.find_label_issues on our members' out-of-bag probabilities);
`cleanlab-5fold` (find_label_issues on stratified 5-fold probabilities of the same CNN with the same recipe, as a
cleanlab user would; benchmarks/harness/peers.py). Precision, recall and F1 of the flags against the moved labels;
AP is the average precision of each method's full ranking (ours: Decisions.ranking; cleanlab: its label quality
score), which does not depend on where the flags stop; best-cut F1 is the F1 of each case's best top-k of that
ranking, chosen with the truth, so the most any single cut of it could reach (counts per class cut each class apart
and may do better). The data sets' own natural errors count as wrong flags for every method alike.

`--as-is`: each source's images with their labels untouched (`--n` of them, drawn as above): what is flagged and
how many outliers, and with `--montage PREFIX` a PNG of the 40 most certain flags for a person to judge
(PREFIX-SOURCE.png).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks.harness.cases import FLIPS, NATURAL, natural_case, natural_source
from benchmarks.harness.peers import cleanlab_on, fold_probabilities
from benchmarks.harness.scores import Tally, average_precision, best_cut, tally
from pipeline.params import build_params
from pipeline.runner import find_suspects
from stages.train import TrainParams

METHODS = ("ours", "cleanlab-oob", "cleanlab-5fold")
MONTAGE = 40
COLUMNS = {
    "source": "",
    "rate": ".1%",
    "wrong labels": "d",
    "method": "",
    "flagged": "d",
    "precision": ".2f",
    "recall": ".2f",
    "F1": ".2f",
    "AP": ".2f",
    "best-cut F1": ".2f",
    "mean s": ".0f",
}
RELIABILITY = {"wrong_prob from": ".2f", "to": ".2f", "samples": "d", "mean wrong_prob": ".3f", "share moved": ".3f"}
EDGES = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
AS_IS = {"source": "", "N": "d", "flagged": "d", "outliers": "d", "outliers %": ".2f", "odd": "d", "s": ".0f"}


def options(parser) -> None:
    parser.add_argument("--sources", nargs="+", default=list(NATURAL), choices=list(NATURAL))
    parser.add_argument("--rates", nargs="+", type=float, default=[0.002, 0.01, 0.03])
    parser.add_argument("--flips", choices=FLIPS, default="confusable")
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


def scores(flagged: np.ndarray, ranking: np.ndarray, truth: np.ndarray, seconds: float | None = None) -> dict:
    """A method's answer on one case: its tally, its ranking's AP and the tally of its ranking's best cut."""
    best_flagged, best_right = best_cut(ranking, truth)
    best = Tally(best_right, len(truth) - best_right, best_flagged - best_right)
    return {"tally": tally(flagged, truth), "ap": average_precision(ranking, truth), "best": best, "seconds": seconds}


def run_case(source: str, rate: float, seed: int, args, train_params: TrainParams) -> dict[str, dict]:
    images, given, _, flipped, _ = natural_case(source, args.n, rate, flips=args.flips, seed=seed)
    rows = {}
    start = time.monotonic()
    run = find_suspects(images, given, train_params=train_params)
    d = run.decisions
    rows["ours"] = scores(np.flatnonzero(d.flagged), d.ranking(), flipped, time.monotonic() - start)
    rows["ours"]["calibration"] = (d.wrong_prob, np.isin(np.arange(len(given)), flipped))
    if "cleanlab-oob" in args.methods:
        rows["cleanlab-oob"] = scores(*cleanlab_on(given, run.oob.prob), flipped)
    if "cleanlab-5fold" in args.methods:
        start = time.monotonic()
        prob = fold_probabilities(images, given, int(given.max()) + 1)
        rows["cleanlab-5fold"] = scores(*cleanlab_on(given, prob), flipped, time.monotonic() - start)
    return rows


def montage(images: np.ndarray, given: np.ndarray, suggested: np.ndarray, chosen: np.ndarray, names, title: str):
    """A figure of the chosen images, each titled given -> suggested label."""
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
    return fig


def as_is(source: str, n: int, seed: int, prefix: Path | None, report) -> dict:
    """One source's images with their labels untouched: what is flagged, how many outliers and odd images."""
    images, labels, names = natural_source(source)
    rng = np.random.default_rng(seed)
    if n < len(labels):
        pick = np.sort(rng.choice(len(labels), n, replace=False))
        images, labels = images[pick], labels[pick]
    start = time.monotonic()
    d = find_suspects(images, labels).decisions
    flagged, outliers = int(d.flagged.sum()), int(d.outlier.sum())
    row = [source, len(labels), flagged, outliers, 100 * outliers / len(labels), int((d.odd != "").sum())]
    if prefix is not None:
        top = d.ranking()[: min(MONTAGE, flagged)]
        title = f"{source}, {len(labels)} images as they are: the {len(top)} most certain of {flagged} flags"
        path = Path(f"{prefix}-{source}.png")
        montage(images, labels, d.suggested, top, names, title + " (given -> suggested)").savefig(path, dpi=80)
        report.file(path)
    return dict(zip(AS_IS, [*row, time.monotonic() - start]))


def pooled_row(source: str, rate: float, method: str, runs: list[dict]) -> dict:
    """A row of the table: a method's cases pooled (precision, recall, F1, best-cut F1), AP and seconds averaged."""
    mine = [r[method] for r in runs]
    total, best = sum((m["tally"] for m in mine), Tally()), sum((m["best"] for m in mine), Tally())
    seconds = [m["seconds"] for m in mine if m["seconds"] is not None]
    values = [source, rate, total.wrong, method, total.flagged, total.precision, total.recall, total.f1]
    values += [np.nanmean([m["ap"] for m in mine]), best.f1, np.mean(seconds) if seconds else None]
    return dict(zip(COLUMNS, values))


def run(args, report) -> None:
    values = {key: yaml.safe_load(value) for key, _, value in (pair.partition("=") for pair in args.train)}
    train_params = build_params(TrainParams, values, "--train", "train")
    if args.as_is:
        table = report.table(AS_IS)
        for source in args.sources:
            table.add(as_is(source, args.n, args.first_seed, args.montage, report))
        return
    report.note(
        f"{args.n} images a case, labels moved: {args.flips}; seeds {args.first_seed}.."
        f"{args.first_seed + args.seeds - 1}; precision, recall and F1 pool a row's cases, AP is their mean; "
        "best-cut F1 pools each case's best top-k of the method's ranking, chosen with the truth"
        + (f"; ours with {' '.join(args.train)}" if args.train else "")
    )
    wide = (["source", "rate", "wrong labels"], "method", ["F1", "AP", "best-cut F1"])
    table = report.table(COLUMNS, "F1, AP and best-cut F1 by method", wide=wide)
    calibration = []
    for source in args.sources:
        for rate in args.rates:
            runs = []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                runs.append(run_case(source, rate, seed, args, train_params))
                shown = {m: {k: v for k, v in row.items() if k != "calibration"} for m, row in runs[-1].items()}
                print(f"  {source} {rate} seed {seed}: {shown}", file=sys.stderr, flush=True)
            for method in runs[0]:
                table.add(pooled_row(source, rate, method, runs))
            calibration += [r["ours"]["calibration"] for r in runs]
    reliability(calibration, report)


def reliability(calibration: list[tuple[np.ndarray, np.ndarray]], report) -> None:
    """Ours' probability that a label is wrong against the truth, pooled over every case: per bin of wrong_prob,
    the share of its samples whose label was moved (calibrated: about the bin's mean), and the expected calibration
    error (the bins' gaps weighted by their samples). A case's own natural errors count as not moved."""
    p = np.concatenate([w for w, _ in calibration])
    moved = np.concatenate([m for _, m in calibration])
    moved, p = moved[np.isfinite(p)], p[np.isfinite(p)]
    table = report.table(RELIABILITY, "Calibration: the share of moved labels by ours' wrong_prob, every case pooled")
    ece = 0.0
    for low, high in zip(EDGES, EDGES[1:]):
        inside = (p >= low) & ((p < high) | (high == EDGES[-1]))
        if inside.any():
            table.add(dict(zip(RELIABILITY, [low, high, int(inside.sum()), p[inside].mean(), moved[inside].mean()])))
            ece += inside.mean() * abs(p[inside].mean() - moved[inside].mean())
    report.note(f"expected calibration error of ours' wrong_prob: {ece:.4f} over {p.size} samples")
