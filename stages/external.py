"""Stage 2, external: the evidence a user brings (docs: "Bring your own evidence"): a model's out-of-sample class
probabilities, embeddings from any model, or the model itself, which embeds the images here. Every file is checked
against the data it describes, one row per sample in the data's order; what passes is one artifact, so a changed
aggregate parameter never embeds again."""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.artifact import Artifact, Field
from stages.decode_readers import available_memory, npy_array
from stages.errors import InputError
from stages.labels import UNLABELLED
from stages.params import Params, param
from stages.workers import BACKENDS, DEVICES

SUM_TOLERANCE = 1e-3  # rows of probabilities may sum to 1 within this
IN_SAMPLE_SHARE = 0.995  # the given label the likeliest class of more rows than this: probabilities seen in training


@dataclass(frozen=True)
class ExternalParams(Params):
    """The evidence a user brings; all null: none (the tool trains its own members)."""

    pred_probs: str | None = param(
        None,
        "Out-of-sample class probabilities (N, K), one row per sample in the data's order: .npy, .npz (its array "
        "pred_probs or its only one; FILE.npz:NAME picks another), or .csv with a header of class names.",
    )
    features: str | None = param(
        None,
        "Embeddings (N, D) from any model, one row per sample in the data's order: .npy or .npz (its array "
        "features or its only one; FILE.npz:NAME picks another).",
    )
    model: str | None = param(
        None,
        "A model that embeds the images: a TorchScript file (.pt), an exported program (.pt2), an .onnx file (with "
        "onnxruntime), or torchvision:NAME with its weights in the local torch cache "
        '(docs: "Bring your own evidence: A model").',
    )
    normalise: bool = param(
        False, "Divide each row of pred_probs by its sum where it does not sum to 1 (else such a file is refused)."
    )
    batch_size: int = param(256, "Images a model embeds at a time.", within="1..65536")
    device: str = param(
        "auto", "Where a model embeds: cpu, cuda, cuda:N, mps, or auto.", choices=DEVICES, pattern=r"cuda:\d+"
    )
    n_jobs: int = param(
        1,
        "Workers that embed on the CPU, each a share of the images (-1: one per core).",
        choices=(-1,),
        within="1..1024",
    )
    backend: str = param("loky", "The joblib backend of those workers (dask: a cluster).", choices=BACKENDS)
    scheduler: str | None = param(None, "With dask: a running scheduler's address (tcp://host:8786).")

    @property
    def given(self) -> bool:
        return any(value is not None for value in (self.pred_probs, self.features, self.model))


@dataclass
class External(Artifact):
    """The external stage's result and artifact: the evidence brought, checked (no rows where none was)."""

    pred_probs: np.ndarray  # float64 (N, K) class probabilities, or (0, 0)
    features: np.ndarray  # float32 (N, D) embeddings, or (0, 0)
    note: str  # a warning about the evidence (probabilities that look in-sample), or ""
    dataset: str = ""  # Dataset.fingerprint of the data it was checked against (pipeline/steps.py; "" in memory)

    STAGE = "external"
    FIELDS = {"pred_probs": Field("f", 2), "features": Field("f", 2), "note": Field("U", 0), "dataset": Field("U", 0)}

    @classmethod
    def none(cls) -> External:
        return cls(np.zeros((0, 0)), np.zeros((0, 0), np.float32), "")


def split_member(spec: str) -> tuple[Path, str | None]:
    """FILE.npz:NAME as (FILE.npz, NAME); anything else as (path, None)."""
    head, colon, name = spec.rpartition(":")
    if colon and head.lower().endswith(".npz") and name:
        return Path(head), name
    return Path(spec), None


def npz_member(path: Path, name: str | None, preferred: str, source: str) -> np.ndarray:
    """The array `name` of an .npz (else `preferred`, else its only one), its header checked before it is read:
    numbers only, and no more than half the free memory."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            members = {m.removesuffix(".npy"): m for m in archive.namelist()}
            chosen = name or (preferred if preferred in members else next(iter(members)) if len(members) == 1 else None)
            if chosen not in members:
                raise InputError(source, f"holds arrays {sorted(members)}: name one as {path}:NAME")
            with archive.open(members[chosen]) as member:
                version = np.lib.format.read_magic(member)
                header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = header(member)
                if dtype.hasobject or dtype.kind not in "biuf":
                    raise InputError(source, f"array {chosen!r} is {dtype}, not numbers")
                if int(np.prod(shape, dtype=object)) * dtype.itemsize > available_memory() // 2:
                    raise InputError(source, f"array {chosen!r} needs more than half the memory free")
            with archive.open(members[chosen]) as member:
                return np.lib.format.read_array(member, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(source, "no such file") from None
    except InputError:
        raise
    except Exception as exc:  # not a zip, a truncated member, a damaged header
        raise InputError(source, f"not a readable .npz ({type(exc).__name__}: {exc})") from None


def read_array(spec: str, preferred: str) -> np.ndarray:
    """An array from .npy, .npz (FILE.npz:NAME) or, for probabilities, .csv (read_csv)."""
    path, name = split_member(spec)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return npz_member(path, name, preferred, spec)
    if suffix == ".npy":
        return npy_array(path)
    raise InputError(spec, "must be an .npy or .npz file" + (" or a .csv" if preferred == "pred_probs" else ""))


def read_csv(path: str, class_names: list[str] | None, n_classes: int) -> np.ndarray:
    """Probabilities from a CSV whose header names the classes (in any order; an `index` column is allowed): its
    columns are put in the data's class order."""
    names = class_names or [str(c) for c in range(n_classes)]
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, f"cannot be read as CSV ({exc})") from None
    if not rows:
        raise InputError(path, "is empty: a header of class names and a row per sample expected")
    header = [h.strip() for h in rows[0]]
    keep = [k for k, h in enumerate(header) if h.lower() != "index"]
    unknown = [header[k] for k in keep if header[k] not in names]
    if unknown or len(keep) != len(names):
        raise InputError(path, f"its header must name each class once ({', '.join(names)}); found {header}")
    order = [keep[[header[k] for k in keep].index(name)] for name in names]
    try:
        return np.array([[float(row[k]) for k in order] for row in rows[1:]], dtype=np.float64)
    except (ValueError, IndexError):
        raise InputError(path, "holds a row that is not one number per class") from None


