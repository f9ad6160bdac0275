"""Acting on the results: what a cleaned copy of the data set changes (docs: "Export").

plan_changes turns the aggregate stage's decisions, or a person's choices from the review page, into one action per
sample; pipeline/steps.py's export writes the cleaned copy and changes.csv from it. The original is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stages.errors import InputError
from stages.labels import UNLABELLED
from stages.params import Params, param

if TYPE_CHECKING:
    from stages.aggregate import Decisions

CHANGES_HEADER = ["index", "path", "given", "new_label", "action", "reason", "probability"]  # changes.csv


@dataclass(frozen=True)
class ExportOptions(Params):
    """What the cleaned copy changes, where a person's choices (the review page's CSV) are not applied instead."""

    relabel: bool = param(True, "Give wrong labels their suggested label in the cleaned copy.")
    drop_outliers: bool = param(True, "Leave outliers out of it.")
    drop_odd: bool = param(True, "Leave odd (broken) images out of it.")
    label_unlabelled: bool = param(
        False, "Give unlabelled samples their suggested label in it (else they stay unlabelled)."
    )


@dataclass
class Changes:
    """One action per sample (N rows): the cleaned data set is the kept samples with their new labels."""

    keep: np.ndarray  # bool (N,)
    new_label: np.ndarray  # int64 (N,): the label in the cleaned copy (the given one where unchanged)
    action: np.ndarray  # str (N,): "relabel", "label" (an unlabelled sample), "remove" or "" (unchanged)
    reason: np.ndarray  # str (N,): why: the decision's reason ("twin", "wrong_label", "outlier", "odd") or "review"

    def changed(self) -> np.ndarray:
        return np.flatnonzero(self.action != "")


def plan_changes(labels: np.ndarray, decisions: Decisions, options: ExportOptions = ExportOptions()) -> Changes:
    """The tool's own decisions: wrong labels relabelled as suggested, unlabelled samples labelled as suggested (with
    label_unlabelled), outliers and odd images left out."""
    n = len(labels)
    keep, new_label = np.ones(n, bool), labels.astype(np.int64).copy()
    action, reason = np.full(n, "", dtype="<U7"), np.full(n, "", dtype="<U11")
    if options.relabel:
        wrong = decisions.flagged & (decisions.suggested != labels)
        new_label[wrong] = decisions.suggested[wrong]
        action[wrong], reason[wrong] = "relabel", decisions.reason[wrong]
    if options.label_unlabelled:
        guessed = (labels == UNLABELLED) & (decisions.suggested != UNLABELLED)
        new_label[guessed] = decisions.suggested[guessed]
        action[guessed], reason[guessed] = "label", "suggested"
    for drop, mask, why in (
        (options.drop_outliers, decisions.outlier & ~decisions.flagged, "outlier"),
        (options.drop_odd, decisions.odd != "", "odd"),
    ):
        if drop:
            keep[mask], new_label[mask], action[mask], reason[mask] = False, labels[mask], "remove", why
    return Changes(keep, new_label, action, reason)


def apply_choices(
    labels: np.ndarray, rows: list[dict[str, str]], class_names: list[str] | None, source: str
) -> Changes:
    """A person's choices (rows of the review page's CSV: index, choice, new_label; see stages/review.py):
    accept or relabel gives new_label, remove leaves the sample out, keep changes nothing; samples without a row
    are unchanged. InputError names the row that is wrong."""
    n = len(labels)
    keep, new_label = np.ones(n, bool), labels.astype(np.int64).copy()
    action, reason = np.full(n, "", dtype="<U7"), np.full(n, "", dtype="<U11")
    ids = {name: k for k, name in enumerate(class_names or [])}
    for line, row in enumerate(rows, start=2):
        try:
            index, choice = int(row["index"]), row["choice"]
        except (KeyError, TypeError, ValueError):
            raise InputError(source, f"row {line}: needs an integer index and a choice") from None
        if not 0 <= index < n:
            raise InputError(source, f"row {line}: index {index} is not a sample of this data set (0..{n - 1})")
        if choice == "remove":
            keep[index], action[index], reason[index] = False, "remove", "review"
        elif choice in ("accept", "relabel"):
            name = (row.get("new_label") or "").strip()
            label = ids.get(name, int(name) if name.isascii() and name.isdigit() else None)
            if label is None or not 0 <= label < max(len(ids), int(labels.max()) + 1):
                raise InputError(source, f"row {line}: new_label {name!r} is not a class of this data set")
            if label != labels[index]:
                new_label[index], action[index], reason[index] = label, "relabel", "review"
        elif choice != "keep":
            raise InputError(source, f"row {line}: choice {choice!r} is not accept, keep, relabel or remove")
    return Changes(keep, new_label, action, reason)
