"""Heads on the embeddings a user brings (docs: "Bring your own evidence"): cheap classifiers fitted on the features
in the members' own folds (train.plan_members), so every twin group is on one side: a head never scores a sample
whose copy it was fitted on. With random folds an evil twin's copy sits in the training fold, the head learns two
labels for one picture and cannot tell which is wrong. Heads take seconds where members take minutes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from stages.member import MemberOutput, feature_stats, stranger_refs

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


def ridge_probs(
    x: np.ndarray, labels: np.ndarray, train: np.ndarray, scored: np.ndarray, *, n_classes: int, penalty: float
) -> np.ndarray:
    """float64 (len(scored), K): least squares on one-hot targets with an L2 penalty (ridge regression, solved in
    closed form: one D x D system), scoring x[scored]; softmax(RIDGE_SHARPNESS x outputs). As accurate as a
    logistic regression on good embeddings at a fraction of the cost; the aggregate stage calibrates the scale."""
    xs = np.c_[x[train], np.ones(len(train), np.float32)].astype(np.float64)
    targets = np.eye(n_classes)[labels[train]]
    gram = xs.T @ xs
    gram[np.diag_indices(x.shape[1])] += penalty * len(train)
    weight = np.linalg.solve(gram, xs.T @ targets)
    z = RIDGE_SHARPNESS * (np.c_[x[scored], np.ones(len(scored), np.float32)] @ weight)
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


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


def fit_head(
    x: np.ndarray,
    labels: np.ndarray,
    train: np.ndarray,
    scored: np.ndarray,
    *,
    n_classes: int,
    params: TrainParams,
    seed: int,
) -> MemberOutput:
    """One head fitted on x[train] (unit_rows of the features) scoring x[scored]: its probabilities, and what the
    features say of each scored sample (member.feature_stats: strangeness, class similarities)."""
    import time

    start = time.monotonic()
    if params.head == "knn":
        probs = knn_probs(x, labels, train, scored, n_classes=n_classes)
    elif params.head == "ridge":
        probs = ridge_probs(x, labels, train, scored, n_classes=n_classes, penalty=params.head_penalty)
    else:
        probs = logistic_probs(x, labels, train, scored, n_classes=n_classes, weight_decay=params.head_penalty)
    refs = stranger_refs(train, seed)
    strangeness, class_sim = feature_stats(x[scored], x[refs], labels[refs], n_classes)
    return MemberOutput(probs, np.zeros(0, np.float32), time.monotonic() - start, 0, strangeness, class_sim)
