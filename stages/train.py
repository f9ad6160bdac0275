"""Stage 3, train: an ensemble of subset models whose every prediction is out of bag, twins included
(docs: "How it works: train").

Members come in rounds. Each round splits the groups into folds at random (whole groups, so a sample and its copies
are always on the same side); each member trains on all folds but one and scores the one it left out. Groups whose
members disagree on the label never train anyone (unless they are the rule: trains_through_conflicts), so every
member scores them. Nearest neighbours give evidence before any member trains (nearest_neighbour_probs)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from stages.artifact import Artifact, Field, check_arrays
from stages.budget import Budget
from stages.heads import HEADS, feature_stats_apart, head_probs, unit_rows
from stages.labels import UNLABELLED, class_count, open_questions
from stages.member import AFFINE_BELOW, DOMINANT_RATIO, LOSS_POINTS, MemberOutput, stranger_refs, train_member
from stages.neighbours import POOL_K, neighbour_evidence, pixel_strangeness, similar_groups
from stages.params import MAX_SEED, Params, param
from stages.workers import BACKENDS, DEVICES, member_pool, progress, resolve_device, worker_layout

if TYPE_CHECKING:  # the evidence a user brought: only its arrays are read here
    from stages.external import External

MODEL_KINDS = ("linear", "mlp", "cnn", "conv4")  # stages/train_models.py builds each
MIN_WAVE_SECONDS = 4.0  # below this much time per wave, a member (process start, ~100 steps) loses to neighbours


@dataclass(frozen=True)
class TrainParams(Params):
    """How the ensemble's members are trained, and where (docs: "How it works: train")."""

    model: str = param("cnn", "The members' model (stages/train_models.py).", choices=MODEL_KINDS)
    n_models: int = param(
        9,
        "The most members to train (a time budget may stop earlier, never before every sample is scored).",
        within="1..1000",
    )
    train_fraction: float = param(
        0.667,
        "The share of twin groups each member trains on; members come in rounds of round(1 / (1 - f)).",
        within="[0.5, 1)",
    )
    epochs: int = param(15, "Passes over a member's training set.", within="1..1000")
    min_steps: int = param(
        300, "The fewest optimiser steps a member takes, so tiny sets train enough.", within="0..1000000"
    )
    batch_size: int = param(32, "Images per optimiser step.", within="1..65536")
    learning_rate: float = param(
        0.006, 'The peak of the one-cycle schedule, AdamW (docs: "How it works: Members").', within="(0, 10]"
    )
    weight_decay: float = param(0.0001, "AdamW's weight decay.", within="[0, 10]")
    max_shift: int = param(
        2, "Random shift of up to this many pixels per training image (conv models).", within="0..16"
    )
    augment: str = param(
        "auto",
        f"shift (random shifts only), affine (also rotations and scalings), or auto: affine where a member trains on "
        f"fewer than {AFFINE_BELOW} images (what lets ~100 digits generalise), shift beyond.",
        choices=("shift", "affine", "auto"),
    )
    max_rotation: float = param(20.0, "With affine: the largest rotation drawn, in degrees.", within="[0, 180]")
    max_scale: float = param(0.15, "With affine: the largest scaling drawn, +- this fraction.", within="[0, 1)")
    label_smoothing: float = param(
        0.1,
        "The share of each target spread over the other classes (fewer wrong twin decisions on tiny sets).",
        within="[0, 1)",
    )
    balance_classes: bool | str = param(
        "auto",
        "true: batches weigh every class equally; false: as the whole data set does; auto: balance where one class "
        f"outnumbers the median class {DOMINANT_RATIO:g} times.",
        choices=(True, False, "auto"),
    )
    conflict_share: float = param(
        0.5,
        "When conflicting twin groups hold more than this share of the samples, members train on them too, each "
        "copy with its own label (the true label wins on average).",
        within="[0, 1]",
    )
    device: str = param(
        "auto",
        "Where members train: cpu, cuda, cuda:N, mps, or auto (CUDA, else MPS, else the CPU).",
        choices=DEVICES,
        pattern=r"cuda:\d+",
    )
    head: str = param(
        "ridge",
        "With features given (external.features or .model): the heads fitted on them in place of members, a ridge "
        "regression on one-hot targets, a multinomial logistic regression, or k nearest neighbours.",
        choices=HEADS,
    )
    head_penalty: float = param(0.001, "The L2 penalty of a ridge or logistic head.", within="[0, 100]")
    n_jobs: int = param(2, "Parallel workers on the CPU (-1: one per core).", choices=(-1,), within="1..1024")
    backend: str = param("loky", "A joblib backend for the workers (dask: a cluster).", choices=BACKENDS)
    scheduler: str | None = param(
        None, "With dask: a running scheduler's address (tcp://host:8786); null: the client open, else a local one."
    )
    time_budget_s: float | None = param(
        None,
        "Stop adding members once the next would end after this many seconds (null: no budget).",
        within="(0, 1000000]",
    )
    seed: int = param(
        0, "Everything random derives from it: the same seed and n_jobs give the same results.", within=f"0..{MAX_SEED}"
    )

    @property
    def folds(self) -> int:
        return max(2, round(1 / (1 - self.train_fraction)))


