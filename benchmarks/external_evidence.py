"""Bring your own evidence (issue 45): flags from a strong model's out-of-sample probabilities and from its
embeddings, ours beside cleanlab and Datalab on the very same arrays.

    python -m benchmarks.external_evidence                      # the first run builds the cache (see below)
    python -m benchmarks.external_evidence --sources fashion --rates 0.01 --methods ours cleanlab cleanlab-both
    python -m benchmarks.external_evidence --variants twins     # the evil-twin rows only

    from benchmarks.external_evidence import load_variant
    v = load_variant("mnist", 0.01)     # or "as-is", "twins"; builds and caches it when missing
    v["images"], v["labels"], v["pred_probs"], v["features"], v["truth"]

Data from ../shared/data (not shipped with the repo). Per source (MNIST digits, Fashion-MNIST clothes) a strong
model: a small CNN with a 512-wide penultimate layer, trained on the source's 60,000 *training* images only (MNIST
for this benchmark alone, never for weights we ship). Its variants of the 10,000 *test* images: `as-is`; `flips-R`,
a share R of the labels moved to the class the strong model finds likeliest after the given one (as
benchmarks.natural_noise's confusable flips; the strong model never saw these images); `twins`, 2,000 test items
plus 60 exact copies of some of them carrying that confusable label instead (evil twins), in shuffled order.
Per variant: `pred_probs` (N, K), out of sample: the strong model fine-tuned in 5 stratified folds on the variant's
labels, each fold's model predicting the fold it left out; `features` (N, 512): the strong model's penultimate
layer (not fine-tuned, so one embedding per picture for every variant; a copy's equals its original's).

Methods, each timed on the same arrays: (a) probabilities: `ours` (pipeline.api.find_issues with pred_probs=),
`cleanlab` (filter.find_label_issues, default filter), `cleanlab-both` (filter_by="both"); (b) embeddings: `ours`
(find_issues with features=), `datalab` (cleanlab.Datalab.find_issues(features=...), label, outlier and
near-duplicate checks; its label flags are scored), `cleanlab-lr` and `cleanlab-lr-both` (a standardised logistic
regression on the features, cross_val_predict over 5 random stratified folds, then find_label_issues). Precision,
recall, F1 of the flags against the planted labels, AP of each method's ranking (cleanlab: label quality score;
Datalab: label_score; ours: wrong_prob), and best-cut F1 (the best top-k of that ranking, chosen with the truth).
The test sets' own natural errors count as wrong flags for every method alike. On `twins`: evil twins missed plus
originals flagged, the errors on the twins. On `as-is` nothing is known: flag counts only.

Cache (`--cache`, default .cache/external_evidence/, git-ignored; delete it after changing a setting below): per
source the strong model's weights and test-set view, and one .npz per variant. Building it took, on 2 cores shared
with other work (load average 8-17), 7-28 min per strong model and 1-15 min per variant's fold fine-tuning: an
hour or more for both sources; a run on a full cache spends its time in the peers (the logistic regression's
cross-validation above all).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import describe
from benchmarks.natural_noise import average_precision, best_cut
from stages.decode_idx import read_images, read_labels

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
CACHE = REPO / ".cache" / "external_evidence"  # git-ignored: weights and arrays, rebuilt by deleting it
SOURCES = {"mnist": "mnist", "fashion": "fashion"}  # name: file prefix in SHARED
RATES = (0.002, 0.01, 0.03)
VARIANTS = ("as-is", "flips", "twins")
METHODS = ("ours", "cleanlab", "cleanlab-both", "datalab", "cleanlab-lr", "cleanlab-lr-both")
TWIN_BASE, TWINS = 2000, 60  # the evil-twin variant: test items drawn, of which this many get a relabelled copy
FOLDS = 5  # fine-tuning folds for pred_probs, and the logistic regression's cross-validation
WIDTH = 512  # penultimate layer: the features
EPOCHS, LR = 2, 1e-3  # the strong model on the 60,000 training images (Adam, batch 128)
TUNE_EPOCHS, TUNE_LR = 1, 1e-4  # each fold's fine-tuning on 4/5 of a variant
BATCH = 128
SEED = 0
DATALAB_REPEATS = 3  # the timing row's Datalab calls on 10,000 x 512, median reported


# --- data ------------------------------------------------------------------------------------------------------


def load(source: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) int64) of a source's "train" or "t10k" set."""
    prefix = SOURCES[source]
    try:
        images = read_images(SHARED / f"{prefix}-{split}-images-idx3-ubyte.gz")[..., 0]
        labels = read_labels(SHARED / f"{prefix}-{split}-labels-idx1-ubyte.gz")
    except Exception as exc:
        raise SystemExit(f"benchmarks.external_evidence needs {source} {split} in {SHARED}: {exc}") from None
    return np.ascontiguousarray(images), labels.astype(np.int64)


