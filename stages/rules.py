"""The decision rules. Each reads the evidence and returns its verdict: which samples, why, and with what label
and probability (Verdict); stages/aggregate.py: decide applies them in order (docs: "How it works: aggregate")."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from stages.labels import group_samples
from stages.noise_model import (
    expected_f1_cut,
    fit_noise,
    flips,
    label_margin,
    noise_shares,
    pick_threshold,
    share_interval,
    softmax,
    wrong_label_counts,
    wrong_posterior,
)
from stages.propagate import pool_similar

if TYPE_CHECKING:
    from stages.aggregate import AggregateParams
    from stages.train import TrainResult

MAX_NOISE_RATE = 0.5  # past this estimated share of wrong labels, flags without a twin stop (see decide)
CLAIMED = 0.375  # no outlier: a sample whose two likeliest classes hold this much of the way from chance to all
PIXEL_WEIGHT = 10.0  # where samples are unlabelled, the outlier score adds this many times log(pixel strangeness)


class Case(NamedTuple):
    """What the rules read (stages/aggregate.py: read_case), per sample (N rows) where not said otherwise."""

    labels: np.ndarray  # int (N,): the given labels, UNLABELLED where none
    given: np.ndarray  # int (N,): the same with 0 standing in for UNLABELLED (per-label arrays' column, masked)
    group: np.ndarray  # int (N,): twin group ids
    scored: np.ndarray  # bool (N,): some evidence scored it
    prob: np.ndarray  # float (N, K): the evidence's class probabilities, nan rows where unscored
    log_prob: np.ndarray  # float (N, K): log of the evidence's class probabilities (EPS floor; 0 rows: unscored)
    calibrated_prob: np.ndarray  # float (N, K): softmax(log_prob / temperature), nan rows where unscored
    calibrated: np.ndarray  # float (N,): calibrated probability of the given label (nan: unlabelled or unscored)
    disagreement: np.ndarray  # float (N,): share of the scorers that predicted another label than the given one
    open_question: np.ndarray  # bool (N,): in a conflicting twin group, scored, not an odd image
    alone: np.ndarray  # bool (N,): labelled and scored, in no open question, neither an outlier nor odd
    temperature: float  # the calibration temperature (noise_model.fit_noise_model)
    noise_rate: float  # the estimated share of wrong labels among the samples the noise model was fitted on
    n_classes: int  # the classes some sample carries: those a wrong label can be
    source: str  # what decided: "members", "neighbours", "heads" or "pred_probs" (evidence.choose_evidence)
    through_conflicts: bool  # did the members train on the conflicting groups too?
    similar: np.ndarray  # int (N, k): train.similar_groups (no rows where not computed)


class Verdict(NamedTuple):
    """One rule's verdict, per sample (N rows)."""

    reason: str  # the reason code of the samples it flags ("twin", "wrong_label", "outlier", "odd")
    flagged: np.ndarray  # bool (N,)
    suggested: np.ndarray  # int (N,): the label it suggests for them, -1 where it suggests none
    wrong_prob: np.ndarray  # float (N,): the probability it gives their label of being wrong, nan where it gives none


def verdict(reason: str, flagged: np.ndarray, suggested=None, wrong_prob=None) -> Verdict:
    n = len(flagged)
    return Verdict(
        reason,
        flagged,
        np.full(n, -1) if suggested is None else suggested,
        np.full(n, np.nan) if wrong_prob is None else wrong_prob,
    )


def outlier_scores(mean_prob: np.ndarray, strangeness: np.ndarray) -> np.ndarray:
    """How unlike every class each sample looks (docs: "How it works: Outliers"): the log-odds of
    the members' spread over the classes (entropy of the mean out-of-bag probabilities over its largest, log K)
    plus the log of its strangeness (train.feature_evidence, averaged over the members that scored it). nan where
    unscored."""
    k = mean_prob.shape[1]
    if k < 2:
        return np.full(len(mean_prob), np.nan)
    p = np.clip(mean_prob, 1e-12, 1)
    spread = np.clip(-(p * np.log(p)).sum(1) / np.log(k), 1e-6, 1 - 1e-6)
    return np.log(spread / (1 - spread)) + np.log(np.maximum(strangeness, 1e-6))


