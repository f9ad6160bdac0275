"""The tool as one Python call: numpy images and labels in, a decision for every sample out (README, "Python API").

    from pipeline.api import find_issues
    result = find_issues(images, labels)          # images (N, H, W) or (N, H, W, C), uint8 or float in [0, 1]
    result.flagged.nonzero()[0]                   # the suspected samples

It runs the pipeline's stages in memory, in order (group -> train -> aggregate), with the defaults params.yaml
mirrors; `params` overrides any of them by section, as params.yaml would. No files are read or written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.params import build_sections
from pipeline.runner import find_suspects
from stages.aggregate import AggregateParams
from stages.budget import Budget
from stages.decode import check_dataset
from stages.decode_readers import as_images, as_labels
from stages.group import GroupParams
from stages.train import TrainParams

SECTIONS = {"group": GroupParams, "train": TrainParams, "aggregate": AggregateParams}


@dataclass
class Issues:
    """Per sample (N rows each), and what decided. Labels are ids; class_names names them where given."""

    flagged: np.ndarray  # bool (N,): suspected of carrying a wrong label
    reason: np.ndarray  # str (N,): "twin" (lost its conflicting twin group), "evidence" (no twin), "outlier",
    #                     "odd", or ""
    outlier: np.ndarray  # bool (N,): belongs to no class (not a wrong label: remove it rather than relabel it)
    outlier_score: np.ndarray  # float (N,): how unlike every class it looks (nan where nobody scored)
    odd: np.ndarray  # str (N,): broken images: "blank", "noise", "saturated", or ""
    given: np.ndarray  # int64 (N,)
    suggested: np.ndarray  # int64 (N,): the label the evidence favours
    score: np.ndarray  # float (N,): mean out-of-bag probability of the given label (nan where nobody scored)
    group: np.ndarray  # int64 (N,): twin group id (samples that are copies of each other share one)
    class_names: list[str] | None
    evidence: str  # "members" (the trained ensemble) or "neighbours" (members too weak)
    note: str  # why nothing, or only weaker evidence, could decide (empty when all is well)

    def ranked(self) -> np.ndarray:
        """Indices of the flagged samples, most certain first (lowest probability of their own label)."""
        flagged = np.flatnonzero(self.flagged)
        return flagged[np.argsort(np.nan_to_num(self.score[flagged], nan=1.0), kind="stable")]


def find_issues(images, labels, *, params: dict[str, dict[str, Any]] | None = None,
                time_budget_s: float | None = None) -> Issues:
    """Group, train and decide on arrays. images: (N, H, W), (N, H, W, C) or channels-first (N, C, H, W),
    uint8 or float in [0, 1]; labels: (N,) integers or class names. params: {"train": {"n_models": 5}, ...}
    for the group, train and aggregate sections. Raises InputError for bad input or parameters."""
    pictures = as_images(images, "images")
    label_ids, class_names = as_labels(labels, "labels")
    check_dataset(pictures, label_ids, None, "images", "labels")
    built = build_sections(params or {}, SECTIONS, "params")
    budget = Budget().within(time_budget_s)
    run = find_suspects(pictures, label_ids, built["group"], built["train"], built["aggregate"], budget)
    d = run.decisions
    return Issues(d.flagged, d.reason, d.outlier, d.outlier_score, d.odd, label_ids, d.suggested, d.score,
                  run.groups.group, class_names, d.evidence, d.note)


__all__ = ["Issues", "find_issues"]
