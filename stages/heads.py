"""Heads on the embeddings a user brings (docs: "Bring your own evidence"): cheap classifiers fitted on the features
in the members' own folds (train.plan_members), so every twin group is on one side: a head never scores a sample
whose copy it was fitted on. With random folds an evil twin's copy sits in the training fold, the head learns two
labels for one picture and cannot tell which is wrong. Heads take seconds where members take minutes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from stages.member import STRANGER_K

if TYPE_CHECKING:
    from stages.train import TrainParams

HEADS = ("ridge", "logistic", "knn")  # train.head's choices
RIDGE_SHARPNESS = 10.0  # a ridge head's probabilities: softmax(RIDGE_SHARPNESS x its outputs); calibrated downstream
KNN_K = 10  # a knn head's class evidence: the similarity-weighted votes of this many nearest training samples
KNN_SHARPNESS = 20.0  # ... turned into probabilities as softmax(KNN_SHARPNESS x share of the votes)
LOGISTIC_STEPS = 100  # L-BFGS iterations of a logistic head


def unit_rows(features: np.ndarray) -> np.ndarray:
    """float32 (N, D): each row centred on the mean row and scaled to unit length (cosine similarity by dot)."""
    x = features.astype(np.float32) - features.mean(0, dtype=np.float64).astype(np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def logistic_probs(
    x: np.ndarray, labels: np.ndarray, train: np.ndarray, scored: np.ndarray, *, n_classes: int, weight_decay: float
) -> np.ndarray:
    """float64 (len(scored), K): a multinomial logistic regression fitted on x[train] (L-BFGS, L2 penalty
    weight_decay), scoring x[scored]."""
    import torch

    xs, ys = torch.from_numpy(x[train]), torch.from_numpy(labels[train])
    weight = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=LOGISTIC_STEPS, line_search_fn="strong_wolfe")

    def loss():
        optimiser.zero_grad()
        value = torch.nn.functional.cross_entropy(xs @ weight + bias, ys) + weight_decay * (weight * weight).sum()
        value.backward()
        return value

    optimiser.step(loss)
    with torch.no_grad():
        return torch.softmax(torch.from_numpy(x[scored]) @ weight + bias, 1).double().numpy()


class Ridge:
    """Ridge regression on one-hot targets over unit_rows features, for many folds of one set of rows: the normal
    equations of all of `rows` are summed once, and each fold's are those less its left-out rows' (a D x D system
    per fold, solved in closed form). As accurate as a logistic regression on good embeddings at a fraction of the
    cost; softmax(RIDGE_SHARPNESS x its outputs) are its probabilities, which the aggregate stage calibrates."""

    def __init__(self, x: np.ndarray, labels: np.ndarray, rows: np.ndarray, *, n_classes: int, penalty: float):
        self.x = np.c_[x, np.ones(len(x), np.float32)].astype(np.float64)
        self.targets = np.eye(n_classes)[np.where(labels >= 0, labels, 0)]
        self.rows, self.penalty = rows, penalty
        self.gram = self.x[rows].T @ self.x[rows]
        self.moment = self.x[rows].T @ self.targets[rows]

    def probs(self, train: np.ndarray, scored: np.ndarray) -> np.ndarray:
        """float64 (len(scored), K) from the ridge fitted on train (a subset of rows)."""
        out = np.setdiff1d(self.rows, train, assume_unique=True)
        gram = self.gram - self.x[out].T @ self.x[out]
        gram[np.diag_indices(self.x.shape[1] - 1)] += self.penalty * len(train)
        weight = np.linalg.solve(gram, self.moment - self.x[out].T @ self.targets[out])
        z = RIDGE_SHARPNESS * (self.x[scored] @ weight)
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)


def ridge_probs(
    x: np.ndarray, labels: np.ndarray, train: np.ndarray, scored: np.ndarray, *, n_classes: int, penalty: float
) -> np.ndarray:
    """float64 (len(scored), K): one ridge head (Ridge) fitted on x[train], scoring x[scored]."""
    return Ridge(x, labels, train, n_classes=n_classes, penalty=penalty).probs(train, scored)


def knn_probs(
    x: np.ndarray, labels: np.ndarray, train: np.ndarray, scored: np.ndarray, *, n_classes: int
) -> np.ndarray:
    """float64 (len(scored), K): each scored sample's KNN_K most similar training samples (cosine) vote for their
    labels, weighted by similarity; softmax(KNN_SHARPNESS x each class's share)."""
    k = min(KNN_K, len(train))
    out = np.empty((len(scored), n_classes))
    for s0 in range(0, len(scored), 1024):
        similarity = x[scored[s0 : s0 + 1024]] @ x[train].T
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weight = np.maximum(np.take_along_axis(similarity, nearest, 1), 0) + 1e-6
        votes = np.zeros((len(nearest), n_classes))
        np.add.at(votes, (np.arange(len(nearest))[:, None], labels[train][nearest]), weight)
        z = KNN_SHARPNESS * votes / votes.sum(1, keepdims=True)
        out[s0 : s0 + 1024] = np.exp(z - z.max(1, keepdims=True))
    return out / out.sum(1, keepdims=True)


def head_probs(x: np.ndarray, labels: np.ndarray, members, params: TrainParams) -> Iterator[np.ndarray]:
    """Each member's head fitted on x[train] (unit_rows of the features), its probabilities for x[scored] in turn."""
    n_classes = int(labels.max()) + 1
    if params.head == "ridge":
        rows = np.unique(np.concatenate([train for train, _ in members])) if members else np.zeros(0, np.int64)
        system = Ridge(x, labels, rows, n_classes=n_classes, penalty=params.head_penalty)
    for train, scored in members:
        if params.head == "knn":
            yield knn_probs(x, labels, train, scored, n_classes=n_classes)
        elif params.head == "ridge":
            yield system.probs(train, scored)
        else:
            yield logistic_probs(x, labels, train, scored, n_classes=n_classes, weight_decay=params.head_penalty)


def feature_stats_apart(x: np.ndarray, labels: np.ndarray, group: np.ndarray, refs: np.ndarray, *, n_classes: int):
    """(strangeness float (N,), class_sim float (N, K)): what the features say of every sample (member.feature_stats)
    against the reference samples refs, never its own twin group: the mean cosine distance to its STRANGER_K
    nearest, over the median, and the cosine similarity to each class's mean."""
    k = min(STRANGER_K, max(len(refs) - 1, 1))
    distance = np.empty(len(x))
    for start in range(0, len(x), 1024):
        part = np.arange(start, min(start + 1024, len(x)))
        similarity = x[part] @ x[refs].T
        similarity[group[part][:, None] == group[refs][None, :]] = -np.inf
        nearest = -np.partition(-similarity, k - 1, axis=1)[:, :k]
        distance[part] = 1 - nearest.mean(1)
    centres = np.zeros((n_classes, x.shape[1]), np.float32)
    np.add.at(centres, labels[refs], x[refs])
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    return distance / max(float(np.median(distance)), 1e-6), (x @ centres.T).astype(np.float64)