def outlier_fence(scores: np.ndarray, spread: float) -> float:
    """A fence read from the data, as in Tukey's rule but scaled by the upper half of the scores only: the upper
    quartile plus `spread` (aggregate.outlier_fence) times (upper quartile - median); inf for too few scores. The
    lower half (samples the members are sure of) says nothing of how far clean samples reach upwards, and its long
    tail on data with confident classes (clothes) made Tukey's interquartile range fence out most strangers."""
    scores = scores[np.isfinite(scores)]
    if scores.size < 8:
        return np.inf
    median, q3 = np.quantile(scores, [0.5, 0.75])
    return float(q3 + spread * (q3 - median))


def outlier_rule(oob: TrainResult, *, odd: np.ndarray, spread: float) -> tuple[np.ndarray, float, np.ndarray]:
    """(outlier_score float (N,), fence, outlier bool (N,)): samples unlike every class (the fence: outlier_fence,
    `spread` its width), read from the members whichever evidence decides the labels, since what they learnt is
    what a stranger is unlike, and where samples are unlabelled from their distance in pixels to the labelled
    pictures too (train.pixel_strangeness). Odd images are neither scored against the fence nor outliers."""
    n = len(odd)
    score, fence = np.full(n, np.nan), np.inf
    by_members = oob.scored
    if by_members.any():
        score[by_members] = outlier_scores(oob.prob[by_members], oob.strangeness[by_members])
        if len(oob.pixel_strangeness) == n:  # samples are unlabelled: how far from the labelled pictures counts too
            score += PIXEL_WEIGHT * np.log(np.maximum(oob.pixel_strangeness, 1e-6))
        fence = outlier_fence(score[by_members & (odd == "")], spread)
    return score, fence, (np.nan_to_num(score, nan=-np.inf) > fence) & (odd == "") & ~claimed(oob.prob)


def claimed(prob: np.ndarray) -> np.ndarray:
    """bool (N,): samples one or two classes claim, a mislabelled or an ambiguous picture however unusual, not a
    stranger (docs: "How it works: Outliers"): the mean probability of their m likeliest classes (m = 2, or 1 of
    2 classes) lies at least CLAIMED of the way from chance (m / K) to certainty. For 10 classes: half of it."""
    k = prob.shape[1]
    if k < 2:
        return np.ones(len(prob), bool)
    m = min(2, k - 1)
    top = np.sort(np.nan_to_num(prob), axis=1)[:, -m:].sum(1)
    return (top - m / k) / (1 - m / k) >= CLAIMED


def twin_rule(case: Case) -> Verdict:
    """Twin conflicts: every open question goes to the label its evidence favours (twin_votes), and each sample of
    it with another label is flagged, with that label suggested and the probability that its own label loses."""
    similar = case.similar if case.through_conflicts else None
    losers, winner, doubt = twin_votes(
        case.labels, case.group, case.log_prob, case.open_question, temperature=case.temperature, similar=similar
    )
    return verdict("twin", losers, winner, doubt)