@dataclass
class TrainResult(Artifact):
    """The train stage's result and artifact: the evidence it hands the aggregate stage, per sample (N rows), as
    means over the members that scored each sample, and how the members trained (member_seconds, different on
    every run, stays out of the artifact). Built by keyword."""

    prob: np.ndarray  # float64 (N, K): mean out-of-bag class probabilities (nan rows: no member scored it)
    n_scored: np.ndarray  # int64 (N,): how many members scored each sample
    votes: np.ndarray  # int64 (N, K): how many of them predicted each class
    strangeness: np.ndarray  # float64 (N,): feature_evidence's, mean over the members that scored it (nan: none)
    class_sim: np.ndarray  # float64 (N, K): feature_evidence's class similarities, the same mean
    nn_prob: np.ndarray  # float64 (N, K): nearest-neighbour class probabilities (zero rows where not computed)
    nn_scored: np.ndarray  # bool (N,): rows of nn_prob computed (every open question, some clean samples)
    open_question: np.ndarray  # bool (N,): labels.open_questions, the twin conflicts no member trained on
    through_conflicts: bool  # did members train on the conflicting groups too (trains_through_conflicts)?
    loss_curves: np.ndarray  # float32 (M, LOSS_POINTS): each member's training loss from first step to last
    member_steps: np.ndarray  # int64 (M,): optimiser steps each member took (fewer when time ran short)
    # int64 (N, POOL_K): the groups most like each sample's own, most similar first, where conflicts are the rule
    # or samples are unlabelled (similar_groups()); no rows elsewhere
    similar_groups: np.ndarray = field(default_factory=lambda: np.zeros((0, POOL_K), np.int64))
    # float64 (N,): pixel_strangeness(), where samples are unlabelled; no rows elsewhere
    pixel_strangeness: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # what scored the samples: "members" (this tool's CNNs), "heads" (fitted on the features a user brought),
    # "pred_probs" (a user's probabilities; open questions scored by members or heads, which never saw a copy)
    source: str = "members"
    member_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))  # float64 (M,)
    dataset: str = ""  # Dataset.fingerprint of the data it was made from (pipeline/steps.py; "" in memory)

    STAGE = "train"
    FIELDS = {
        "prob": Field("f", 2, True),
        "n_scored": Field("iu", 1, True),
        "votes": Field("iu", 2, True),
        "strangeness": Field("f", 1, True),
        "class_sim": Field("f", 2, True),
        "nn_prob": Field("f", 2, True),
        "nn_scored": Field("b", 1, True),
        "open_question": Field("b", 1, True),
        "through_conflicts": Field("b", 0),
        "similar_groups": Field("i", 2),
        "pixel_strangeness": Field("f", 1),
        "loss_curves": Field("f", 2),
        "member_steps": Field("iu", 1),
        "source": Field("U", 0),
        "dataset": Field("U", 0),
    }

    @property
    def scored(self) -> np.ndarray:
        """bool (N,): scored by at least one member."""
        return self.n_scored > 0

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], source: str, n: int | None = None) -> TrainResult:
        check_arrays(arrays, cls.FIELDS, source, cls.STAGE, n)
        return cls(
            **{name: arrays[name] for name in cls.FIELDS}
            | {
                "through_conflicts": bool(arrays["through_conflicts"]),
                "source": str(arrays["source"]),
                "member_seconds": np.full(len(arrays["member_steps"]), np.nan),
                "dataset": str(arrays["dataset"]),
            }
        )


