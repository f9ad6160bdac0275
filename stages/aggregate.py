"""Stage 4, aggregate: out-of-bag evidence in, a decision for every sample out (README, "How it works: 4.
aggregate").

choose_evidence picks the members' or the nearest neighbours' evidence; decide settles every conflicting twin
group by it and flags other samples only below a threshold read from the data (fit_noise_model, pick_threshold)
or by the per-class counts (wrong_label_counts). result_tables and summary_metrics are what the results folder
and metrics.json hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from stages.artifact import Artifact, Field
from stages.labels import UNLABELLED, class_count, class_name, conflicting_groups, label_cell
from stages.params import Params, param

if TYPE_CHECKING:  # the result decide reads; none of its stage's code runs here
    from stages.train import TrainResult

EPS = 1e-6  # floor for log-probabilities: one overconfident member must not veto a whole group
FENCE = 3.25  # outliers lie this many upper half-spreads (upper quartile - median) above the upper quartile
MAX_NOISE_RATE = 0.5  # past this estimated share of wrong labels, flags without a twin stop (see decide)
CLAIMED = 0.375  # no outlier: a sample whose two likeliest classes hold this much of the way from chance to all
EVIDENCE_Z = 2.0  # how clearly the neighbours must beat the members to decide instead (neighbours_clearly_better)
POOL_WEIGHT = 1.0  # how much a conflicting group weighs its similar groups' belief against its own evidence ...
POOL_PRIOR = 0.1  # ... smoothed by this much of a uniform belief, so no label is ruled out by the neighbours alone
POOL_ROUNDS = 20  # rounds of propagation
PIXEL_WEIGHT = 10.0  # where samples are unlabelled, the outlier score adds this many times log(pixel strangeness)
SPREAD = 0.5  # an unlabelled sample's belief: this much its similar groups', the rest its own members' evidence
TEMPERATURES = np.geomspace(0.05, 50, 120)  # calibration grid; below 1 for underconfident (label-smoothed) members


@dataclass(frozen=True)
class AggregateParams(Params):
    """How sure the evidence must be before a sample is flagged (docs: "How it works: aggregate")."""

    min_posterior: float = param(
        0.7,
        "Flag a sample without a conflicting twin when its estimated probability of a wrong label exceeds this: 0.5 "
        "would make the fewest errors were the noise model exact; higher is more cautious.",
        within="(0, 1)",
    )
    threshold: float | None = param(
        None,
        "A fixed threshold on the calibrated probability of the given label (null: picked from the data).",
        within="[0, 1]",
    )
    max_threshold: float = param(
        0.01, "The most the data-picked threshold may be, and the cap of the per-class counts' flags.", within="[0, 1]"
    )
    min_disagreement: float = param(
        1.0,
        "The share of scoring members that must predict another label for a flag without a twin (1: all).",
        within="(0, 1]",
    )
    flag_without_twin: bool = param(True, "Flag samples without a conflicting twin at all (false: twin groups only).")
    per_class_counts: bool = param(
        True,
        "Also flag, per given class, its lowest-scoring samples up to the count of wrong labels estimated in it "
        "(noise that flows into one class, or natural errors too few for the global rate).",
    )
    count_z: float = param(
        0.0,
        "The per-class counts flag up to total - count_z sqrt(total) of their total: 0 for data of any size; "
        "hw02.py takes 2, as on 165 samples one or two counts are as likely an odd picture as a wrong label.",
        within="[0, 10]",
    )
    min_expected_wrong: float = param(
        0.0,
        "Flags by the global rate only where it expects at least this many wrong labels among the samples without "
        "a twin (hw02.py takes 2; 0 flags a lone glaring error).",
        within="[0, 1000000]",
    )


@dataclass
class Decisions(Artifact):
    """The aggregate stage's result and artifact: a decision for every sample (N rows), and what decided."""

    score: np.ndarray  # float (N,): mean out-of-bag probability of the given label (nan where nobody scored)
    calibrated: np.ndarray  # float (N,): the same after temperature calibration (what the threshold applies to)
    disagreement: np.ndarray  # float (N,): share of scoring members that predicted another label
    wrong_prob: np.ndarray  # float (N,): calibrated probability that the given label is wrong (in a conflicting
    #                         twin group: that another label of the group wins); nan where nobody scored
    suggested: np.ndarray  # int64 (N,): the label the evidence favours (UNLABELLED where nobody scored an
    #                        unlabelled sample)
    suggested_prob: np.ndarray  # float (N,): its calibrated probability (nan where unscored)
    class_prob: np.ndarray  # float (N, K): calibrated class probabilities (nan rows where unscored)
    flagged: np.ndarray  # bool (N,)
    reason: np.ndarray  # str (N,): "twin", "wrong_label", "outlier", "odd" or ""
    threshold: float  # the threshold applied to samples without a conflicting twin
    noise_rate: float  # estimated share of wrong labels among them (see estimate_noise_rate)
    temperature: float  # the calibration temperature (above 1: the members were overconfident)
    note: str  # why nothing could be decided, or why weaker evidence decided, when that is so
    decided_by: str  # what decided: "members" (the trained ensemble) or "neighbours"
    wrong_by_class: np.ndarray  # float (K,): estimated wrong labels per given class (zeros where not counted)
    outlier_score: np.ndarray  # float (N,): how unlike every class a sample looks (outlier_scores; nan: unscored)
    outlier_threshold: float  # above it a sample is an outlier (inf: none looked for)
    outlier: np.ndarray  # bool (N,): belongs to no class: not a wrong label (its twin conflicts are decided even so)
    odd: np.ndarray  # str (N,): the group stage's broken images ("blank", "noise", "saturated"), else ""
    worth_a_look: np.ndarray  # bool (N,): not flagged, but likely enough wrong to be worth a person's look

    STAGE = "aggregate"
    FIELDS = {
        "score": Field("f", 1, True),
        "calibrated": Field("f", 1, True),
        "disagreement": Field("f", 1, True),
        "wrong_prob": Field("f", 1, True),
        "class_prob": Field("f", 2, True),
        "suggested": Field("iu", 1, True),
        "suggested_prob": Field("f", 1, True),
        "flagged": Field("b", 1, True),
        "reason": Field("U", 1, True),
        "threshold": Field("f", 0),
        "noise_rate": Field("f", 0),
        "temperature": Field("f", 0),
        "note": Field("U", 0),
        "decided_by": Field("U", 0),
        "wrong_by_class": Field("f", 1),
        "outlier_score": Field("f", 1, True),
        "outlier_threshold": Field("f", 0),
        "outlier": Field("b", 1, True),
        "odd": Field("U", 1, True),
        "worth_a_look": Field("b", 1, True),
    }

    def ranking(self) -> np.ndarray:
        """Every sample, the most likely wrong labels first: the flagged ones, most certain first (highest
        wrong_prob), then the rest the same way; unscored samples last."""
        return np.lexsort((-np.nan_to_num(self.wrong_prob, nan=-np.inf), ~self.flagged))

    def issues(self) -> list[int]:
        """The samples issues.csv and the review page list, in their order: the wrong labels, most certain first
        (highest wrong_prob), then the outliers, strangest first, then the odd images, then those worth a look,
        likeliest wrong first."""
        flagged = np.flatnonzero(self.flagged)
        flagged = flagged[np.argsort(-np.nan_to_num(self.wrong_prob[flagged]), kind="stable")]
        outliers = np.flatnonzero(self.outlier & ~self.flagged)
        outliers = outliers[np.argsort(-np.nan_to_num(self.outlier_score[outliers]), kind="stable")]
        odd = np.flatnonzero((self.odd != "") & ~self.flagged)
        look = np.flatnonzero(self.worth_a_look & ~self.flagged & ~self.outlier & (self.odd == ""))
        look = look[np.argsort(-np.nan_to_num(self.wrong_prob[look]), kind="stable")]
        return [*flagged.tolist(), *outliers.tolist(), *odd.tolist(), *look.tolist()]