def twin_votes(
    labels: np.ndarray,
    group: np.ndarray,
    log_prob: np.ndarray,
    open_question: np.ndarray,
    *,
    temperature: float,
    similar: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(losers bool (N,), winner int (N,), -1 outside the open questions, doubt float (N,), nan outside them: the
    probability that another label than a sample's own wins, the softmax of the labels' evidence): each conflicting
    twin group (open_question: the scored open questions) goes to the label with the strongest evidence, its
    calibrated log mean out-of-bag probability averaged over the group's samples plus the log of how many samples
    carry it; every sample with another label loses (docs: "How it works: Twin conflicts"). With similar (int
    (N, k), train.similar_groups: where conflicts are the rule), each group's evidence also weighs what its most
    similar groups believe (pool_similar)."""
    losers, winner, doubt = np.zeros(len(labels), bool), np.full(len(labels), -1), np.full(len(labels), np.nan)
    n_classes = log_prob.shape[1]
    if not open_question.any() or n_classes == 0:
        return losers, winner, doubt
    n_groups = int(group.max()) + 1
    evidence = np.full((n_groups, n_classes), -np.inf)
    questions = [np.flatnonzero(open_question)[samples] for samples in group_samples(group[open_question])]
    for samples in questions:
        present, counts = np.unique(labels[samples], return_counts=True)
        # Calibrated log-probabilities of the labels present (softmax's normaliser is the same for every label
        # of one member, so it cancels), one row per look at the picture. Each copy is as likely as any other to
        # be the original, whose label is right: the prior of a label is its count in the group. Two evil copies
        # against one original barely move it (log 2), so a clear picture still overrules them; hundreds of
        # identical blanks against a few odd labels outweigh a model that never learnt what a blank is. Being
        # weighed against calibrated evidence, the count counts for more where the samples were overconfident
        # (temperature above 1) and for less where they were timid.
        evidence[group[samples[0]], present] = (log_prob[samples][:, present] / temperature).mean(0) + np.log(counts)
    if similar is not None and len(similar) == len(labels):
        evidence = pool_similar(evidence, labels, group, open_question, similar)
    for samples in questions:
        row = evidence[group[samples[0]]]
        present = np.flatnonzero(np.isfinite(row))
        winner[samples] = present[np.argmax(row[present])]
        losers[samples[labels[samples] != winner[samples]]] = True
        belief = np.exp(row[present] - row[present].max())
        doubt[samples] = 1 - (belief / belief.sum())[np.searchsorted(present, labels[samples])]
    return losers, winner, doubt


class Twinless(NamedTuple):
    """What the rule for samples without a twin found, beside its verdict."""

    verdict: Verdict
    cut: float  # the probability of a wrong label above which samples without a twin were flagged (1: none)
    wrong_by_class: np.ndarray  # float (K,): estimated wrong labels per given class (zeros where not counted)
    estimate: tuple[float, float, float]  # how many labels are wrong among them: the count, and its 5-95% interval
    noise_rate: float  # the share of wrong labels among them the rule estimated
    worth_a_look: np.ndarray  # bool (N,): not flagged, but wrong with at least review_floor probability
    note: str  # why nothing is flagged without a twin, where that is so


def wrong_label_rule(case: Case, params: AggregateParams) -> Twinless:
    """Wrong labels without a conflicting twin: estimate_rule, or with params.twinless "cautious" (the graded run),
    a fixed params.threshold, or evil twins en masse (whose copies the members trained on) cautious_rule."""
    if params.twinless == "cautious" or case.through_conflicts or params.threshold is not None:
        return cautious_rule(case, params)
    return estimate_rule(case, params)


def estimate_rule(case: Case, params: AggregateParams) -> Twinless:
    """How many labels are wrong, and which (docs: "How it works: aggregate"). Each sample's probability of a wrong
    label is its posterior under the confusable noise model, fitted to the samples without a twin (fit_confusable:
    a calibration temperature; then one share of wrong labels, with a prior at params.prior_rate); their sum is the
    estimate of how many are wrong, within the interval of the share (rate_interval). The flags are the likeliest
    wrong labels, where at least min_disagreement of the scorers predicted another class, up to the cut of the best
    expected F1 (expected_f1_cut); the rest at review_floor or above, and the review_share likeliest of
    them, are worth a look (worth_a_look)."""
    n, alone = len(case.labels), case.alone
    rows, nothing = np.flatnonzero(alone), np.zeros(n, bool)
    wrong = np.where(case.open_question | ~alone, np.nan, 1 - case.calibrated)
    if not rows.size or case.source == "neighbours" or not params.flag_without_twin or case.prob.shape[1] < 2:
        rule = verdict("wrong_label", nothing, wrong_prob=1 - case.calibrated)
        return Twinless(rule, 1.0, np.zeros(case.prob.shape[1]), (0.0, 0.0, 0.0), 0.0, nothing, "")
    given = case.given[rows]
    temperature, fitted = fit_noise(case.log_prob[rows], given)
    f = flips(softmax(case.log_prob[rows] / temperature), given)
    shares = noise_shares(f, prior_rate=params.prior_rate, prior_weight=params.prior_weight)
    wrong[rows] = wrong_posterior(f, shares)
    wrong_by_class = np.bincount(given, wrong[rows], case.prob.shape[1])
    low, high = share_interval(f, shares)
    estimate = (float(wrong[rows].sum()), low * rows.size, high * rows.size)
    if sum(fitted) > MAX_NOISE_RATE:
        note = (
            f"the evidence contradicts {sum(fitted):.0%} of the labels: more likely it learnt too little than that "
            f"most labels are wrong, so nothing is flagged without a twin"
        )
        rule = verdict("wrong_label", nothing, wrong_prob=wrong)
        return Twinless(rule, 1.0, wrong_by_class, estimate, sum(fitted), nothing, note)
    against = alone & (np.nan_to_num(case.disagreement) >= params.min_disagreement)
    candidates = np.where(against, np.nan_to_num(wrong), 0.0)
    k = expected_f1_cut(candidates[against])
    flagged = nothing.copy()
    flagged[np.argsort(-candidates, kind="stable")[:k]] = True
    cut = float(candidates[flagged].min()) if k else 1.0
    look = worth_a_look(alone & ~flagged, np.nan_to_num(wrong), floor=params.review_floor, share=params.review_share)
    rule = verdict("wrong_label", flagged, wrong_prob=wrong)
    return Twinless(rule, cut, wrong_by_class, estimate, sum(shares), look, "")


def worth_a_look(unflagged: np.ndarray, wrong: np.ndarray, *, floor: float, share: float) -> np.ndarray:
    """bool (N,): the unflagged samples whose label is wrong with at least `floor` probability, and at least the
    `share` of them (rounded) likeliest wrong whatever their probability, for a person to review next."""
    look = unflagged & (wrong >= floor)
    look[np.argsort(-np.where(unflagged, wrong, -np.inf), kind="stable")[: round(share * unflagged.sum())]] = True
    return look


def cautious_rule(case: Case, params: AggregateParams) -> Twinless:
    """Wrong labels without a conflicting twin, cautiously: by the global rate (rate_rule) and the per-class counts
    (per_class_rule), where twinless_threshold allows flags at all."""
    threshold, allowed, note = twinless_threshold(
        case.noise_rate,
        case.n_classes,
        int(case.alone.sum()),
        params,
        source=case.source,
        through_conflicts=case.through_conflicts,
    )
    strong = rate_rule(
        case.labels,
        case.calibrated,
        case.disagreement,
        case.alone,
        threshold=threshold,
        min_disagreement=params.min_disagreement,
    )
    wrong_by_class = np.zeros(case.log_prob.shape[1])
    if allowed and params.threshold is None and params.per_class_counts:
        by_class, wrong_by_class = per_class_rule(
            case.given,
            case.calibrated_prob,
            case.disagreement,
            case.alone,
            max_threshold=params.max_threshold,
            min_disagreement=params.min_disagreement,
            count_z=params.count_z,
        )
        strong |= by_class
    total = float(wrong_by_class.sum()) if wrong_by_class.any() else case.noise_rate * int(case.alone.sum())
    nothing = np.zeros(len(case.labels), bool)
    rule = verdict("wrong_label", strong, wrong_prob=1 - case.calibrated)
    return Twinless(rule, 1 - threshold, wrong_by_class, (total, total, total), case.noise_rate, nothing, note)


def twinless_threshold(
    noise_rate: float, n_classes: int, n_alone: int, params: AggregateParams, *, source: str, through_conflicts: bool
) -> tuple[float, bool, str]:
    """(threshold on the calibrated probability, whether samples without a twin may be flagged at all, note).
    The threshold is pick_threshold's, or params.threshold; none may be flagged where weak evidence decides, where
    flags are not asked for, or where the fit says more than MAX_NOISE_RATE of the labels are wrong (the members
    more likely learnt too little). The threshold is zero, though flags by the per-class counts may still come,
    where the rate expects fewer than params.min_expected_wrong wrong labels among the n_alone samples."""
    threshold = (
        params.threshold
        if params.threshold is not None
        else pick_threshold(
            noise_rate, n_classes, min_posterior=params.min_posterior, max_threshold=params.max_threshold
        )
    )
    if source == "neighbours" or not params.flag_without_twin:
        return 0.0, False, ""
    if noise_rate > MAX_NOISE_RATE and not through_conflicts and params.threshold is None:
        return (
            0.0,
            False,
            (
                f"the members contradict {noise_rate:.0%} of the labels: more likely they learnt too "
                f"little than that most labels are wrong, so nothing is flagged without a twin"
            ),
        )
    if params.threshold is None and noise_rate * n_alone < params.min_expected_wrong:
        return 0.0, threshold > 0, ""
    return threshold, True, ""


def rate_rule(
    labels: np.ndarray,
    calibrated: np.ndarray,
    disagreement: np.ndarray,
    alone: np.ndarray,
    *,
    threshold: float,
    min_disagreement: float,
) -> np.ndarray:
    """bool (N,): samples without a conflicting twin (alone) flagged on strong evidence: at least min_disagreement
    of their scorers predicted another label and the calibrated probability of their label is below threshold."""
    against = alone & (np.nan_to_num(disagreement) >= min_disagreement)
    return against & (np.nan_to_num(calibrated, nan=1.0) < threshold)


def per_class_rule(
    labels: np.ndarray,
    calibrated_prob: np.ndarray,
    disagreement: np.ndarray,
    alone: np.ndarray,
    *,
    max_threshold: float,
    min_disagreement: float,
    count_z: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(flagged bool (N,), wrong_by_class float (K,)): natural errors, too few for the global rate, and noise that
    flows into one class, which one global rate spreads over all: per given class, as many of its samples as
    wrong_label_counts counts wrong labels in it, scaled down to the lower bound of the total count
    (total - count_z sqrt(total), as for a Poisson count: a count of 1 or 2 on a small set is as likely one odd
    picture as a wrong label), lowest calibrated margin first (the probability of the given label less that of the
    likeliest other: a wrong label is nearly always a plausible class, which the margin sees and the probability of
    the given label alone does not), where min_disagreement of their scorers predicted another label and their
    calibrated probability is below max_threshold."""
    n = len(labels)
    calibrated = calibrated_prob[np.arange(n), labels]
    margin = label_margin(calibrated_prob, labels)
    against = alone & (np.nan_to_num(disagreement) >= min_disagreement)
    rows = np.flatnonzero(alone)
    wrong_by_class = wrong_label_counts(calibrated_prob[rows], labels[rows])
    total = wrong_by_class.sum()
    keep = max(0.0, total - count_z * np.sqrt(total)) / total if total > 0 else 0.0
    flagged = np.zeros(n, bool)
    for c in np.flatnonzero(wrong_by_class * keep >= 0.5):
        of_class = rows[labels[rows] == c]
        lowest = of_class[np.argsort(margin[of_class], kind="stable")[: int(wrong_by_class[c] * keep + 0.5)]]
        flagged[lowest[against[lowest] & (calibrated[lowest] < max_threshold)]] = True
    return flagged, wrong_by_class
