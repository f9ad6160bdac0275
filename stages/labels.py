"""What the labels say, shared by the stages: a label's name, and which twin groups disagree on their label."""
from __future__ import annotations

import numpy as np


def class_name(label: int, class_names: list[str] | None) -> str:
    """A label as its class name where the data name their classes, else as its number."""
    label = int(label)
    return class_names[label] if class_names and 0 <= label < len(class_names) else str(label)


def conflicting_groups(group: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Boolean per group id: do its members carry more than one label?"""
    n_groups = int(group.max()) + 1
    first = np.full(n_groups, -1)
    first[group[::-1]] = labels[::-1]  # any one member's label per group
    disagree = labels != first[group]
    return np.bincount(group, weights=disagree, minlength=n_groups) > 0
