"""Stage 4, aggregate: out-of-bag evidence in, a decision for every sample out (docs: "How it works: aggregate").

choose_evidence picks the members' or the nearest neighbours' evidence; decide settles every conflicting twin
group by it and flags other samples only below a threshold read from the data (fit_noise_model, pick_threshold)
or by the per-class counts (wrong_label_counts). result_tables and summary_metrics are what the results folder
and metrics.json hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stages.artifact import Artifact, Field
from stages.evidence import Evidence, choose_evidence
from stages.labels import UNLABELLED, class_count, class_name, conflicting_groups, group_samples, label_cell
from stages.noise_model import EPS, fit_noise_model, softmax
from stages.params import Params, param
from stages.propagate import spread_to_unlabelled, twins_label
from stages.rules import Case, Verdict, outlier_rule, twin_rule, verdict, wrong_label_rule
from stages.tables import cell, csv_text

if TYPE_CHECKING:  # the result decide reads; none of its stage's code runs here
    from stages.train import TrainResult


@dataclass(frozen=True)
class AggregateParams(Params):
    """How sure the evidence must be before a sample is flagged (docs: "How it works: aggregate")."""

    twinless: str = param(
        "estimate",
        "How samples without a conflicting twin are flagged: estimate (how many labels are wrong, then the likeliest "
        "up to the best expected F1) or cautious (a threshold read from a global rate, and per-class counts: the "
        "graded run's, for 165 samples too few to estimate from); the parameters below to per_class_counts are the "
        "cautious rule's.",
        choices=("estimate", "cautious"),
    )
    prior_rate: float = param(
        0.01,
        "The share of wrong labels expected before the evidence speaks (labelled data sets hold about 0.1-5%): "
        "a prior that keeps a few sure errors in a large set from being explained away.",
        within="(0, 0.5)",
    )
    prior_weight: float = param(
        200.0, "How many samples' worth prior_rate counts against the evidence (0: none).", within="[0, 1000000]"
    )
    review_floor: float = param(
        0.05,
        "Samples not flagged whose label is wrong with at least this probability are worth a look: they follow the "
        "flags in issues.csv and on the review page.",
        within="[0, 1]",
    )
    review_share: float = param(
        0.005,
        "...and at least this share of the samples without a twin are, the likeliest first whatever their probability: "
        "on data the evidence calls clean a reviewer still sees the head of the ranking (0: the floor alone).",
        within="[0, 1]",
    )
    min_disagreement: float = param(
        1.0,
        "The share of scoring members that must predict another label for a flag without a twin (1: all).",
        within="(0, 1]",
    )
    flag_without_twin: bool = param(True, "Flag samples without a conflicting twin at all (false: twin groups only).")
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
    outlier_fence: float = param(
        3.25,
        "Outliers lie this many upper half-spreads (upper quartile - median) above the upper quartile of the outlier "
        "scores; higher flags fewer.",
        within="[0, 100]",
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
    cut: float  # the probability of a wrong label above which samples without a twin were flagged (1: none)
    noise_rate: float  # estimated share of wrong labels among them
    estimate: np.ndarray  # float (3,): how many labels are wrong among them, and the 5-95% interval of that count
    temperature: float  # the calibration temperature (above 1: the members were overconfident)
    note: str  # why nothing could be decided, or why weaker evidence decided, when that is so
    decided_by: str  # what decided: "members" (the trained ensemble), "neighbours" (members too weak), "heads" (on
    #                  the features a user brought) or "pred_probs" (a user's probabilities)
    wrong_by_class: np.ndarray  # float (K,): estimated wrong labels per given class (zeros where not counted)
    outlier_score: np.ndarray  # float (N,): how unlike every class a sample looks (outlier_scores; nan: unscored)
    outlier_threshold: float  # above it a sample is an outlier (inf: none looked for)
    outlier: np.ndarray  # bool (N,): belongs to no class: not a wrong label (its twin conflicts are decided even so)
    odd: np.ndarray  # str (N,): the group stage's broken images ("blank", "noise", "saturated"), else ""
    worth_a_look: np.ndarray  # bool (N,): not flagged, but likely enough wrong to be worth a person's look
    dataset: str = ""  # Dataset.fingerprint of the data it was made from (pipeline/steps.py; "" in memory)

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
        "cut": Field("f", 0),
        "noise_rate": Field("f", 0),
        "estimate": Field("f", 1),
        "temperature": Field("f", 0),
        "note": Field("U", 0),
        "decided_by": Field("U", 0),
        "wrong_by_class": Field("f", 1),
        "outlier_score": Field("f", 1, True),
        "outlier_threshold": Field("f", 0),
        "outlier": Field("b", 1, True),
        "odd": Field("U", 1, True),
        "worth_a_look": Field("b", 1, True),
        "dataset": Field("U", 0),
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


def format_indices(indices) -> str:
    """The graded line: indices ascending, joined by ', ' (empty when there are none)."""
    return ", ".join(str(int(i)) for i in sorted(indices))


def decide(
    labels: np.ndarray, group: np.ndarray, oob: TrainResult, params: AggregateParams, *, odd: np.ndarray | None = None
) -> Decisions:
    """A decision for every sample from the group stage's ids (group int (N,), odd str (N,): its broken images)
    and the train stage's evidence (docs: "How it works: aggregate"). The rules (stages/rules.py) run in order,
    each returning a Verdict: outliers, odd images, twin conflicts, wrong labels without a twin. Where two flag
    one sample, the later one's reason stands, and a twin conflict also takes back the outlier flag: a twin that
    contradicts a label is surer evidence than the fence is of a stranger. A wrong label is what the last two
    flag."""
    n = len(labels)
    odd = np.full(n, "") if odd is None else np.asarray(odd).astype(str)
    evidence = evidence_for(labels, oob)
    outlier_score, fence, outlier = outlier_rule(oob, odd=odd, spread=params.outlier_fence)
    case = read_case(labels, group, oob, evidence, odd=odd, apart=outlier | (odd != ""))
    verdicts = [verdict("outlier", outlier), verdict("odd", odd != ""), twin_rule(case)]
    twinless = wrong_label_rule(case, params)
    verdicts.append(twinless.verdict)
    reason = np.full(n, "", dtype="<U11")
    for v in verdicts:
        reason[v.flagged] = v.reason
    twins, wrong = verdicts[2], verdicts[3]
    suggested, suggested_prob, class_prob = suggestions(case, twins, oob.similar_groups)
    return Decisions(
        score=np.where(case.labels != UNLABELLED, case.prob[np.arange(n), case.given], np.nan)
        if case.prob.shape[1]
        else np.full(n, np.nan),
        calibrated=case.calibrated,
        disagreement=case.disagreement,
        wrong_prob=np.where(case.open_question, twins.wrong_prob, wrong.wrong_prob),
        class_prob=class_prob,
        suggested=suggested.astype(np.int64),
        suggested_prob=suggested_prob,
        flagged=twins.flagged | wrong.flagged,
        reason=reason,
        cut=float(twinless.cut),
        noise_rate=twinless.noise_rate,
        estimate=np.array(twinless.estimate, float),
        temperature=case.temperature,
        note=note_for(labels, case) or evidence.note or twinless.note,
        decided_by=evidence.source,
        wrong_by_class=twinless.wrong_by_class,
        outlier_score=outlier_score,
        outlier_threshold=fence,
        outlier=outlier & ~twins.flagged,
        odd=odd,
        worth_a_look=twinless.worth_a_look,
    )


def evidence_for(labels: np.ndarray, oob: TrainResult) -> Evidence:
    """choose_evidence's, where the neighbours decide with the members' evidence for unlabelled samples, which
    neighbours never score."""
    evidence = choose_evidence(labels, oob)
    if evidence.source == "neighbours":
        members = (labels == UNLABELLED) & oob.scored
        evidence = evidence._replace(
            prob=np.where(members[:, None], oob.prob, evidence.prob),
            n_scored=np.where(members, oob.n_scored, evidence.n_scored),
        )
    return evidence


def read_case(
    labels: np.ndarray, group: np.ndarray, oob: TrainResult, evidence: Evidence, *, odd: np.ndarray, apart: np.ndarray
) -> Case:
    """What the rules read: the evidence calibrated by the noise model, fitted on the samples no twin contradicts
    (alone), or where the members trained through the conflicts (evil twins en masse) on every labelled sample,
    whose copies' labels the noise model then explains. apart (bool (N,)): outliers and odd images, left out of
    the fit. Open questions are the conflicting twin groups someone scored; outliers take part in them."""
    n = len(labels)
    labelled = labels != UNLABELLED
    given = np.where(labelled, labels, 0)
    scored = evidence.scored
    prob = np.where(scored[:, None], evidence.prob, np.nan)
    rows = np.arange(n)
    open_question = oob.open_question & scored & (odd == "")
    alone = scored & ~open_question & ~apart & labelled
    fitted = scored & ~apart & labelled if oob.through_conflicts else alone
    log_prob = np.log(np.nan_to_num(prob, nan=1.0) + EPS)
    n_classes = len(np.unique(labels[labelled]))
    temperature, noise_rate = fit_noise_model(log_prob[fitted], labels[fitted], n_classes)
    calibrated_prob = np.full(log_prob.shape, np.nan)
    if scored.any():
        calibrated_prob[scored] = softmax(log_prob[scored] / temperature)
    has_classes = log_prob.shape[1] > 0
    return Case(
        labels=labels,
        given=given,
        group=group,
        scored=scored,
        prob=prob,
        log_prob=log_prob,
        calibrated_prob=calibrated_prob,
        calibrated=np.where(labelled, calibrated_prob[rows, given], np.nan) if has_classes else np.full(n, np.nan),
        disagreement=np.where(
            scored & labelled, 1 - evidence.votes[rows, given] / np.maximum(evidence.n_scored, 1), np.nan
        ),
        open_question=open_question,
        alone=alone,
        temperature=temperature,
        noise_rate=noise_rate,
        n_classes=n_classes,
        source=evidence.source,
        through_conflicts=oob.through_conflicts,
        similar=oob.similar_groups,
    )


def suggestions(case: Case, twins: Verdict, similar: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(suggested int (N,), suggested_prob float (N,), class_prob float (N, K)): the label each sample's evidence
    favours (an open question's: its group's winner; an unlabelled copy of labelled pictures: its twins' label),
    its calibrated probability, and the calibrated class probabilities, which for unlabelled samples take on their
    similar groups' beliefs (propagate.spread_to_unlabelled)."""
    labels, n = case.labels, len(case.labels)
    labelled = labels != UNLABELLED
    has_classes = case.prob.shape[1] > 0
    suggested = np.where(case.scored, np.nan_to_num(case.prob, nan=-1).argmax(1) if has_classes else labels, labels)
    suggested = np.where(case.open_question, twins.suggested, suggested)
    class_prob = case.calibrated_prob
    settled = np.where(case.open_question, twins.suggested, labels)  # what each labelled sample's label is taken to be
    if (~labelled).any() and len(similar) == n and has_classes:
        belief = spread_to_unlabelled(class_prob, settled, labels, case.group, similar)
        suggested = np.where(~labelled & (similar >= 0).any(1), belief.argmax(1), suggested)
        class_prob = np.where(labelled[:, None], class_prob, belief)
    suggested = np.where(labelled, suggested, twins_label(case.group, settled, suggested))
    rows = np.arange(n)
    suggested_prob = (
        np.where(suggested >= 0, class_prob[rows, np.maximum(suggested, 0)], np.nan)
        if has_classes
        else np.full(n, np.nan)
    )
    return suggested, suggested_prob, class_prob