def group_members(group: np.ndarray) -> list[np.ndarray]:
    """The sample indices of each group, ascending within each, groups in id order."""
    order = np.argsort(group, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(group[order])) + 1)


def format_indices(indices) -> str:
    """The graded line: indices ascending, joined by ', ' (empty when there are none)."""
    return ", ".join(str(int(i)) for i in sorted(indices))


def share_right(prob: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> float:
    """How often the most probable class of prob[rows] is the given label (0 for no rows)."""
    return float((prob[rows].argmax(1) == labels[rows]).mean()) if rows.size else 0.0


class Evidence(NamedTuple):
    """The evidence the labels are decided by (choose_evidence): per sample (N rows)."""

    prob: np.ndarray  # float (N, K): class probabilities (nan rows: nobody scored the sample)
    votes: np.ndarray  # int (N, K): how many of the scorers predicted each class
    n_scored: np.ndarray  # int (N,): how many scored it
    source: str  # "members" or "neighbours"
    note: str  # why the neighbours decide, where they do

    @property
    def scored(self) -> np.ndarray:
        return self.n_scored > 0


def neighbours_clearly_better(members_prob: np.ndarray, nn_prob: np.ndarray, labels: np.ndarray) -> bool:
    """Are the neighbours right more often than the members on the same samples, by more than chance explains?
    McNemar's test, one-sided: of the samples where exactly one of the two is right, the neighbours must win
    more than EVIDENCE_Z standard deviations above half. A tie, or a point either way on a few hundred samples,
    leaves the members to decide: they alone give calibrated evidence for samples without a twin."""
    members_right = members_prob.argmax(1) == labels
    neighbours_right = nn_prob.argmax(1) == labels
    members_only = int((members_right & ~neighbours_right).sum())
    neighbours_only = int((neighbours_right & ~members_right).sum())
    return neighbours_only - members_only > EVIDENCE_Z * np.sqrt(max(1, members_only + neighbours_only))


def choose_evidence(labels: np.ndarray, oob: TrainResult) -> Evidence:
    """The members' evidence, or the nearest neighbours' where the members are right less often on the clean
    samples both scored (those no twin contradicts; their few wrong labels cost both alike). A time budget that cut
    the members short is what makes them lose."""
    members = Evidence(oob.prob, oob.votes, oob.n_scored, "members", "")
    if not oob.nn_scored.any():
        return members
    agree = ~oob.open_question
    both = np.flatnonzero(agree & oob.nn_scored & oob.scored)
    members_right = share_right(oob.prob, labels, both) if both.size else 0.0
    neighbours_right = share_right(oob.nn_prob, labels, np.flatnonzero(agree & oob.nn_scored))
    if oob.scored.all() and not neighbours_clearly_better(oob.prob[both], oob.nn_prob[both], labels[both]):
        if members_right >= neighbours_right:
            return members
        return members._replace(
            note=f"the members were right on {members_right:.0%} of clean samples, nearest "
            f"neighbours on {neighbours_right:.0%}: weak evidence, so expect misses and "
            f"wrong flags (longer training helps: train.min_steps, train.epochs)"
        )
    nn_votes = np.zeros_like(oob.votes)
    nn_votes[np.flatnonzero(oob.nn_scored), oob.nn_prob[oob.nn_scored].argmax(1)] = 1
    trained = (
        f"the members were right on {members_right:.0%} of clean samples, nearest neighbours on {neighbours_right:.0%}"
        if oob.scored.any()
        else "no member trained (too few agreeing groups to learn from, or too little time)"
    )
    note = f"{trained}: twin groups decided by nearest neighbours, no flags without a twin"
    prob = np.where(oob.nn_scored[:, None], oob.nn_prob, np.nan)
    return Evidence(prob, nn_votes, oob.nn_scored.astype(np.int64), "neighbours", note)


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


def pick_threshold(noise_rate: float, n_classes: int, params: AggregateParams) -> float:
    """The calibrated probability below which a label is wrong with posterior probability above min_posterior.

    With a share noise_rate of wrong labels (estimate_noise_rate), a label of calibrated probability p is wrong
    with posterior a(1 - p) / (a(1 - p) + (1 - noise_rate) p), a = noise_rate / (n_classes - 1); that exceeds c
    exactly when p < a / (a + (1 - noise_rate) c / (1 - c)). Clean data give a rate near zero and so a threshold
    near zero: nothing is flagged without reason. Capped at max_threshold."""
    if noise_rate <= 0 or n_classes < 2:
        return 0.0
    a = noise_rate / (n_classes - 1)
    b = (1 - noise_rate) * params.min_posterior / (1 - params.min_posterior)
    return min(params.max_threshold, a / (a + b))


def outlier_scores(mean_prob: np.ndarray, strangeness: np.ndarray) -> np.ndarray:
    """How unlike every class each sample looks (README, "How it works": outliers and odd images): the log-odds of
    the members' spread over the classes (entropy of the mean out-of-bag probabilities over its largest, log K)
    plus the log of its strangeness (train.feature_evidence, averaged over the members that scored it). nan where
    unscored."""
    k = mean_prob.shape[1]
    if k < 2:
        return np.full(len(mean_prob), np.nan)
    p = np.clip(mean_prob, 1e-12, 1)
    spread = np.clip(-(p * np.log(p)).sum(1) / np.log(k), 1e-6, 1 - 1e-6)
    return np.log(spread / (1 - spread)) + np.log(np.maximum(strangeness, 1e-6))


def outlier_fence(scores: np.ndarray) -> float:
    """A fence read from the data, as in Tukey's rule but scaled by the upper half of the scores only: the upper
    quartile plus FENCE times (upper quartile - median); inf for too few scores. The lower half (samples the
    members are sure of) says nothing of how far clean samples reach upwards, and its long tail on data with
    confident classes (clothes) made Tukey's interquartile range fence out most strangers."""
    scores = scores[np.isfinite(scores)]
    if scores.size < 8:
        return np.inf
    median, q3 = np.quantile(scores, [0.5, 0.75])
    return float(q3 + FENCE * (q3 - median))


def outlier_rule(oob: TrainResult, *, odd: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """(outlier_score float (N,), fence, outlier bool (N,)): samples unlike every class, read from the members
    whichever evidence decides the labels, since what they learnt is what a stranger is unlike, and where samples
    are unlabelled from their distance in pixels to the labelled pictures too (train.pixel_strangeness). Odd images
    are neither scored against the fence nor outliers."""
    n = len(odd)
    score, fence = np.full(n, np.nan), np.inf
    by_members = oob.scored
    if by_members.any():
        score[by_members] = outlier_scores(oob.prob[by_members], oob.strangeness[by_members])
        if len(oob.pixel_strangeness) == n:  # samples are unlabelled: how far from the labelled pictures counts too
            score += PIXEL_WEIGHT * np.log(np.maximum(oob.pixel_strangeness, 1e-6))
        fence = outlier_fence(score[by_members & (odd == "")])
    return score, fence, (np.nan_to_num(score, nan=-np.inf) > fence) & (odd == "") & ~claimed(oob.prob)


def claimed(prob: np.ndarray) -> np.ndarray:
    """bool (N,): samples one or two classes claim, a mislabelled or an ambiguous picture however unusual, not a
    stranger (README, "outliers and odd images"): the mean probability of their m likeliest classes (m = 2, or 1 of
    2 classes) lies at least CLAIMED of the way from chance (m / K) to certainty. For 10 classes: half of it."""
    k = prob.shape[1]
    if k < 2:
        return np.ones(len(prob), bool)
    m = min(2, k - 1)
    top = np.sort(np.nan_to_num(prob), axis=1)[:, -m:].sum(1)
    return (top - m / k) / (1 - m / k) >= CLAIMED


def twin_rule(
    labels: np.ndarray,
    group: np.ndarray,
    log_prob: np.ndarray,
    asked: np.ndarray,
    *,
    temperature: float,
    similar: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(losers bool (N,), winner int (N,), -1 outside the open questions, doubt float (N,), nan outside them: the
    probability that another label than a member's own wins, the softmax of the labels' evidence): each
    conflicting twin group (asked, the scored open questions) goes to the label with the strongest evidence, its
    calibrated log mean out-of-bag probability averaged over the group's members plus the log of how many members
    carry it; every member with another label loses (README, "How it works: 4. aggregate"). With similar (int
    (N, k), train.similar_groups: where conflicts are the rule), each group's evidence also weighs what its most
    similar groups believe (pool_similar)."""
    losers, winner, doubt = np.zeros(len(labels), bool), np.full(len(labels), -1), np.full(len(labels), np.nan)
    n_classes = log_prob.shape[1]
    if not asked.any() or n_classes == 0:
        return losers, winner, doubt
    n_groups = int(group.max()) + 1
    evidence = np.full((n_groups, n_classes), -np.inf)
    questions = [np.flatnonzero(asked)[members] for members in group_members(group[asked])]
    for members in questions:
        present, counts = np.unique(labels[members], return_counts=True)
        # Calibrated log-probabilities of the labels present (softmax's normaliser is the same for every label
        # of one member, so it cancels), one row per look at the picture. Each copy is as likely as any other to
        # be the original, whose label is right: the prior of a label is its count in the group. Two evil copies
        # against one original barely move it (log 2), so a clear picture still overrules them; hundreds of
        # identical blanks against a few odd labels outweigh a model that never learnt what a blank is. Being
        # weighed against calibrated evidence, the count counts for more where the members were overconfident
        # (temperature above 1) and for less where they were timid.
        evidence[group[members[0]], present] = (log_prob[members][:, present] / temperature).mean(0) + np.log(counts)
    if similar is not None and len(similar) == len(labels):
        evidence = pool_similar(evidence, labels, group, asked, similar)
    for members in questions:
        row = evidence[group[members[0]]]
        present = np.flatnonzero(np.isfinite(row))
        winner[members] = present[np.argmax(row[present])]
        losers[members[labels[members] != winner[members]]] = True
        belief = np.exp(row[present] - row[present].max())
        doubt[members] = 1 - (belief / belief.sum())[np.searchsorted(present, labels[members])]
    return losers, winner, doubt


def pool_similar(
    evidence: np.ndarray, labels: np.ndarray, group: np.ndarray, asked: np.ndarray, similar: np.ndarray
) -> np.ndarray:
    """The conflicting groups' evidence (float (G, K), -inf for labels absent) plus POOL_WEIGHT times the log of
    what their similar groups believe, iterated as label propagation (README, "How it works: 4. aggregate": where
    copies with conflicting labels are the rule, the members learn little from them, and similar pictures carry
    the same label more often than not). A group no twin contradicts believes its own label; a conflicting one the
    softmax of its evidence, which the pooling updates POOL_ROUNDS times. Only labels present in a group can win."""
    n_groups, n_classes = evidence.shape
    conflicting = np.isfinite(evidence).any(1)
    settled = np.zeros((n_groups, n_classes))
    agreed = (labels != UNLABELLED) & ~asked & ~conflicting[group]
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
    trained on a few labelled pictures misread many; pictures that look alike mostly share a class (README,
    "Your data": unlabelled images). Rows of unscored unlabelled samples start uniform."""
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


def twinless_threshold(
    noise_rate: float, n_classes: int, n_alone: int, params: AggregateParams, *, source: str, through_conflicts: bool
) -> tuple[float, bool, str]:
    """(threshold on the calibrated probability, whether samples without a twin may be flagged at all, note).
    The threshold is pick_threshold's, or params.threshold; none may be flagged where weak evidence decides, where
    flags are not asked for, or where the fit says more than MAX_NOISE_RATE of the labels are wrong (the members
    more likely learnt too little). The threshold is zero, though flags by the per-class counts may still come,
    where the rate expects fewer than params.min_expected_wrong wrong labels among the n_alone samples."""
    threshold = params.threshold if params.threshold is not None else pick_threshold(noise_rate, n_classes, params)
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


def twinless_rule(
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


def label_margin(prob: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """float (N,): the probability of each sample's label (prob (N, K)) less that of its likeliest other class."""
    mine = np.eye(prob.shape[1], dtype=bool)[labels]
    return prob[mine] - np.nanmax(np.where(mine, -np.inf, prob), axis=1)


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


def decide(
    labels: np.ndarray, group: np.ndarray, oob: TrainResult, params: AggregateParams, *, odd: np.ndarray | None = None
) -> Decisions:
    """A decision for every sample from the group stage's ids (group int (N,), odd str (N,): its broken images)
    and the train stage's evidence: the rules of README's "How it works: 4. aggregate", in its order."""
    n = len(labels)
    odd = np.full(n, "") if odd is None else np.asarray(odd).astype(str)
    labelled = labels != UNLABELLED  # an unlabelled sample only gets a suggestion: no label of its own to judge
    given = np.where(labelled, labels, 0)  # a stand-in column for the unlabelled rows' per-label arrays, masked below
    evidence = choose_evidence(labels, oob)
    outlier_score, fence, outlier = outlier_rule(oob, odd=odd)
    if evidence.source == "neighbours":  # neighbours score no unlabelled sample: the members suggest theirs
        members = ~labelled & oob.scored
        evidence = evidence._replace(
            prob=np.where(members[:, None], oob.prob, evidence.prob),
            n_scored=np.where(members, oob.n_scored, evidence.n_scored),
        )
    scored = evidence.scored
    prob = np.where(scored[:, None], evidence.prob, np.nan)
    rows = np.arange(n)
    score = np.where(labelled, prob[rows, given], np.nan) if prob.shape[1] else np.full(n, np.nan)
    disagreement = np.where(
        scored & labelled, 1 - evidence.votes[rows, given] / np.maximum(evidence.n_scored, 1), np.nan
    )
    suggested = np.where(scored, np.nan_to_num(prob, nan=-1).argmax(1) if prob.shape[1] else labels, labels)
    one_label = len(np.unique(labels[labelled])) < 2
    note = (
        "every sample carries the same label: nothing can contradict it"
        if one_label
        else "no model could be trained (too few groups whose labels agree)"
        if not scored.any()
        else evidence.note
    )

    # Open questions: the conflicting twin groups someone scored. Outliers take part: a twin conflict is surer
    # evidence of a wrong label than the outlier fence is of a stranger (README, "outliers and odd images").
    asked = oob.open_question & scored & (odd == "")
    apart = outlier | (odd != "")
    # The calibration is fitted on everyone else, whose labels no twin contradicts; where the members trained
    # through the conflicts (evil twins en masse), on everyone, whose copies' labels the noise model then explains.
    alone = scored & ~asked & ~apart & labelled
    fitted = scored & ~apart & labelled if oob.through_conflicts else alone
    log_prob = np.log(np.nan_to_num(prob, nan=1.0) + EPS)
    labelled_classes = len(np.unique(labels[labelled]))  # the classes a wrong label can be: those some sample carries
    temperature, noise_rate = fit_noise_model(log_prob[fitted], labels[fitted], labelled_classes)

    losers, winner, doubt = twin_rule(
        labels,
        group,
        log_prob,
        asked,
        temperature=temperature,
        similar=oob.similar_groups if oob.through_conflicts else None,
    )
    suggested = np.where(asked, winner, suggested)
    outlier &= ~losers

    calibrated_prob = np.full(log_prob.shape, np.nan)  # (N, K), each scored sample's calibrated class probabilities
    if scored.any():
        calibrated_prob[scored] = softmax(log_prob[scored] / temperature)
    calibrated = np.where(labelled, calibrated_prob[rows, given], np.nan) if log_prob.shape[1] else np.full(n, np.nan)
    settled = np.where(asked, winner, labels)  # what each labelled sample's label is taken to be
    if (~labelled).any() and len(oob.similar_groups) == n and log_prob.shape[1]:
        belief = spread_to_unlabelled(calibrated_prob, settled, labels, group, oob.similar_groups)
        suggested = np.where(~labelled & (oob.similar_groups >= 0).any(1), belief.argmax(1), suggested)
        calibrated_prob = np.where(labelled[:, None], calibrated_prob, belief)
    suggested = np.where(labelled, suggested, twins_label(group, settled, suggested))
    suggested_prob = (
        np.where(suggested >= 0, calibrated_prob[rows, np.maximum(suggested, 0)], np.nan)
        if log_prob.shape[1]
        else np.full(n, np.nan)
    )
    threshold, allowed, refusal = twinless_threshold(
        noise_rate,
        labelled_classes,
        int(alone.sum()),
        params,
        source=evidence.source,
        through_conflicts=oob.through_conflicts,
    )
    note = note or refusal
    strong = twinless_rule(
        labels, calibrated, disagreement, alone, threshold=threshold, min_disagreement=params.min_disagreement
    )
    wrong_by_class = np.zeros(prob.shape[1])
    if allowed and params.threshold is None and params.per_class_counts:
        by_class, wrong_by_class = per_class_rule(
            given,
            calibrated_prob,
            disagreement,
            alone,
            max_threshold=params.max_threshold,
            min_disagreement=params.min_disagreement,
            count_z=params.count_z,
        )
        strong |= by_class

    reason = np.full(n, "", dtype="<U11")
    reason[outlier] = "outlier"
    reason[odd != ""] = "odd"
    reason[losers] = "twin"
    reason[strong] = "wrong_label"
    wrong_prob = np.where(asked, doubt, 1 - calibrated)
    return Decisions(
        score=score,
        calibrated=calibrated,
        disagreement=disagreement,
        wrong_prob=wrong_prob,
        class_prob=calibrated_prob,
        suggested=suggested.astype(np.int64),
        suggested_prob=suggested_prob,
        flagged=losers | strong,
        reason=reason,
        threshold=float(threshold),
        noise_rate=noise_rate,
        temperature=temperature,
        note=note,
        decided_by=evidence.source,
        wrong_by_class=wrong_by_class,
        outlier_score=outlier_score,
        outlier_threshold=fence,
        outlier=outlier,
        odd=odd,
        worth_a_look=np.zeros(n, bool),
    )


def result_tables(
    decisions: Decisions,
    labels: np.ndarray,
    group: np.ndarray,
    class_names: list[str] | None = None,
    paths: list[str] | None = None,
    skipped: list[str] | None = None,
) -> dict[str, str]:
    """The texts of the results folder, by file name: suspects.txt (the graded line: wrong labels only),
    samples.csv (one row per sample), issues.csv (the wrong labels, most certain first: highest wrong_prob;
    then the outliers, strangest first; then the odd images) and skipped.txt (the
    unreadable files decode left out, one per line). With class names, labels are written as names; with source
    paths, each row names its file. An unlabelled sample's given label is empty; suggested_prob is the calibrated
    probability of the suggested label, its confidence where there is no given label to doubt."""
    import csv
    import io

    def name(label: int) -> str:
        return label_cell(label, class_names)

    def number(x: float) -> str:
        return "" if np.isnan(x) else f"{x:.6g}"

    twins = {}
    for together in group_members(group):
        for i in together if len(together) > 1 else ():
            others = [str(j) for j in together if j != i]
            twins[i] = " ".join(others[:10]) + (" ..." if len(others) > 10 else "")
    texts = {
        "suspects.txt": format_indices(np.flatnonzero(decisions.flagged)) + "\n",
        "skipped.txt": "".join(f"{path}\n" for path in skipped or []),
    }
    header = [
        "index",
        "path",
        "given",
        "suggested",
        "wrong_prob",
        "score",
        "calibrated",
        "disagreement",
        "group",
        "twins",
        "flagged",
        "reason",
        "outlier_score",
        "odd",
        "suggested_prob",
    ]
    apart = decisions.outlier | (decisions.odd != "")  # no suggested label: they belong to no class
    rows = [
        [
            i,
            paths[i] if paths else "",
            name(int(labels[i])),
            "" if apart[i] else name(int(decisions.suggested[i])),
            number(decisions.wrong_prob[i]),
            number(decisions.score[i]),
            number(decisions.calibrated[i]),
            number(decisions.disagreement[i]),
            int(group[i]),
            twins.get(i, ""),
            int(decisions.flagged[i]),
            decisions.reason[i],
            number(decisions.outlier_score[i]),
            decisions.odd[i],
            number(decisions.suggested_prob[i]),
        ]
        for i in range(len(labels))
    ]
    for file, chosen in (("samples.csv", range(len(labels))), ("issues.csv", decisions.issues())):
        table = io.StringIO()
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows[i] for i in chosen)
        texts[file] = table.getvalue()
    return texts


def summary_metrics(
    decisions: Decisions,
    labels: np.ndarray,
    group: np.ndarray,
    seconds: dict[str, float],
    class_names: list[str] | None = None,
    skipped: list[str] | None = None,
) -> dict:
    """metrics.json: counts of samples, groups and flags (by class too), the threshold and what set it."""

    def name(label: int) -> str:
        return class_name(label, class_names)

    group_sizes = np.bincount(group)
    n_classes = class_count(labels, class_names)
    unlabelled = (
        (labels == UNLABELLED) & (decisions.suggested != UNLABELLED) & ~decisions.outlier & (decisions.odd == "")
    )
    return {
        "samples": len(labels),
        "unlabelled": int((labels == UNLABELLED).sum()),
        "suggested_for_unlabelled": {
            name(c): int((unlabelled & (decisions.suggested == c)).sum()) for c in range(n_classes)
        }
        if unlabelled.any()
        else {},
        "skipped_files": len(skipped or []),
        "groups": len(group_sizes),
        "copies": int(len(labels) - len(group_sizes)),
        "conflicting_groups": int(conflicting_groups(group, labels, decisions.odd != "").sum()),
        "flagged": int(decisions.flagged.sum()),
        "flagged_twin": int((decisions.reason == "twin").sum()),
        "flagged_wrong_label": int((decisions.reason == "wrong_label").sum()),
        "flagged_by_class": {name(c): int((decisions.flagged & (labels == c)).sum()) for c in range(n_classes)},
        "estimated_wrong_by_class": {
            name(c): round(float(count), 1) for c, count in enumerate(decisions.wrong_by_class)
        },
        "outliers": int(decisions.outlier.sum()),
        "unlabelled_outliers": int((decisions.outlier & (labels == UNLABELLED)).sum()),
        "outlier_threshold": decisions.outlier_threshold if np.isfinite(decisions.outlier_threshold) else None,
        "odd": {kind: int((decisions.odd == kind).sum()) for kind in ("blank", "noise", "saturated")},
        "threshold": decisions.threshold,
        "noise_rate": decisions.noise_rate,
        "temperature": decisions.temperature,
        "decided_by": decisions.decided_by,
        "seconds": {stage: round(s, 3) for stage, s in seconds.items()},
    }