def trains_through_conflicts(
    group: np.ndarray, labels: np.ndarray, params: TrainParams, keep_out: np.ndarray | None = None
) -> bool:
    """Do the open questions hold more than params.conflict_share of the labelled samples? Then members train on them
    too (docs: "How it works: When conflicts are the rule")."""
    labelled = labels != UNLABELLED
    return bool(open_questions(group, labels, keep_out)[labelled].mean() > params.conflict_share)


def plan_members(
    group: np.ndarray, labels: np.ndarray, params: TrainParams, keep_out: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train indices, scored indices) for every member, in the order they are trained. Whole groups go to one side
    of each split. Usually the open questions (labels.open_questions) train nobody and every member scores them;
    when they are the rule (trains_through_conflicts), every group is split alike and trains with each copy's own
    label. keep_out (bool (N,), the odd images) marks samples that are scored like any other but train nobody.
    Unlabelled samples train nobody either, and every member scores them."""
    open_question = open_questions(group, labels, keep_out)
    if trains_through_conflicts(group, labels, params, keep_out):
        open_question[:] = False
    open_group = np.zeros(int(group.max()) + 1, bool)
    open_group[group[open_question]] = True
    unlabelled = labels == UNLABELLED
    open_idx = np.flatnonzero(open_question | unlabelled)
    clean_groups = np.flatnonzero(~open_group)
    rng = np.random.default_rng(params.seed)
    members = []
    for _ in range(math.ceil(params.n_models / params.folds)):
        parts = np.array_split(rng.permutation(clean_groups), params.folds)
        for held_out in parts:
            held = np.isin(group, held_out)
            train = np.flatnonzero(
                ~held & ~open_group[group] & ~unlabelled & ~(False if keep_out is None else keep_out)
            )
            scored = np.union1d(np.flatnonzero(held), open_idx)
            if train.size == 0 or len(np.unique(labels[train])) < 2 or scored.size == 0:
                continue  # too few groups to learn from (it could only guess), or nothing left to score
            members.append((train, scored))
    return members[: params.n_models]


def members_to_cover(members: list[tuple[np.ndarray, np.ndarray]], n: int) -> int:
    """How many of the planned members, in order, it takes until every sample has been scored at least once."""
    seen = np.zeros(n, bool)
    for count, (_, scored) in enumerate(members, 1):
        seen[scored] = True
        if seen.all():
            return count
    return len(members)


class Tally:
    """The members' outputs summed per sample as they come in (N rows; K classes), and how each member trained."""

    def __init__(self, n: int, n_classes: int):
        self.prob, self.class_sim = np.zeros((n, n_classes)), np.zeros((n, n_classes))
        self.strangeness, self.n_scored = np.zeros(n), np.zeros(n, np.int64)
        self.votes = np.zeros((n, n_classes), np.int64)
        self.curves, self.seconds, self.steps = [], [], []

    def add(self, scored: np.ndarray, out: MemberOutput) -> None:
        self.prob[scored] += out.probs
        self.strangeness[scored] += out.strangeness
        self.class_sim[scored] += out.class_sim
        self.n_scored[scored] += 1
        self.votes[scored, out.probs.argmax(1)] += 1
        if out.curve.size:  # heads have no training curve
            self.curves.append(out.curve)
        self.seconds.append(out.seconds)
        self.steps.append(out.steps)

    def means(self) -> dict[str, np.ndarray]:
        """TrainResult's member fields: means over the members that scored each sample, curves on LOSS_POINTS."""
        per_member = np.where(self.n_scored > 0, self.n_scored, np.nan)
        curves = np.zeros((0, LOSS_POINTS), np.float32)
        if self.curves:
            points = np.linspace(0, 1, LOSS_POINTS)
            curves = np.stack([np.interp(points, np.linspace(0, 1, len(c)), c) for c in self.curves])
        return dict(
            prob=self.prob / per_member[:, None],
            n_scored=self.n_scored,
            votes=self.votes,
            strangeness=self.strangeness / per_member,
            class_sim=self.class_sim / per_member[:, None],
            loss_curves=curves.astype(np.float32),
            member_steps=np.array(self.steps, np.int64),
            member_seconds=np.array(self.seconds),
        )


