"""The tool as one Python call: numpy images and labels in, a decision for every sample out (docs: "Python API").

    from pipeline.api import find_issues
    result = find_issues(images, labels)          # images (N, H, W) or (N, H, W, C), uint8 or float in [0, 1]
    result = find_issues("my_photos/")            # or what decode.images takes: a folder, manifest, .npz, idx
    result.flagged.nonzero()[0]                   # the suspected samples
    result.to_frame()                             # one row per sample, with pandas where it is installed

It runs the pipeline's stages in memory, in order (group -> train -> aggregate), with the defaults params.yaml
mirrors; `params` overrides any of them by section, as params.yaml would. Nothing is written.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pipeline.params import build_sections
from pipeline.registry import IN_MEMORY
from pipeline.runner import find_suspects
from stages.budget import Budget
from stages.decode import MAX_CLASSES, DecodeParams, check_dataset, read_dataset
from stages.decode_readers import as_images, as_labels, kind_of
from stages.errors import InputError
from stages.external import External, ExternalParams, checked_features, checked_probs, in_sample_note, read_external
from stages.labels import class_count


@dataclass
class Issues:
    """Per sample (N rows each), and what decided. Labels are ids; class_names names them where given."""

    flagged: np.ndarray  # bool (N,): suspected of carrying a wrong label
    reason: np.ndarray  # str (N,): "twin" (lost its conflicting twin group), "wrong_label" (no twin), "outlier",
    #                     "odd", or ""
    outlier: np.ndarray  # bool (N,): belongs to no class (not a wrong label: remove it rather than relabel it)
    outlier_score: np.ndarray  # float (N,): how unlike every class it looks (nan where nobody scored)
    odd: np.ndarray  # str (N,): broken images: "blank", "noise", "saturated", or ""
    given: np.ndarray  # int64 (N,): -1 where the sample carries no label
    suggested: np.ndarray  # int64 (N,): the label the evidence favours (-1: none, where nobody scored)
    suggested_prob: np.ndarray  # float (N,): its calibrated probability (an unlabelled sample's confidence)
    score: np.ndarray  # float (N,): mean out-of-bag probability of the given label (nan where nobody scored)
    wrong_prob: np.ndarray  # float (N,): calibrated probability that the given label is wrong (nan: unscored)
    group: np.ndarray  # int64 (N,): twin group id (samples that are copies of each other share one)
    class_names: list[str] | None
    prob: np.ndarray  # float (N, K): the out-of-bag class probabilities (nan rows where nobody scored)
    class_prob: np.ndarray  # float (N, K): the same, calibrated (what wrong_prob and suggested_prob read)
    embedding: np.ndarray  # float (N, K): the members' mean similarity to each class (docs: "Glossary: map")
    paths: list[str] | None  # each sample's source file, where the data came from files
    decided_by: str  # "members" (the trained ensemble), "neighbours" (members too weak), "heads" (on your
    #                  features) or "pred_probs" (your probabilities)
    note: str  # why nothing, or only weaker evidence, could decide (empty when all is well)

    def ranked(self) -> np.ndarray:
        """Indices of the flagged samples, most certain first (highest wrong_prob)."""
        flagged = np.flatnonzero(self.flagged)
        return flagged[np.argsort(-np.nan_to_num(self.wrong_prob[flagged]), kind="stable")]

    def to_frame(self):
        """A pandas DataFrame, one row per sample (labels as names where the data name them); needs pandas."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Issues.to_frame needs pandas (pip install pandas)") from None

        def names(ids):
            return [None if i < 0 else self.class_names[i] if self.class_names else int(i) for i in ids]

        return pd.DataFrame(
            {
                "path": self.paths or [""] * len(self.given),
                "given": names(self.given),
                "suggested": names(self.suggested),
                "suggested_prob": self.suggested_prob,
                "flagged": self.flagged,
                "reason": self.reason,
                "wrong_prob": self.wrong_prob,
                "score": self.score,
                "outlier": self.outlier,
                "outlier_score": self.outlier_score,
                "odd": self.odd,
                "group": self.group,
            }
        )


