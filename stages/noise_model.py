"""The noise model: how sure the members are (a calibration temperature) and how many labels are wrong (an
estimated share, and counts per class), read from the labels the evidence scores (docs: "How it works: aggregate")."""

from __future__ import annotations

from typing import NamedTuple

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


class Flips(NamedTuple):
    """Per sample, how likely its given label is under each story (docs: "How it works: aggregate")."""

    right: np.ndarray  # float (N,): the label is right: q[label]
    plausible: np.ndarray  # float (N,): it was moved to a class the sample could pass for (a 4 written like a 9 filed
    #                        as a 9): sum over the other classes c of q_c q_label / (1 - q_c)
    anywhere: np.ndarray  # float (N,): it was moved to any other class alike: (1 - q_label) / (K - 1)


def flips(q: np.ndarray, labels: np.ndarray) -> Flips:
    """The likelihoods of each sample's given label (Flips) under class probabilities q (N, K)."""
    rows = np.arange(len(labels))
    right = q[rows, labels]
    odds = q / np.maximum(1 - q, 1e-12)
    return Flips(right, right * (odds.sum(1) - odds[rows, labels]), (1 - right) / max(q.shape[1] - 1, 1))


def noise_shares(f: Flips, *, prior_rate: float, prior_weight: float) -> tuple[float, float]:
    """(plausible, anywhere): the shares of labels moved to a plausible class and to any class that explain the
    given labels best (EM), their sum with a Beta prior worth prior_weight samples at prior_rate."""
    plausible, anywhere = prior_rate / 2, prior_rate / 2
    for _ in range(300):
        a, b = plausible * f.plausible, anywhere * f.anywhere
        total = np.maximum(a + b + (1 - plausible - anywhere) * f.right, 1e-300)
        moved, spread = (a / total).sum(), (b / total).sum()
        wrong = (moved + spread + prior_weight * prior_rate) / (len(f.right) + prior_weight)
        share = moved / max(moved + spread, 1e-300) if moved + spread > 0 else 0.5
        new = (wrong * share, wrong * (1 - share))
        if abs(new[0] - plausible) + abs(new[1] - anywhere) < 1e-10:
            return new
        plausible, anywhere = new
    return plausible, anywhere


def likelihood(f: Flips, shares: tuple[float, float]) -> np.ndarray:
    """float (N,): the probability of each given label with those shares of labels moved."""
    plausible, anywhere = shares
    return plausible * f.plausible + anywhere * f.anywhere + (1 - plausible - anywhere) * f.right


def wrong_posterior(f: Flips, shares: tuple[float, float]) -> np.ndarray:
    """float (N,): the probability that each given label is wrong, with those shares of labels moved."""
    plausible, anywhere = shares
    return (plausible * f.plausible + anywhere * f.anywhere) / np.maximum(likelihood(f, shares), 1e-300)


def fit_noise(log_prob: np.ndarray, labels: np.ndarray) -> tuple[float, tuple[float, float]]:
    """(T, shares): the temperature under which softmax(log_prob / T), with shares of labels moved to a plausible
    class and to any class (noise_shares, no prior), explains the given labels best (docs: "How it works:
    aggregate"). Natural label errors are mostly plausible ones, and random ones happen too. The temperature
    calibrates the evidence on the labels themselves, so the shares are what the labels contradict beyond the
    evidence's own doubt: ambiguous classes (shirts and T-shirts) do not pass for wrong labels, and clean data give
    shares near zero."""
    if len(labels) == 0 or log_prob.shape[1] < 2:
        return 1.0, (0.0, 0.0)

    def fit(k: int) -> tuple[float, float, tuple[float, float]]:
        f = flips(softmax(log_prob / TEMPERATURES[k]), labels)
        shares = noise_shares(f, prior_rate=0.05, prior_weight=0.0)
        return float(np.log(likelihood(f, shares) + 1e-300).sum()), float(TEMPERATURES[k]), shares

    coarse = {k: fit(k) for k in range(0, len(TEMPERATURES), 4)}  # every 4th, then the best one's neighbours
    best = max(coarse, key=lambda k: coarse[k][0])
    fine = coarse | {k: fit(k) for k in range(max(best - 3, 0), min(best + 4, len(TEMPERATURES))) if k not in coarse}
    _, temperature, shares = max(fine.values(), key=lambda fitted: fitted[0])
    return temperature, shares


def share_interval(f: Flips, shares: tuple[float, float]) -> tuple[float, float]:
    """The 95% profile-likelihood interval of the share of wrong labels (both kinds, in their fitted proportion):
    the shares whose log-likelihood lies within 1.92 of its best (a chi-squared test of one degree of freedom)."""
    total = sum(shares)
    mix = shares[0] / total if total > 0 else 0.5
    grid = np.unique(np.r_[np.geomspace(1e-6, 0.5, 400), total])
    fits = np.array([np.log(likelihood(f, (r * mix, r * (1 - mix))) + 1e-300).sum() for r in grid])
    inside = grid[fits >= fits.max() - 1.92]
    return float(min(inside.min(), total)), float(max(inside.max(), total))


def expected_f1_cut(wrong: np.ndarray) -> int:
    """How many of the samples, most likely wrong first, to flag for the best expected F1, given each one's
    probability of a wrong label: flagging the top k finds sum(top k) of the sum(all) wrong labels expected, F1
    2 sum(top k) / (k + sum(all)); flagging none scores 1 only where no label is wrong, prod(1 - wrong). So clean
    data (every probability small) flag nothing, and a few sure errors flag exactly those."""
    if wrong.size == 0:
        return 0
    ordered = np.sort(wrong)[::-1]
    f1 = 2 * np.cumsum(ordered) / (np.arange(1, wrong.size + 1) + wrong.sum())
    none = float(np.exp(np.log1p(-np.minimum(wrong, 1 - 1e-12)).sum()))
    return int(np.argmax(f1)) + 1 if f1.max() > none else 0