def train_members(images, labels, members, params: TrainParams, *, budget: Budget, progress_lines: bool) -> Tally:
    """Train the planned members (train indices, scored indices) in waves of parallel workers, each wave's members
    sharing the time left until every sample is scored (budget); later waves only while they fit. When the time
    would give each member less than MIN_WAVE_SECONDS, none trains: the nearest-neighbour evidence is all there is."""
    n, n_classes = len(labels), class_count(labels)
    tally = Tally(n, n_classes)
    device = resolve_device(params.device) if members else "cpu"
    n_jobs, threads = worker_layout(params, device)
    covering = members_to_cover(members, n)
    if not members or budget.limited and budget.per_wave(math.ceil(covering / n_jobs)) < MIN_WAVE_SECONDS:
        return tally
    start, wave_seconds = time.monotonic(), 0.0
    with member_pool(params.backend, n_jobs, params.scheduler) as run_wave:
        for first in range(0, len(members), n_jobs):
            if tally.n_scored.min() > 0 and budget.would_pass(wave_seconds):
                break
            wave = members[first : first + n_jobs]
            wave_start = time.monotonic()
            common = dict(n_classes=n_classes, params=params, threads=threads, device=device)
            # the waves still needed to score every sample share the time left
            common["seconds_allowed"] = budget.per_wave(math.ceil((covering - first) / n_jobs))
            calls = [
                (train_member, (images, labels, train, scored), common | {"seed": params.seed * 1000 + first + k})
                for k, (train, scored) in enumerate(wave)
            ]
            for (_, scored), out in zip(wave, run_wave(calls)):
                tally.add(scored, out)
            wave_seconds = time.monotonic() - wave_start
            samples = sum(tally.steps) * params.batch_size
            progress(len(tally.curves), len(members), samples, time.monotonic() - start, progress_lines)
    return tally


def train_heads(features: np.ndarray, labels: np.ndarray, group: np.ndarray, members, params: TrainParams) -> dict:
    """TrainResult's member fields from heads fitted on the features (stages/heads.py) in the members' folds: each
    on a member's training groups, scoring what that member would score; what the features say of each sample
    (strangeness, class similarities) against the samples the heads train on, never its own twin group."""
    n, n_classes = len(labels), class_count(labels)
    tally, x = Tally(n, n_classes), unit_rows(features)
    for (_, scored), probs in zip(members, head_probs(x, labels, members, params)):
        tally.add(scored, MemberOutput(probs, np.zeros(0, np.float32), 0.0, 0, np.zeros(len(scored)), 0.0))
    fields = tally.means()
    refs = np.unique(np.concatenate([train for train, _ in members])) if members else np.zeros(0, np.int64)
    if refs.size:
        refs = stranger_refs(refs, params.seed)
        strangeness, class_sim = feature_stats_apart(x, labels, group, refs, n_classes=n_classes)
        scored = fields["n_scored"] > 0
        fields["strangeness"] = np.where(scored, strangeness, np.nan)
        fields["class_sim"] = np.where(scored[:, None], class_sim, np.nan)
    return fields


