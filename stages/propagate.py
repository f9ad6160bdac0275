"""Label propagation over similar pictures: conflicting copies pool what their similar groups believe, and
unlabelled samples take on their neighbours' beliefs (docs: "How it works: aggregate")."""

from __future__ import annotations

import numpy as np

from stages.labels import UNLABELLED

POOL_WEIGHT = 1.0  # how much a conflicting group weighs its similar groups' belief against its own evidence ...
POOL_PRIOR = 0.1  # ... smoothed by this much of a uniform belief, so no label is ruled out by the neighbours alone
POOL_ROUNDS = 20  # rounds of propagation
SPREAD = 0.5  # an unlabelled sample's belief: this much its similar groups', the rest its own members' evidence


def pool_similar(
    evidence: np.ndarray, labels: np.ndarray, group: np.ndarray, open_question: np.ndarray, similar: np.ndarray
) -> np.ndarray:
    """The conflicting groups' evidence (float (G, K), -inf for labels absent) plus POOL_WEIGHT times the log of
    what their similar groups believe, iterated as label propagation
    (docs: "How it works: Pooling similar pictures"): where copies with conflicting labels are the rule, the members
    learn little from them, and similar pictures carry the same label more often than not. A group no twin
    contradicts believes its own label; a conflicting one the softmax of its evidence, which the pooling updates
    POOL_ROUNDS times. Only labels present in a group can win."""
    n_groups, n_classes = evidence.shape
    conflicting = np.isfinite(evidence).any(1)
    settled = np.zeros((n_groups, n_classes))
    agreed = (labels != UNLABELLED) & ~open_question & ~conflicting[group]
    settled[group[agreed], labels[agreed]] = 1.0
    settled /= np.maximum(settled.sum(1, keepdims=True), 1)
    neighbours = np.full((n_groups, similar.shape[1]), -1)
    neighbours[group] = similar

    def believed(e: np.ndarray) -> np.ndarray:
        top = np.where(conflicting, np.max(e, axis=1), 0.0)[:, None]
        b = np.exp(e - top, where=np.isfinite(e), out=np.zeros_like(e))
        return np.where(conflicting[:, None], b / np.maximum(b.sum(1, keepdims=True), 1e-300), settled)

    belief, pooled = believed(evidence), evidence
    for _ in range(POOL_ROUNDS):
        around = neighbours_mean(belief, neighbours)
        pooled = np.where(
            conflicting[:, None], evidence + POOL_WEIGHT * np.log(around + POOL_PRIOR / n_classes), evidence
        )
        belief = believed(pooled)
    return pooled


def spread_to_unlabelled(
    calibrated_prob: np.ndarray, settled: np.ndarray, labels: np.ndarray, group: np.ndarray, similar: np.ndarray
) -> np.ndarray:
    """float (N, K): each unlabelled sample's belief, SPREAD of it the mean belief of its similar groups (train.
    similar_groups) and the rest its own calibrated probabilities, iterated POOL_ROUNDS times as label propagation
    (Zhou et al., 2004); a labelled sample believes `settled` (its given label, or its twin group's winner). Members
    trained on a few labelled pictures misread many; pictures that look alike mostly share a class
    (docs: "How it works: Unlabelled samples"). Rows of unscored unlabelled samples start uniform."""
    n, n_classes = calibrated_prob.shape
    unlabelled = labels == UNLABELLED
    own = np.where(np.isfinite(calibrated_prob), calibrated_prob, 1.0 / n_classes)
    known = ~unlabelled & (settled >= 0)
    own[known] = np.eye(n_classes)[settled[known]]
    n_groups = int(group.max()) + 1
    size = np.bincount(group, minlength=n_groups)[:, None]
    spread = (unlabelled & (similar >= 0).any(1))[:, None]
    belief = own.copy()
    for _ in range(POOL_ROUNDS):
        by_group = np.zeros((n_groups, n_classes))
        np.add.at(by_group, group, belief)
        by_group /= np.maximum(size, 1)
        belief = np.where(spread, (1 - SPREAD) * own + SPREAD * neighbours_mean(by_group, similar), own)
    return belief


def neighbours_mean(belief: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """float (rows, K): per row of neighbours (int (rows, k), group ids, -1 for none), the mean of those groups'
    rows of belief (float (G, K)); zeros where a row has no neighbour."""
    found = neighbours >= 0
    return (belief[np.maximum(neighbours, 0)] * found[..., None]).sum(1) / np.maximum(found.sum(1), 1)[:, None]


def twins_label(group: np.ndarray, labels: np.ndarray, otherwise: np.ndarray) -> np.ndarray:
    """int (N,): per sample, the label its group's labelled members settled on (the most common; ties to the
    smaller id), or `otherwise` where the group holds no labelled sample: an unlabelled copy of a labelled picture
    takes its twins' label, surer evidence than any model's."""
    known = labels != UNLABELLED
    if not known.any():
        return otherwise
    n_classes = int(labels[known].max()) + 1
    counts = np.zeros((int(group.max()) + 1, n_classes), np.int64)
    np.add.at(counts, (group[known], labels[known]), 1)
    settled = np.where(counts.any(1), counts.argmax(1), -1)[group]
    return np.where(settled >= 0, settled, otherwise)
