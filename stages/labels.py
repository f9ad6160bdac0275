"""What the labels say, shared by the stages: how many classes there are, a label's name, which samples carry none
(UNLABELLED), and which twin groups disagree on their label (the open questions no member trains on)."""

from __future__ import annotations

import numpy as np

UNLABELLED = -1  # the label id of a sample that carries no label: it trains no member, every member scores it


def class_count(labels: np.ndarray, class_names: list[str] | None = None) -> int:
    """The number of classes K: labels are 0..K-1, and a data set that names its classes may name some no sample
    carries. Every per-class array of the stages (probabilities, votes, counts) has K columns."""
    return max(int(labels.max()) + 1 if len(labels) else 0, len(class_names or []))


def class_name(label: int, class_names: list[str] | None) -> str:
    """A label as its class name where the data name their classes, else as its number."""
    label = int(label)
    if label == UNLABELLED:
        return "unlabelled"
    return class_names[label] if class_names and 0 <= label < len(class_names) else str(label)


def label_cell(label: int, class_names: list[str] | None) -> str:
    """A label as a manifest or results table writes it: class_name, and empty for an unlabelled sample (as an
    empty manifest label reads back)."""
    return "" if int(label) == UNLABELLED else class_name(label, class_names)


def conflicting_groups(group: np.ndarray, labels: np.ndarray, keep_out: np.ndarray | None = None) -> np.ndarray:
    """Boolean per group id: do its labelled members (those not kept out, bool (N,)) carry more than one label?"""
    n_groups = int(group.max()) + 1 if len(group) else 0
    counted = labels != UNLABELLED
    if keep_out is not None:
        counted &= ~np.asarray(keep_out, bool)
    first = np.full(n_groups, -1)
    first[group[counted][::-1]] = labels[counted][::-1]  # any one counted member's label per group
    disagree = counted & (labels != first[group])
    return np.bincount(group, weights=disagree, minlength=n_groups) > 0


def open_questions(group: np.ndarray, labels: np.ndarray, keep_out: np.ndarray | None = None) -> np.ndarray:
    """bool (N,): the samples of conflicting twin groups (conflicting_groups), those kept out (the group stage's
    odd images) excepted. They never train a member (unless conflicts are the rule: train.trains_through_conflicts),
    every member scores them, and the aggregate stage's twin rule decides them. An unlabelled twin asks nothing."""
    out = conflicting_groups(group, labels, keep_out)[group] & (labels != UNLABELLED)
    return out if keep_out is None else out & ~np.asarray(keep_out, bool)


def group_samples(group: np.ndarray) -> list[np.ndarray]:
    """The sample indices of each group, ascending within each, groups in id order."""
    order = np.argsort(group, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(group[order])) + 1)
