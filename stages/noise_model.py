"""The noise model: how sure the members are (a calibration temperature) and how many labels are wrong (an
estimated share, and counts per class), read from the labels the evidence scores (docs: "How it works: aggregate")."""

from __future__ import annotations

import numpy as np

EPS = 1e-6  # floor for log-probabilities: one overconfident member must not veto a whole group
TEMPERATURES = np.geomspace(0.05, 50, 120)  # calibration grid; below 1 for underconfident (label-smoothed) members


def fit_noise_model(log_prob: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[float, float]:
    """The temperature T and the share r of wrong labels that together explain the given labels best.

    The model: softmax(log_prob / T) is each image's class distribution; its given label is that class with
    probability 1 - r and any other class alike with probability r. Ensembles trained on little data are
    miscalibrated (overconfident, or underconfident under label smoothing), and only calibrated probabilities give
    a threshold meaning. Fitting T alone to the given labels would let the wrong labels flatten it; fitted with r,
    they are explained by r instead. (A model that is confidently wrong on odd clean images looks like label noise
    to this fit, which is why min_posterior leans cautious.) Returns (T, r); (1, 0) when there is nothing to fit."""
    if len(labels) == 0 or n_classes < 2:
        return 1.0, 0.0
    rows = np.arange(len(labels))
    best = (-np.inf, 1.0, 0.0)
    for temperature in TEMPERATURES:
        p = softmax(log_prob / temperature)[rows, labels]
        rate = estimate_noise_rate(p, n_classes)
        likelihood = np.log((1 - rate) * p + rate * (1 - p) / (n_classes - 1) + 1e-300).sum()
        if likelihood > best[0]:
            best = (likelihood, float(temperature), rate)
    return best[1], best[2]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def estimate_noise_rate(calibrated: np.ndarray, n_classes: int, iterations: int = 500) -> float:
    """The share of wrong labels that best explains the calibrated probabilities of the given labels (EM).

    The model: a label is wrong with probability rate, and then it is any of the other n_classes - 1 classes alike,
    so a wrong label g of an image x turns up with probability (1 - p(g|x)) / (n_classes - 1), a right one with
    p(g|x). On clean data the estimate goes to about zero; planted or natural label errors raise it."""
    p = np.clip(calibrated, 1e-12, 1.0)
    if p.size == 0 or n_classes < 2:
        return 0.0
    wrong_likelihood = (1 - p) / (n_classes - 1)
    rate = 0.05
    for _ in range(iterations):
        posterior = rate * wrong_likelihood / (rate * wrong_likelihood + (1 - rate) * p)
        rate, previous = float(posterior.mean()), rate
        if abs(rate - previous) < 1e-9:
            break
    return rate


def wrong_label_counts(prob: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How many samples of each given class carry a wrong label (float (K,)), by cleanlab's confident joint
    (Northcutt et al., 2021): a sample counts towards the class it is confidently predicted as, confidence
    meaning a probability at least that class's mean over the samples labelled with it; each given class's counts
    are then scaled to its size, and what is counted off its own class is its wrong labels. It sees noise that
    flows from some classes into one (trucks and cats labelled car), which one global rate spreads thin."""
    n_classes = prob.shape[1]
    mine = labels[:, None] == np.arange(n_classes)
    thresholds = np.where(mine.any(0), (prob * mine).sum(0) / np.maximum(mine.sum(0), 1), np.inf)
    confident = prob >= thresholds
    counted = confident.any(1)
    guess = np.where(confident, prob, -1.0).argmax(1)
    joint = np.zeros((n_classes, n_classes))
    np.add.at(joint, (labels[counted], guess[counted]), 1)
    size = np.bincount(labels, minlength=n_classes)
    joint *= np.divide(size, joint.sum(1), out=np.zeros(n_classes), where=joint.sum(1) > 0)[:, None]
    return joint.sum(1) - np.diag(joint)


def pick_threshold(noise_rate: float, n_classes: int, *, min_posterior: float, max_threshold: float) -> float:
    """The calibrated probability below which a label is wrong with posterior probability above min_posterior.

    With a share noise_rate of wrong labels (estimate_noise_rate), a label of calibrated probability p is wrong
    with posterior a(1 - p) / (a(1 - p) + (1 - noise_rate) p), a = noise_rate / (n_classes - 1); that exceeds c
    exactly when p < a / (a + (1 - noise_rate) c / (1 - c)). Clean data give a rate near zero and so a threshold
    near zero: nothing is flagged without reason. Capped at max_threshold."""
    if noise_rate <= 0 or n_classes < 2:
        return 0.0
    a = noise_rate / (n_classes - 1)
    b = (1 - noise_rate) * min_posterior / (1 - min_posterior)
    return min(max_threshold, a / (a + b))


def label_margin(prob: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """float (N,): the probability of each sample's label (prob (N, K)) less that of its likeliest other class."""
    mine = np.eye(prob.shape[1], dtype=bool)[labels]
    return prob[mine] - np.nanmax(np.where(mine, -np.inf, prob), axis=1)
