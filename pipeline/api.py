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
    confidence: np.ndarray  # float (N,): calibrated probability that the given label is wrong (nan: unscored)
    group: np.ndarray  # int64 (N,): twin group id (samples that are copies of each other share one)
    class_names: list[str] | None
    evidence: str  # "members" (the trained ensemble) or "neighbours" (members too weak)
    note: str  # why nothing, or only weaker evidence, could decide (empty when all is well)

    def ranked(self) -> np.ndarray:
        """Indices of the flagged samples, most certain first (highest confidence)."""
        flagged = np.flatnonzero(self.flagged)
        return flagged[np.argsort(-np.nan_to_num(self.confidence[flagged]), kind="stable")]


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
    return Issues(flagged=d.flagged, reason=d.reason, outlier=d.outlier, outlier_score=d.outlier_score, odd=d.odd,
                  given=label_ids, suggested=d.suggested, score=d.score, confidence=d.confidence,
                  group=run.groups.group, class_names=class_names, evidence=d.evidence, note=d.note)


__all__ = ["Issues", "find_issues"]