def with_given_probs(result: dict[str, np.ndarray], pred_probs: np.ndarray, open_question: np.ndarray) -> dict:
    """The evidence fields with a user's probabilities for every sample outside the open questions, where members or
    heads that never saw a copy still decide: a model cross-validated the usual way saw one copy of an evil twin
    under the other label. One vote each, their strangeness neutral (1) where no features say more."""
    out = dict(result)
    rows = ~open_question
    out["prob"] = np.where(rows[:, None], pred_probs, result["prob"])
    out["n_scored"] = np.where(rows, np.maximum(result["n_scored"], 1), result["n_scored"])
    votes = np.zeros_like(result["votes"])
    votes[np.arange(len(pred_probs)), pred_probs.argmax(1)] = 1
    out["votes"] = np.where(rows[:, None], votes, result["votes"])
    out["strangeness"] = np.where(rows & np.isnan(result["strangeness"]), 1.0, result["strangeness"])
    out["class_sim"] = np.where(rows[:, None] & np.isnan(result["class_sim"]), pred_probs, result["class_sim"])
    return out


def scored_by(
    images, labels, group, params: TrainParams, *, external: External | None, budget: Budget, progress_lines, keep_out
) -> tuple[dict, str]:
    """(TrainResult's member fields, source): members (planned by plan_members) trained on the images, or, with
    features brought, heads on them; with probabilities brought, only the open questions need either (none when
    there are none) and the probabilities score the rest (with_given_probs)."""
    members = plan_members(group, labels, params, keep_out)
    given_probs = external is not None and external.pred_probs.size > 0
    given_features = external is not None and external.features.size > 0
    open_question = open_questions(group, labels, keep_out) & ~trains_through_conflicts(group, labels, params, keep_out)
    if given_probs:  # members or heads only for the open questions
        members = [(train, scored[open_question[scored]]) for train, scored in members] if open_question.any() else []
        members = [(train, scored) for train, scored in members if scored.size]
    if given_features:
        fields, source = train_heads(external.features, labels, group, members, params), "heads"
    else:
        tally = train_members(images, labels, members, params, budget=budget, progress_lines=progress_lines)
        fields, source = tally.means(), "members"
    if given_probs:
        return with_given_probs(fields, external.pred_probs, open_question), "pred_probs"
    return fields, source


def train_ensemble(
    images: np.ndarray,
    labels: np.ndarray,
    group: np.ndarray,
    params: TrainParams,
    *,
    budget: Budget = Budget(),
    progress_lines: bool = False,
    keep_out: np.ndarray | None = None,
    external: External | None = None,
) -> TrainResult:
    """Train the ensemble within `budget` (and params.time_budget_s from now, where that is sooner) and gather its
    out-of-bag evidence, with the evidence from pixels (stages/neighbours.py); keep_out (bool (N,)): samples that
    train nobody (the group stage's odd images). With evidence a user brought (external), heads or the user's
    probabilities take the members' place (scored_by)."""
    n, n_classes = len(labels), class_count(labels)
    budget = budget.within(params.time_budget_s)
    if external is not None and (external.pred_probs.size or external.features.size):
        nn_prob, nn_scored = np.zeros((n, n_classes)), np.zeros(n, bool)  # evidence a user brought decides instead
    else:
        nn_prob, nn_scored = neighbour_evidence(images, labels, group, n_classes, params.seed, keep_out)
    fields, source = scored_by(
        images,
        labels,
        group,
        params,
        external=external,
        budget=budget,
        progress_lines=progress_lines,
        keep_out=keep_out,
    )
    through = trains_through_conflicts(group, labels, params, keep_out)
    unlabelled = bool((labels == UNLABELLED).any())
    pooled = (
        similar_groups(images, group, params.seed) if n and (through or unlabelled) else np.zeros((0, POOL_K), np.int64)
    )
    far = pixel_strangeness(images, labels, group, seed=params.seed, keep_out=keep_out) if unlabelled else np.zeros(0)
    return TrainResult(
        **fields,
        nn_prob=nn_prob,
        nn_scored=nn_scored,
        open_question=open_questions(group, labels, keep_out),
        through_conflicts=through,
        similar_groups=pooled,
        pixel_strangeness=far,
        source=source,
    )