def note_for(labels: np.ndarray, case: Case) -> str:
    """Why nothing could be decided, or why weaker evidence decided, where that is so."""
    if len(np.unique(labels[labels != UNLABELLED])) < 2:
        return "every sample carries the same label: nothing can contradict it"
    if not case.scored.any():
        return "no model could be trained (too few groups whose labels agree)"
    return ""


COLUMNS = [  # samples.csv's and issues.csv's columns (docs: "Your data: What comes out")
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


def result_tables(
    decisions: Decisions,
    labels: np.ndarray,
    group: np.ndarray,
    *,
    class_names: list[str] | None = None,
    paths: list[str] | None = None,
    skipped: list[str] | None = None,
) -> dict[str, str]:
    """The texts of the results folder, by file name: suspects.txt (the graded line: wrong labels only),
    samples.csv (one row per sample), issues.csv (the wrong labels, most certain first: highest wrong_prob; then the
    outliers, strangest first; then the odd images) and skipped.txt (the unreadable files decode left out, one per
    line)."""
    rows = sample_rows(decisions, labels, group, class_names=class_names, paths=paths)
    texts = {
        "suspects.txt": format_indices(np.flatnonzero(decisions.flagged)) + "\n",
        "skipped.txt": "".join(f"{path}\n" for path in skipped or []),
    }
    for file, chosen in (("samples.csv", range(len(labels))), ("issues.csv", decisions.issues())):
        texts[file] = csv_text([COLUMNS, *(rows[i] for i in chosen)])
    return texts


def twin_lists(group: np.ndarray, most: int = 10) -> dict[int, str]:
    """Each sample with a twin: its twins' indices, space-separated, the first `most` of them."""
    twins = {}
    for together in group_samples(group):
        for i in together if len(together) > 1 else ():
            others = [str(j) for j in together if j != i]
            twins[i] = " ".join(others[:most]) + (" ..." if len(others) > most else "")
    return twins


def sample_rows(
    decisions: Decisions,
    labels: np.ndarray,
    group: np.ndarray,
    *,
    class_names: list[str] | None,
    paths: list[str] | None,
) -> list[list]:
    """One row of COLUMNS per sample. With class names, labels are written as names; with source paths, each row
    names its file; names and paths as stages.tables.cell writes them. An unlabelled sample's given label is empty;
    suggested_prob is the calibrated probability of the suggested label, its confidence where there is no given
    label to doubt; an outlier or odd image has no suggested label: it belongs to no class."""

    def name(label: int) -> str:
        return cell(label_cell(label, class_names))

    def number(x: float) -> str:
        return "" if np.isnan(x) else f"{x:.6g}"

    twins = twin_lists(group)
    apart = decisions.outlier | (decisions.odd != "")
    return [
        [
            i,
            cell(paths[i]) if paths else "",
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


def summary_metrics(
    decisions: Decisions,
    labels: np.ndarray,
    group: np.ndarray,
    seconds: dict[str, float],
    class_names: list[str] | None = None,
    skipped: list[str] | None = None,
) -> dict:
    """metrics.json: counts of samples, groups and flags (by class too), the estimated number of wrong labels with
    its interval, the cut on the probability of a wrong label and what set it."""

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
        "estimated_wrong": {
            "count": round(float(decisions.estimate[0]), 1),
            "low": round(float(decisions.estimate[1]), 1),
            "high": round(float(decisions.estimate[2]), 1),
        },
        "worth_a_look": int(decisions.worth_a_look.sum()),
        "wrong_prob_cut": decisions.cut,
        "noise_rate": decisions.noise_rate,
        "temperature": decisions.temperature,
        "decided_by": decisions.decided_by,
        "seconds": {stage: round(s, 3) for stage, s in seconds.items()},
    }