def checked_probs(probs: np.ndarray, source: str, *, n: int, n_classes: int, normalise: bool) -> np.ndarray:
    """pred_probs as float64 (N, K), refused with one line where it cannot be what it claims."""
    if probs.ndim != 2 or probs.shape != (n, n_classes):
        raise InputError(
            source,
            f"has shape {probs.shape}, not ({n}, {n_classes}): one row per sample, one column "
            f"per class, in the data's order",
        )
    probs = probs.astype(np.float64)
    if not np.isfinite(probs).all():
        raise InputError(source, f"holds {int((~np.isfinite(probs)).sum())} values that are NaN or infinite")
    if (probs < 0).any():
        raise InputError(source, f"holds {int((probs < 0).sum())} negative values: probabilities expected")
    sums = probs.sum(1)
    if np.abs(sums - 1).max() > SUM_TOLERANCE:
        if not normalise or (sums <= 0).any():
            raise InputError(
                source,
                f"rows sum to {sums.min():.4g}..{sums.max():.4g}, not 1 (logits? apply softmax; "
                f"or set external.normalise to divide each row by its sum)",
            )
        probs = probs / sums[:, None]
    return probs


def in_sample_note(probs: np.ndarray, labels: np.ndarray, source: str) -> str:
    """A warning where the given label is the likeliest class of nearly every row: probabilities from a model that
    saw these very labels in training, which agree with every wrong label they learnt."""
    labelled = labels != UNLABELLED
    if labelled.sum() < 100 or (probs[labelled].argmax(1) == labels[labelled]).mean() <= IN_SAMPLE_SHARE:
        return ""
    share = (probs[labelled].argmax(1) == labels[labelled]).mean()
    return (
        f"{source}: the given label is the likeliest class of {share:.1%} of the rows: are these out-of-sample "
        f"probabilities (cross-validated, or from a model that never saw these labels)? In-sample ones hide "
        f"wrong labels"
    )


def checked_features(features: np.ndarray, source: str, n: int) -> np.ndarray:
    """features as float32 (N, D), refused with one line where they cannot be embeddings of these samples."""
    if features.ndim != 2 or len(features) != n or features.shape[1] == 0:
        raise InputError(source, f"has shape {features.shape}, not ({n}, D): one row per sample, in the data's order")
    if features.dtype.kind not in "biuf":
        raise InputError(source, f"is {features.dtype}, not numbers")
    features = features.astype(np.float32)
    if not np.isfinite(features).all():
        raise InputError(source, f"holds {int((~np.isfinite(features)).sum())} values that are NaN or infinite")
    return features


def read_external(
    params: ExternalParams, images: np.ndarray, labels: np.ndarray, class_names: list[str] | None, n_classes: int
) -> External:
    """The evidence params name, checked against the data (images (N, H, W, C), labels (N,)); a model embeds the
    images (stages/embed.py). External.none() where nothing is named."""
    n, probs, features, note = len(labels), np.zeros((0, 0)), np.zeros((0, 0), np.float32), ""
    if params.pred_probs is not None:
        raw = (
            read_csv(params.pred_probs, class_names, n_classes)
            if params.pred_probs.lower().endswith(".csv")
            else read_array(params.pred_probs, "pred_probs")
        )
        probs = checked_probs(raw, params.pred_probs, n=n, n_classes=n_classes, normalise=params.normalise)
        note = in_sample_note(probs, labels, params.pred_probs)
    if params.features is not None and params.model is not None:
        raise InputError("external", "name features or a model that makes them, not both")
    if params.features is not None:
        features = checked_features(read_array(params.features, "features"), params.features, n)
    if params.model is not None:
        from stages.embed import embed

        features = checked_features(embed(images, params), params.model, n)
    return External(probs, features, note)


def progress(done: int, total: int, seconds: float) -> None:
    """The embedding's progress on stderr: a live line on a terminal, else one line at the end."""
    message = f"external: embedded {done:,}/{total:,} images, {done / max(seconds, 1e-9):,.0f} images/s"
    if sys.stderr.isatty():
        print("\r" + message, end="\n" if done == total else "", file=sys.stderr, flush=True)
    elif done == total:
        print(message, file=sys.stderr, flush=True)