def find_issues(
    images,
    labels=None,
    *,
    params: dict[str, dict[str, Any]] | None = None,
    time_budget_s: float | None = None,
    pred_probs=None,
    features=None,
    model: str | None = None,
) -> Issues:
    """Group, train and decide. images: (N, H, W), (N, H, W, C) or channels-first (N, C, H, W), uint8 or float
    in [0, 1], with labels (N,) integers (-1: unlabelled) or class names ("": unlabelled); or a path, as
    decode.images takes it (a folder of class folders, a manifest, an .npz; idx or .npy images with the labels'
    path). Evidence you bring (docs: "Bring your own evidence"): pred_probs (N, K) out-of-sample class
    probabilities, features (N, D) embeddings, each an array or a file as external.pred_probs / .features take it;
    model: a TorchScript or ONNX file, or "torchvision:NAME". params: {"train": {"n_models": 5}, ...} for the
    external, group, train and aggregate sections. Raises InputError for bad input or parameters."""
    pictures, label_ids, class_names, paths = read_data(images, labels)
    check_options(params, time_budget_s)
    built = build_sections(params or {}, IN_MEMORY, "params")
    brought = brought_evidence(
        built["external"], pictures, label_ids, class_names, pred_probs=pred_probs, features=features, model=model
    )
    run = find_suspects(
        pictures,
        label_ids,
        group_params=built["group"],
        train_params=built["train"],
        aggregate_params=built["aggregate"],
        budget=Budget().within(time_budget_s),
        external=brought,
    )
    d = run.decisions
    return Issues(
        flagged=d.flagged,
        reason=d.reason,
        outlier=d.outlier,
        outlier_score=d.outlier_score,
        odd=d.odd,
        given=label_ids,
        suggested=d.suggested,
        suggested_prob=d.suggested_prob,
        score=d.score,
        wrong_prob=d.wrong_prob,
        class_prob=d.class_prob,
        group=run.groups.group,
        class_names=class_names,
        prob=run.oob.prob,
        embedding=run.oob.class_sim,
        paths=paths,
        decided_by=d.decided_by,
        note="; ".join(note for note in (brought.note, d.note) if note),
    )


def read_data(images, labels) -> tuple[np.ndarray, np.ndarray, list[str] | None, list[str] | None]:
    """(images, label ids, class names, paths) from arrays or a path, checked as decode checks them."""
    if isinstance(images, (str, os.PathLike)):
        if labels is None and kind_of(images) in ("idx", "npy"):
            raise InputError(str(images), "idx and .npy images need their labels' path as labels")
        data = read_dataset(DecodeParams(str(images), None if labels is None else str(labels), num_classes=None))
        return data.images, data.labels, data.class_names, data.paths
    if labels is None:
        raise InputError("labels", "arrays of images need their labels")
    pictures = as_images(images, "images")
    label_ids, class_names = as_labels(labels, "labels")
    check_dataset(pictures, label_ids, None if class_names else MAX_CLASSES, "images", "labels")
    return pictures, label_ids, class_names, None


def check_options(params, time_budget_s) -> None:
    if params is not None and not isinstance(params, dict):
        raise InputError(
            "params", f"must be a dict of sections, e.g. {{'train': {{'n_models': 5}}}}, not {type(params).__name__}"
        )
    if time_budget_s is not None and (
        isinstance(time_budget_s, bool)
        or not isinstance(time_budget_s, (int, float))
        or not math.isfinite(time_budget_s)
        or time_budget_s <= 0
    ):
        raise InputError("time_budget_s", f"must be a positive number of seconds or None, not {time_budget_s!r}")


def brought_evidence(params: ExternalParams, images, labels, class_names, *, pred_probs, features, model) -> External:
    """The evidence given to find_issues, as arrays or files (paths go through the external stage's readers,
    arrays through its checks)."""
    n_classes = class_count(labels, class_names)
    if features is not None and model is not None:
        raise InputError("features", "give features or a model that makes them, not both")
    as_files = {
        name: str(value)
        for name, value in (("pred_probs", pred_probs), ("features", features), ("model", model))
        if isinstance(value, (str, os.PathLike))
    }
    external = read_external(replace(params, **as_files), images, labels, class_names, n_classes)
    if pred_probs is not None and "pred_probs" not in as_files:
        probs = checked_probs(
            np.asarray(pred_probs), "pred_probs", n=len(labels), n_classes=n_classes, normalise=params.normalise
        )
        external = replace(external, pred_probs=probs, note=in_sample_note(probs, labels, "pred_probs"))
    if features is not None and "features" not in as_files:
        external = replace(external, features=checked_features(np.asarray(features), "features", len(labels)))
    return external


__all__ = ["Issues", "find_issues"]