# --- plant (pure) ----------------------------------------------------------------------------------------------


def confusable(labels: np.ndarray, ref_prob: np.ndarray) -> np.ndarray:
    """(N,) the class a reference model finds likeliest after each given label."""
    other = ref_prob.astype(float).copy()
    other[np.arange(len(labels)), labels] = -1
    return other.argmax(1)


def plant_flips(labels: np.ndarray, ref_prob: np.ndarray, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(given labels, truth mask): round(rate * N) labels, drawn at random, moved to their confusable class.
    labels (N,), ref_prob (N, K) from a model that never saw these items."""
    rng = np.random.default_rng(seed)
    moved = rng.choice(len(labels), int(round(rate * len(labels))), replace=False)
    given, truth = labels.copy(), np.zeros(len(labels), bool)
    given[moved], truth[moved] = confusable(labels, ref_prob)[moved], True
    return given, truth


def plant_twins(labels: np.ndarray, ref_prob: np.ndarray, *, n: int, twins: int, seed: int) -> dict:
    """n items drawn from labels (N,) and `twins` exact copies of some of them under their confusable label, in
    shuffled order: {"source_index" (n + twins,) into labels, "labels", "truth" (the copies), "original" (each
    copy's original's position, -1 elsewhere)}."""
    rng = np.random.default_rng(seed)
    base = rng.choice(len(labels), n, replace=False)
    copied = rng.choice(n, twins, replace=False)
    source = np.r_[base, base[copied]]
    given = np.r_[labels[base], confusable(labels, ref_prob)[base[copied]]]
    original = np.r_[np.full(n, -1), copied]
    order = rng.permutation(n + twins)
    position = np.empty_like(order)
    position[order] = np.arange(n + twins)  # where each row lands after shuffling
    original = np.where(original >= 0, position[np.maximum(original, 0)], -1)[order]
    return {
        "source_index": source[order],
        "labels": given[order],
        "truth": np.arange(n + twins)[order] >= n,
        "original": original,
    }


# --- the strong model ------------------------------------------------------------------------------------------


def network(n_classes: int):
    """A small CNN: two conv blocks, a WIDTH-wide penultimate layer (the features), a linear head."""
    from torch import nn

    body = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14 x 14
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7 x 7
        nn.Flatten(), nn.Linear(32 * 7 * 7, WIDTH), nn.ReLU(),
    )  # fmt: skip
    return nn.Sequential(body, nn.Dropout(0.25), nn.Linear(WIDTH, n_classes))


def fit(model, images: np.ndarray, labels: np.ndarray, *, epochs: int, lr: float, seed: int):
    """Adam on cross-entropy, shuffled batches of BATCH; images (N, 28, 28) uint8. Returns the model, trained."""
    import torch

    torch.manual_seed(seed)
    x, y = torch.tensor(images).float().div_(255).unsqueeze(1), torch.tensor(labels)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(y)).split(BATCH):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    return model


def predict(model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class probabilities (N, K) float64, penultimate features (N, WIDTH) float32) of images (N, 28, 28)."""
    import torch

    model.eval()
    probs, features = [], []
    with torch.no_grad():
        for chunk in torch.tensor(images).float().div_(255).unsqueeze(1).split(1000):
            f = model[0](chunk)
            probs.append(torch.softmax(model[2](f), 1).double().numpy())
            features.append(f.numpy())
    return np.concatenate(probs), np.concatenate(features)


def save(path: Path, arrays: dict) -> None:
    """np.savez_compressed through a temporary file: a cache file is whole or absent, never half-written."""
    np.savez_compressed(path.with_suffix(".tmp.npz"), **arrays)
    path.with_suffix(".tmp.npz").replace(path)


def strong(source: str, cache: Path) -> dict:
    """The strong model's view of the source's test set: {"prob" (10000, K), "features" (10000, WIDTH), "accuracy",
    "train_s"}; trains it on the training set (weights cached) the first time."""
    import torch

    path = cache / f"{source}-strong.npz"
    if path.exists():
        return dict(np.load(path))
    cache.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    images, labels = load(source, "train")
    test_images, test_labels = load(source, "t10k")
    start = time.monotonic()
    model = fit(network(int(labels.max()) + 1), images, labels, epochs=EPOCHS, lr=LR, seed=SEED)
    seconds = time.monotonic() - start
    torch.save(model.state_dict(), cache / f"{source}-strong.pt")
    prob, features = predict(model, test_images)
    out = {"prob": prob, "features": features, "accuracy": (prob.argmax(1) == test_labels).mean(), "train_s": seconds}
    save(path, out)
    print(f"  {source}: strong model {seconds:.0f} s, test accuracy {out['accuracy']:.4f}", file=sys.stderr)
    return out


def fold_probabilities(source: str, images: np.ndarray, labels: np.ndarray, cache: Path) -> np.ndarray:
    """(N, K) out-of-sample probabilities: the strong model fine-tuned on 4 of 5 stratified folds of (images,
    labels), predicting the fifth, for each fold."""
    import torch
    from sklearn.model_selection import StratifiedKFold

    strong(source, cache)
    weights = torch.load(cache / f"{source}-strong.pt")
    torch.set_num_threads(2)
    n_classes = weights["2.weight"].shape[0]
    prob = np.zeros((len(labels), n_classes))
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(np.zeros(len(labels)), labels)
    for k, (train, held) in enumerate(folds):
        model = network(n_classes)
        model.load_state_dict(weights)
        fit(model, images[train], labels[train], epochs=TUNE_EPOCHS, lr=TUNE_LR, seed=SEED + k)
        prob[held] = predict(model, images[held])[0]
    return prob


# --- variants --------------------------------------------------------------------------------------------------


def variant_name(variant) -> str:
    """ "as-is", "twins", or a planted rate (0.01 or "0.01") as "flips-0.01"."""
    if variant in ("as-is", "twins"):
        return variant
    return f"flips-{float(str(variant).removeprefix('flips-')):g}"


def build_variant(source: str, variant, cache: Path) -> dict:
    """The arrays of one variant (module docstring), computed from the strong model."""
    images, labels = load(source, "t10k")
    view = strong(source, cache)
    name = variant_name(variant)
    if name == "twins":
        rows = plant_twins(labels, view["prob"], n=TWIN_BASE, twins=TWINS, seed=SEED)
    else:
        given, truth = labels, np.zeros(len(labels), bool)
        if name != "as-is":
            given, truth = plant_flips(labels, view["prob"], float(name.removeprefix("flips-")), SEED)
        rows = {"source_index": np.arange(len(labels)), "labels": given, "truth": truth}
        rows["original"] = np.full(len(labels), -1)
    pick = rows["source_index"]
    start = time.monotonic()
    rows["pred_probs"] = fold_probabilities(source, images[pick], rows["labels"], cache)
    print(f"  {source} {name}: fold probabilities {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
    return rows | {"images": images[pick], "features": view["features"][pick], "true_labels": labels[pick]}


def load_variant(source: str, variant, cache: Path = CACHE) -> dict:
    """{"images" (N, 28, 28) uint8, "labels" (N,) as given (noisy), "truth" (N,) bool: planted wrong labels,
    "pred_probs" (N, K) out of sample, "features" (N, 512) float32, "source_index" (N,) into the test set,
    "true_labels" (N,) the test set's own, "original" (N,) for an evil twin its original's row, -1 elsewhere}.
    variant: "as-is", "twins" or a planted rate such as 0.01. Built and cached under `cache` when missing."""
    path = Path(cache) / f"{source}-{variant_name(variant)}.npz"
    if not path.exists():
        save(path, build_variant(source, variant, Path(cache)))
    return dict(np.load(path))


# --- methods: each (variant arrays) -> (flagged (N,) bool, ranking most suspect first, extra counts) ----------


def cleanlab_flags(labels: np.ndarray, pred_probs: np.ndarray, filter_by: str | None = None):
    """cleanlab.filter.find_label_issues (its default filter unless filter_by), ranked by label quality score."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    flagged = find_label_issues(labels, pred_probs, **({"filter_by": filter_by} if filter_by else {}))
    return flagged, np.argsort(get_label_quality_scores(labels, pred_probs), kind="stable"), {}


def lr_probabilities(labels: np.ndarray, features: np.ndarray) -> np.ndarray:
    """(N, K) a standardised logistic regression's probabilities, cross_val_predict over 5 random stratified folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    return cross_val_predict(model, features, labels, cv=folds, method="predict_proba")


def datalab_flags(labels: np.ndarray, features: np.ndarray, original: np.ndarray | None = None):
    """Datalab's label, outlier and near-duplicate checks on the features; its label issues are the flags, ranked by
    label_score. Extra: outliers and near-duplicates flagged, and evil-twin pairs it put in one near-duplicate set."""
    from cleanlab import Datalab

    lab = Datalab(data={"label": labels}, label_name="label", verbosity=0)
    lab.find_issues(features=features, issue_types={"label": {}, "outlier": {}, "near_duplicate": {}})
    label, near = lab.get_issues("label"), lab.get_issues("near_duplicate")
    extra = {
        "outliers": int(lab.get_issues("outlier")["is_outlier_issue"].sum()),
        "near_duplicates": int(near["is_near_duplicate_issue"].sum()),
    }
    if original is not None and (original >= 0).any():
        sets = near["near_duplicate_sets"].to_numpy()
        extra["pairs"] = sum(int(o in sets[i]) for i, o in enumerate(original) if o >= 0)
    return label["is_label_issue"].to_numpy(), np.argsort(label["label_score"].to_numpy(), kind="stable"), extra


def ours_flags(images: np.ndarray, labels: np.ndarray, **evidence):
    """pipeline.api.find_issues with the given evidence (pred_probs= or features=), its defaults otherwise, ranked
    by wrong_prob; None while find_issues takes no such keyword."""
    from pipeline.api import find_issues

    try:
        issues = find_issues(images, labels, **evidence)
    except TypeError:
        if set(evidence) <= set(inspect.signature(find_issues).parameters):
            raise  # the keyword exists: a real failure, not a missing feature
        return None
    ranking = np.argsort(-np.nan_to_num(issues.wrong_prob, nan=-1.0), kind="stable")
    return np.asarray(issues.flagged, bool), ranking, {}


def lr_cleanlab(v: dict, filter_by: str | None = None):
    """cleanlab_flags on lr_probabilities of variant v, fitted once for both filters: the second call charges the
    first's fitting seconds (extra "charged_s") so that each row's wall time is the whole recipe's."""
    charged = v.get("lr_seconds", 0.0)
    if "lr_probs" not in v:
        start = time.monotonic()
        v["lr_probs"] = lr_probabilities(v["labels"], v["features"])
        v["lr_seconds"] = time.monotonic() - start
    flagged, ranking, _ = cleanlab_flags(v["labels"], v["lr_probs"], filter_by)
    return flagged, ranking, {"charged_s": charged}


PEERS = {  # method: (the evidence it reads, how it flags a variant v)
    "cleanlab": ("probs", lambda v: cleanlab_flags(v["labels"], v["pred_probs"])),
    "cleanlab-both": ("probs", lambda v: cleanlab_flags(v["labels"], v["pred_probs"], "both")),
    "datalab": ("features", lambda v: datalab_flags(v["labels"], v["features"], v["original"])),
    "cleanlab-lr": ("features", lambda v: lr_cleanlab(v)),
    "cleanlab-lr-both": ("features", lambda v: lr_cleanlab(v, "both")),
}
OURS = {  # evidence: how ours flags a variant v
    "probs": lambda v: ours_flags(v["images"], v["labels"], pred_probs=v["pred_probs"]),
    "features": lambda v: ours_flags(v["images"], v["labels"], features=v["features"]),
}


# --- metrics (pure) --------------------------------------------------------------------------------------------


def score(flagged: np.ndarray, ranking: np.ndarray, truth: np.ndarray) -> dict:
    """Precision, recall, F1 of flagged (N,) bool against truth (N,) bool; AP and best-cut F1 of ranking (indices,
    most suspect first). nan where undefined."""
    right, n_flagged, n_truth = int((flagged & truth).sum()), int(flagged.sum()), int(truth.sum())
    positive = np.flatnonzero(truth)
    best_flagged, best_right = best_cut(ranking, positive) if n_truth else (0, 0)
    nan = float("nan")
    return {
        "right": right,
        "precision": right / n_flagged if n_flagged else nan,
        "recall": right / n_truth if n_truth else nan,
        "f1": 2 * right / (n_flagged + n_truth) if n_flagged + n_truth else nan,
        "ap": average_precision(ranking, positive) if n_truth else nan,
        "best_f1": 2 * best_right / (best_flagged + n_truth) if n_truth else nan,
    }


def twin_errors(flagged: np.ndarray, truth: np.ndarray, original: np.ndarray) -> dict:
    """Evil twins (truth) not flagged, their originals (rows original[truth]) flagged, and the two together."""
    missed, originals = int((truth & ~flagged).sum()), int(flagged[original[truth]].sum())
    return {"missed": missed, "originals": originals, "twin_errors": missed + originals}


# --- runs and tables -------------------------------------------------------------------------------------------


def evaluate(source: str, name: str, v: dict, methods) -> tuple[list[dict], bool]:
    """(one row per method and evidence on variant v, whether ours was skipped for want of the keywords)."""
    jobs = [(m, *PEERS[m]) for m in methods if m in PEERS]
    if "ours" in methods:
        jobs += [("ours", evidence, flags) for evidence, flags in OURS.items()]
    rows, skipped = [], False
    for method, evidence, flags in jobs:
        start = time.monotonic()
        out = flags(v)
        if out is None:
            skipped = True
            continue
        flagged, ranking, extra = out
        seconds = time.monotonic() - start + extra.pop("charged_s", 0.0)
        row = {"source": source, "variant": name, "method": method, "evidence": evidence, "seconds": seconds}
        row |= {"wrong": int(v["truth"].sum()), "flags": int(flagged.sum()), **extra}
        if name != "as-is":  # as it is, nothing is known about the labels: counts only
            row |= score(flagged, ranking, v["truth"])
        if name == "twins":
            row |= twin_errors(flagged, v["truth"], v["original"])
        rows.append(row)
        print(f"  {row}", file=sys.stderr, flush=True)
    return rows, skipped


def datalab_timing(source: str, cache: Path, repeats: int = DATALAB_REPEATS) -> dict:
    """Median wall seconds of Datalab's label, outlier and near-duplicate checks on the 10,000 test items' 512-D
    features (the as-is variant)."""
    v = load_variant(source, "as-is", cache)
    seconds = []
    for _ in range(repeats):
        start = time.monotonic()
        datalab_flags(v["labels"], v["features"])
        seconds.append(time.monotonic() - start)
    return {"source": source, "n": len(v["labels"]), "d": v["features"].shape[1], "seconds": float(np.median(seconds))}


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A markdown table: columns are (header, row key, format spec); a missing or nan value prints as "-"."""

    def cell(row, key, spec):
        value = row.get(key)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "-"
        return format(value, spec)

    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |"]
    lines.append("|" + "|".join("---" if s == "" else "---:" for _, _, s in columns) + "|")
    lines += ["| " + " | ".join(cell(r, k, s) for _, k, s in columns) + " |" for r in rows]
    return "\n".join(lines)


SCORES = [
    ("flags", "flags", "d"),
    ("precision", "precision", ".3f"),
    ("recall", "recall", ".3f"),
    ("F1", "f1", ".3f"),
    ("AP", "ap", ".3f"),
    ("best-cut F1", "best_f1", ".3f"),
    ("s", "seconds", ".1f"),
]
PLANTED = [("source", "source", ""), ("variant", "variant", ""), ("wrong", "wrong", "d"), ("method", "method", "")]
TWINS_COLUMNS = [("source", "source", ""), ("method", "method", ""), ("evidence", "evidence", "")] + [
    ("twins missed", "missed", "d"),
    ("originals flagged", "originals", "d"),
    ("errors on twins", "twin_errors", "d"),
    ("pairs as near-dups", "pairs", "d"),
]
AS_IS = [("source", "source", ""), ("method", "method", ""), ("evidence", "evidence", ""), ("flags", "flags", "d")]
AS_IS += [("outliers", "outliers", "d"), ("near-dups", "near_duplicates", "d"), ("s", "seconds", ".1f")]
TIMING = [("source", "source", ""), ("N", "n", "d"), ("D", "d", "d"), ("Datalab median wall s", "seconds", ".1f")]


def targets(rows: list[dict]) -> list[dict]:
    """Issue 45's bars per planted variant, from the better peer on the same arrays, and ours against them: with
    probabilities F1 >= the better cleanlab filter's + 0.05; with features F1 >= the better peer's on flips, and
    errors on the twins <= half the better peer's."""
    out = []
    for source, name in dict.fromkeys((r["source"], r["variant"]) for r in rows if r["variant"] != "as-is"):
        here = [r for r in rows if (r["source"], r["variant"]) == (source, name)]
        for evidence in ("probs", "features"):
            peers = [r for r in here if r["evidence"] == evidence and r["method"] != "ours"]
            ours = next((r for r in here if r["evidence"] == evidence and r["method"] == "ours"), None)
            if name == "twins" and evidence == "features":
                best, key, bar = min(peers, key=lambda r: r["twin_errors"], default=None), "twin_errors", None
                bar = None if best is None else best["twin_errors"] / 2
                met = None if ours is None or bar is None else ours["twin_errors"] <= bar
            elif name != "twins":
                best, key = max(peers, key=lambda r: np.nan_to_num(r["f1"], nan=-1), default=None), "f1"
                bar = None if best is None else best["f1"] + (0.05 if evidence == "probs" else 0.0)
                met = None if ours is None or bar is None else ours["f1"] >= bar
            else:
                continue
            if best is None:
                continue
            out.append(
                {
                    "source": source,
                    "variant": name,
                    "evidence": evidence,
                    "measure": "errors on twins" if key == "twin_errors" else "F1",
                    "peer": best["method"],
                    "peer_value": float(best[key]),
                    "bar": float(bar),
                    "ours": None if ours is None else float(ours[key]),
                    "met": "-" if met is None else "yes" if met else "no",
                }
            )
    return out


TARGETS = [("source", "source", ""), ("variant", "variant", ""), ("evidence", "evidence", "")]
TARGETS += [("measure", "measure", ""), ("better peer", "peer", ""), ("its value", "peer_value", ".3f")]
TARGETS += [("bar for ours", "bar", ".3f"), ("ours", "ours", ".3f"), ("met", "met", "")]


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True)
        return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def report(rows: list[dict], timings: list[dict], strong_views: dict) -> None:
    """Print the tables: planted flips by probabilities and by features, evil twins, as-is counts, timing, targets."""
    for source, view in strong_views.items():
        print(f"# {source}: strong model test accuracy {view['accuracy']:.4f}, trained in {view['train_s']:.0f} s")
    flips = [r for r in rows if r["variant"].startswith("flips-")]
    sections = [
        ("(a) probabilities: flags against planted confusable flips", [r for r in flips if r["evidence"] == "probs"]),
        ("(b) embeddings: flags against planted confusable flips", [r for r in flips if r["evidence"] == "features"]),
    ]
    for title, chosen in sections:
        if chosen:
            print(f"\n### {title}\n\n{table(chosen, PLANTED + SCORES)}")
    twins = [r for r in rows if r["variant"] == "twins"]
    if twins:
        print(f"\n### evil twins: {TWIN_BASE} test items + {TWINS} relabelled exact copies\n")
        print(table(twins, TWINS_COLUMNS + SCORES))
    as_is = [r for r in rows if r["variant"] == "as-is"]
    if as_is:
        print(f"\n### test sets as they are (no truth: counts only)\n\n{table(as_is, AS_IS)}")
    if timings:
        print("\n### Datalab find_issues (label, outlier, near-duplicate) on given features\n")
        print(table(timings, TIMING))
    goals = targets(rows)
    if goals:
        print(f"\n### issue 45's targets against the better peer on the same arrays\n\n{table(goals, TARGETS)}")


def warm_up() -> None:
    """Import what the methods use, so that no method's wall time pays for a first import (cleanlab's alone: ~10 s)."""
    for module in ("cleanlab.filter", "cleanlab.rank", "cleanlab.datalab.datalab", "sklearn.linear_model"):
        importlib.import_module(module)
    importlib.import_module("pipeline.api")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--rates", nargs="+", type=float, default=list(RATES), help="planted shares of flips")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--cache", type=Path, default=CACHE, help="weights and arrays (built when missing)")
    parser.add_argument("--no-timing", action="store_true", help="leave out the Datalab timing row")
    args = parser.parse_args(argv)
    print(describe())
    print(f"# commit {commit()}; cache {args.cache}")
    variants = [v for v in args.variants if v != "flips"] + (list(args.rates) if "flips" in args.variants else [])
    variants.sort(key=lambda v: ["as-is", *args.rates, "twins"].index(v))
    rows, skipped, views, timings = [], False, {}, []
    warm_up()
    for source in args.sources:
        views[source] = strong(source, args.cache)
        for variant in variants:
            more, missing = evaluate(
                source, variant_name(variant), load_variant(source, variant, args.cache), args.methods
            )
            rows, skipped = rows + more, skipped or missing
        if "datalab" in args.methods and not args.no_timing:
            timings.append(datalab_timing(source, args.cache))
    if skipped:
        print("ours: find_issues takes no pred_probs/features yet")
    report(rows, timings, views)
    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
