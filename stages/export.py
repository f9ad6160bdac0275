"""Acting on the results: what a cleaned copy of the data set changes (docs: "Export").

plan_changes turns the aggregate stage's decisions, or a person's choices from the review page, into one action per
sample; pipeline/steps.py's export writes the cleaned copy and changes.csv from it. The original is never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stages.errors import InputError
from stages.labels import UNLABELLED
from stages.params import Params, param
from stages.tables import plain_cell

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
    labels: np.ndarray,
    rows: list[dict[str, str]],
    class_names: list[str] | None,
    source: str,
    *,
    paths: list[str] | None = None,
) -> Changes:
    """A person's choices (rows of the review page's CSV: index, path, choice, new_label; see stages/review.py):
    accept or relabel gives new_label, remove leaves the sample out, keep changes nothing; samples without a row
    are unchanged. A row names its sample twice, by index and by path, and both must agree: `paths` are the data's
    source files (None: the data came as arrays, and a row's path must be empty), so a file made for other data
    (an image added since, another folder) is refused, not applied to whichever samples its indices fall on.
    InputError names the row that is wrong: an index that is not written in digits 0-9 ('٣', '3_1'), a sample
    chosen for twice, a path that is not the sample's."""
    n = len(labels)
    keep, new_label = np.ones(n, bool), labels.astype(np.int64).copy()
    action, reason = np.full(n, "", dtype="<U7"), np.full(n, "", dtype="<U11")
    ids = {name: k for k, name in enumerate(class_names or [])}
    chosen: dict[int, int] = {}  # sample -> the row that chose for it
    for line, row in enumerate(rows, start=2):
        index = row_index(row, line, n, source)
        if index in chosen:
            raise InputError(source, f"rows {chosen[index]} and {line} both choose for sample {index}: keep one")
        chosen[index] = line
        check_path(row, index, paths, line, source)
        choice = row.get("choice")
        if choice == "remove":
            keep[index], action[index], reason[index] = False, "remove", "review"
        elif choice in ("accept", "relabel"):
            label = label_id(row.get("new_label") or "", ids, max(len(ids), int(labels.max()) + 1))
            if label is None:
                raise InputError(
                    source, f"row {line}: new_label {row.get('new_label')!r} is not a class of this data set"
                )
            if label != labels[index]:
                new_label[index], action[index], reason[index] = label, "relabel", "review"
        elif choice != "keep":
            raise InputError(source, f"row {line}: choice {choice!r} is not accept, keep, relabel or remove")
    return Changes(keep, new_label, action, reason)


def row_index(row: dict[str, str], line: int, n: int, source: str) -> int:
    """A choices row's sample index: ASCII digits only (int() would read '٣' as 3 and '3_1' as 31), in 0..n-1."""
    text = row.get("index")
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]+", text.strip()):
        raise InputError(source, f"row {line}: index {text!r} is not a sample number (digits 0-9)")
    index = int(text)
    if not index < n:
        raise InputError(source, f"row {line}: index {index} is not a sample of this data set (0..{n - 1})")
    return index


def check_path(row: dict[str, str], index: int, paths: list[str] | None, line: int, source: str) -> None:
    """InputError unless the row's path is sample `index`'s source file (empty where the data have no files). The
    path may come back neutralised for spreadsheets (stages.tables.cell)."""
    given = row.get("path")
    wanted = paths[index] if paths else ""
    if given is None and wanted:
        raise InputError(source, f"row {line}: has no path, so sample {index} cannot be told from another")
    if given is not None and wanted not in (given, plain_cell(given)):
        raise InputError(
            source,
            f"row {line}: sample {index} is {wanted or 'no file'}, not {given!r}: the choices were made for other "
            f"data (or before files were added or removed); review this run's page again",
        )


def label_id(name: str, ids: dict[str, int], n_classes: int) -> int | None:
    """A new_label as a class id: a class name (as written, or as cell wrote it), or a class number 0..n-1."""
    for text in (name, plain_cell(name), name.strip()):
        if text in ids:
            return ids[text]
    text = name.strip()
    number = int(text) if re.fullmatch(r"[0-9]+", text) else None
    return number if number is not None and number < n_classes else None
