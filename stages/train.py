"""Stage 3, train: an ensemble of subset models whose every prediction is out of bag, twins included (README,
"How it works: 3. train").

Members come in rounds. Each round splits the groups into folds at random (whole groups, so a sample and its copies
are always on the same side); each member trains on all folds but one and scores the one it left out. Groups whose
members disagree on the label never train anyone (unless they are the rule: trains_through_conflicts), so every
member scores them. Nearest neighbours give evidence before any member trains (nearest_neighbour_probs)."""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from stages.artifact import Artifact, Field, check_arrays
from stages.budget import Budget, StepClock
from stages.cores import usable_cores
from stages.labels import UNLABELLED, class_count, open_questions
from stages.params import MAX_SEED, Params, param
from stages.shifts import overlap_regions

MODEL_KINDS = ("linear", "mlp", "cnn", "conv4")  # stages/train_models.py builds each
BACKENDS = ("loky", "threading", "multiprocessing", "sequential", "dask")  # joblib's, and dask's through joblib
DEVICES = ("auto", "cpu", "cuda", "mps")  # "cuda:1" and so on pick one of several GPUs
LOSS_POINTS = 20  # each member's loss curve is averaged into this many points, so curves of any length line up
PROBE_STEPS = 10  # steps a member times (the first, warming up, left out) before it sets its step count; >= 2
REPLAN_STEPS = 200  # ... and times again, over enough steps to be sure, to set it anew
SCORE_CHUNK = 1024  # images scored per forward pass
MIN_WAVE_SECONDS = 4.0  # below this much time per wave, a member (process start, ~100 steps) loses to neighbours
NEIGHBOURS = 3  # a class's evidence is the mean similarity to its NEIGHBOURS most similar training images
NEIGHBOUR_REFS = 2000  # at most this many training images to compare with (a random subset beyond)
DOMINANT_RATIO = 3.0  # balance_classes "auto": balance where the largest class outnumbers the median class this much
NEIGHBOUR_CHECKS = 1000  # at most this many clean samples scored, to measure how often neighbours are right
STRANGER_K = 10  # a scored image's strangeness: mean feature distance to this many nearest training images ...
STRANGER_REFS = 5000  # ... among at most this many of the member's training images (a random subset beyond)
POOL_K = 5  # where conflicts are the rule: each group's this many most similar groups (README: pooling copies)
POOL_REFS = 2000  # ... among at most this many other groups (a random subset beyond) ...
POOL_FLOPS = 2e12  # ... and fewer where comparing every group (or sample: pixel_strangeness) would take more arithmetic
AFFINE_BELOW = 1000  # augment "auto": rotations and scalings for members that train on fewer images, shifts beyond
WATCH_SECONDS = 0.5  # a worker process checks this often that the process that started it is alive


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
        0.006, "Peak of AdamW's one-cycle schedule (docs: benchmarks, twin decisions by recipe).", within="(0, 10]"
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
    member_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))  # float64 (M,)

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
                "member_seconds": np.full(len(arrays["member_steps"]), np.nan),
            }
        )


def known_device(name: str) -> bool:
    """Is `name` one of DEVICES or cuda:N? (Whether it is there is resolve_device's question.)"""
    return name in DEVICES or re.fullmatch(r"cuda:\d+", name) is not None


def trains_through_conflicts(
    group: np.ndarray, labels: np.ndarray, params: TrainParams, keep_out: np.ndarray | None = None
) -> bool:
    """Do the open questions hold more than params.conflict_share of the labelled samples? Then members train on them
    too (README, "How it works": when every image has evil twins, the rest is too little to learn from)."""
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
    asked = open_questions(group, labels, keep_out)
    if trains_through_conflicts(group, labels, params, keep_out):
        asked[:] = False
    in_question = np.zeros(int(group.max()) + 1, bool)
    in_question[group[asked]] = True
    unlabelled = labels == UNLABELLED
    open_idx = np.flatnonzero(asked | unlabelled)
    clean_groups = np.flatnonzero(~in_question)
    rng = np.random.default_rng(params.seed)
    members = []
    for _ in range(math.ceil(params.n_models / params.folds)):
        parts = np.array_split(rng.permutation(clean_groups), params.folds)
        for held_out in parts:
            held = np.isin(group, held_out)
            train = np.flatnonzero(
                ~held & ~in_question[group] & ~unlabelled & ~(False if keep_out is None else keep_out)
            )
            scored = np.union1d(np.flatnonzero(held), open_idx)
            if train.size == 0 or len(np.unique(labels[train])) < 2 or scored.size == 0:
                continue  # too few groups to learn from (it could only guess), or nothing left to score
            members.append((train, scored))
    return members[: params.n_models]


def standardized_pixels(images: np.ndarray) -> np.ndarray:
    """float32 (N, H, W, C), each image centred and scaled to unit length: dot products are correlations."""
    x = images.astype(np.float32)
    x -= x.mean(axis=(1, 2, 3), keepdims=True)
    x /= np.maximum(np.sqrt((x * x).sum(axis=(1, 2, 3), keepdims=True)), 1e-6)
    return x


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """x (N, H, W, C) moved by (dy, dx) pixels, zeros (the mean, once standardized) filling in."""
    out = np.zeros_like(x)
    source, target = overlap_regions(x.shape[1], x.shape[2], dy, dx)
    out[:, target[0], target[1]] = x[:, source[0], source[1]]
    return out


def shifted_references(images: np.ndarray, max_shift: int) -> list[np.ndarray]:
    """The images standardised and moved by every shift of up to max_shift pixels: float32 (N, H*W*C) per shift,
    computed once for best_correlation to compare many queries with."""
    x = standardized_pixels(images)
    return [
        shifted(x, dy, dx).reshape(len(x), -1)
        for dy in range(-max_shift, max_shift + 1)
        for dx in range(-max_shift, max_shift + 1)
    ]


def best_correlation(images: np.ndarray, moved: list[np.ndarray]) -> np.ndarray:
    """float32 (len(images), len(references)): each image's correlation with each reference (shifted_references),
    best over the shifts."""
    q = standardized_pixels(images).reshape(len(images), -1)
    similarity = q @ moved[0].T
    for r in moved[1:]:
        np.maximum(similarity, q @ r.T, out=similarity)
    return similarity


def masked_similarities(
    images: np.ndarray, group: np.ndarray, query: np.ndarray, refs: np.ndarray, max_shift: int, chunk: int
):
    """Yields (rows, similarity float32 (len(rows), len(refs))): images[query], `chunk` at a time (rows: their
    slice of query), against images[refs] by best_correlation, -1 where a reference is in the query's own twin
    group. The references are standardised and shifted once."""
    moved = shifted_references(images[refs], max_shift)
    for start in range(0, len(query), chunk):
        part = query[start : start + chunk]
        similarity = best_correlation(images[part], moved)
        similarity[group[part][:, None] == group[refs][None, :]] = -1.0
        yield slice(start, start + len(part)), similarity


def top_mean(similarity: np.ndarray, k: int) -> np.ndarray:
    """float (rows,): the mean of each row's k largest values."""
    return -np.partition(-similarity, k - 1, axis=1)[:, :k].mean(1)


def reference_budget(images: np.ndarray, n_queries: int, max_shift: int, floor: int) -> int:
    """How many references best_correlation may compare n_queries images with inside POOL_FLOPS (at least floor)."""
    per_ref = 2 * (2 * max_shift + 1) ** 2 * int(np.prod(images.shape[1:])) * n_queries
    return max(floor, int(POOL_FLOPS / per_ref))


def nearest_neighbour_probs(
    images: np.ndarray,
    labels: np.ndarray,
    group: np.ndarray,
    query: np.ndarray,
    refs: np.ndarray,
    n_classes: int,
    max_shift: int = 1,
    sharpness: float = 50.0,
    chunk: int = 2048,
) -> np.ndarray:
    """Class probabilities (float64 (len(query), K)) of images[query] from the training images images[refs].

    A class's evidence is the mean correlation with its NEIGHBOURS most similar reference images, best over
    shifts of up to max_shift pixels; a query never compares with its own twin group. Probabilities are
    softmax(sharpness x evidence), to be calibrated downstream. No training: it answers in milliseconds on a
    graded case, where a member needs seconds (README, "How it works"). Queries go `chunk` at a time, so the
    similarity matrix stays small; the references are standardised and shifted once."""
    of_class = [labels[refs] == c for c in range(n_classes)]
    evidence = np.full((len(query), n_classes), -1.0)
    for rows, similarity in masked_similarities(images, group, query, refs, max_shift, chunk):
        for c, columns in enumerate(of_class):
            k = min(NEIGHBOURS, int(columns.sum()))
            if k:
                evidence[rows, c] = top_mean(similarity[:, columns], k)
    z = sharpness * (evidence - evidence.max(1, keepdims=True))
    return np.exp(z) / np.exp(z).sum(1, keepdims=True)


def neighbour_evidence(
    images: np.ndarray,
    labels: np.ndarray,
    group: np.ndarray,
    n_classes: int,
    seed: int,
    keep_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(nn_prob, nn_scored) for TrainResult: every open question, and up to NEIGHBOUR_CHECKS clean samples
    (so the aggregate stage can compare how often neighbours and members are right), against up to
    NEIGHBOUR_REFS clean samples, as members never train on an open question either (nor on keep_out or an
    unlabelled sample)."""
    n = len(labels)
    prob, scored = np.zeros((n, n_classes)), np.zeros(n, bool)
    conflicted = open_questions(group, labels, keep_out)
    clean = np.flatnonzero(~conflicted & (labels != UNLABELLED) & ~(False if keep_out is None else keep_out))
    if clean.size < 2:
        return prob, scored
    rng = np.random.default_rng(seed)
    refs = np.sort(rng.choice(clean, min(clean.size, NEIGHBOUR_REFS), replace=False))
    checks = np.sort(rng.choice(clean, min(clean.size, NEIGHBOUR_CHECKS), replace=False))
    query = np.union1d(np.flatnonzero(conflicted), checks)
    prob[query] = nearest_neighbour_probs(images, labels, group, query, refs, n_classes)
    scored[query] = True
    return prob, scored


def similar_groups(
    images: np.ndarray, group: np.ndarray, seed: int, k: int = POOL_K, max_shift: int = 1, chunk: int = 1024
) -> np.ndarray:
    """int64 (N, k): per sample, the k groups whose first image correlates best with its group's first image (best
    over shifts of up to max_shift pixels; among at most POOL_REFS other groups), most similar first; -1 where
    fewer exist. Where copies with conflicting labels are the rule, the aggregate stage pools these groups' labels,
    and where samples are unlabelled it spreads the labels to them (README, "How it works: 4. aggregate")."""
    n_groups = int(group.max()) + 1
    first = np.full(n_groups, len(group))
    np.minimum.at(first, group, np.arange(len(group)))
    rng = np.random.default_rng(seed)
    refs = np.sort(
        rng.choice(
            n_groups, min(n_groups, POOL_REFS, reference_budget(images, n_groups, max_shift, k + 1)), replace=False
        )
    )
    moved = shifted_references(images[first[refs]], max_shift)
    found = np.full((n_groups, k), -1, np.int64)
    take = min(k, len(refs) - 1)
    for start in range(0, n_groups, chunk):
        part = np.arange(start, min(start + chunk, n_groups))
        similarity = best_correlation(images[first[part]], moved)
        similarity[part[:, None] == refs[None, :]] = -np.inf
        if take > 0:
            best = np.argsort(-similarity, axis=1, kind="stable")[:, :take]
            found[part, :take] = refs[best]
    return found[group]


def pixel_strangeness(
    images: np.ndarray,
    labels: np.ndarray,
    group: np.ndarray,
    seed: int,
    keep_out: np.ndarray | None = None,
    max_shift: int = 1,
    chunk: int = 1024,
) -> np.ndarray:
    """float64 (N,): how far each image lies from the labelled pictures, in pixels: 1 - its mean correlation with
    its NEIGHBOURS most similar labelled images (best over shifts of up to max_shift pixels, among at most
    NEIGHBOUR_REFS of them and fewer past POOL_FLOPS, never its own twin group), over the median of that distance
    among the labelled images themselves. Where most samples are unlabelled, members trained on the few labels read
    a stranger confidently as a class; the pixels still tell it lies far from every labelled picture (README,
    "outliers and odd images")."""
    refs = np.flatnonzero((labels != UNLABELLED) & ~(False if keep_out is None else keep_out))
    if refs.size < 2:
        return np.ones(len(labels))
    affordable = reference_budget(images, len(labels), max_shift, NEIGHBOURS + 1)
    refs = np.sort(np.random.default_rng(seed).choice(refs, min(refs.size, NEIGHBOUR_REFS, affordable), replace=False))
    k = min(NEIGHBOURS, refs.size - 1)
    distance = np.empty(len(labels))
    for rows, similarity in masked_similarities(images, group, np.arange(len(labels)), refs, max_shift, chunk):
        distance[rows] = 1 - top_mean(similarity, k)
    return distance / max(float(np.median(distance[refs])), 1e-6)


def dominated(labels: np.ndarray) -> bool:
    """Does one class outnumber the median class DOMINANT_RATIO times? (balance_classes "auto" then balances.)"""
    counts = np.bincount(labels[labels != UNLABELLED])
    counts = counts[counts > 0]
    return bool(counts.max() > DOMINANT_RATIO * np.median(counts))


def class_weights(labels: np.ndarray, train_idx: np.ndarray, n_classes: int, balance: bool):
    """Per training sample, the weight that gives every class its share of the whole data set (balance: an
    equal share) in the batches drawn from train_idx."""
    import torch

    have = np.bincount(labels[train_idx], minlength=n_classes).astype(np.float64)
    want = (
        np.ones(n_classes)
        if balance
        else np.bincount(labels[labels != UNLABELLED], minlength=n_classes).astype(np.float64)
    )
    per_class = np.divide(want, have, out=np.zeros(n_classes), where=have > 0)
    return torch.as_tensor(per_class[labels[train_idx]])


class MemberOutput(NamedTuple):
    """What one member hands back about the samples it scored (score_idx), and about its training."""

    probs: np.ndarray  # float64 (n, K): class probabilities
    curve: np.ndarray  # float32 (<= LOSS_POINTS,): training loss, averaged over equal stretches of the steps
    seconds: float
    steps: int  # optimiser steps taken
    strangeness: np.ndarray  # float64 (n,): feature_evidence's
    class_sim: np.ndarray  # float64 (n, K): feature_evidence's


def train_member(
    images: np.ndarray,
    labels: np.ndarray,
    train_idx: np.ndarray,
    score_idx: np.ndarray,
    n_classes: int,
    params: TrainParams,
    seed: int,
    threads: int,
    seconds_allowed: float | None = None,
    device: str = "cpu",
) -> MemberOutput:
    """Train one model on train_idx and score score_idx with it.

    With seconds_allowed, the member times its first PROBE_STEPS steps and a forward pass over some of the images
    it must score and, if the planned steps would not fit (scoring included), takes as many as do, on a
    learning-rate schedule remade for them: a large data set on a slow machine gets shorter training rather than
    no answer before the deadline. At REPLAN_STEPS it times its steps again and sets their number anew (never above
    the plan), and where they still run slower than timed it stops when its time is up, late in the schedule.
    Batches are drawn and augmented on the CPU (the same random numbers whatever the device) and trained on
    `device`."""
    import torch

    from stages.train_models import build_model, random_affine, random_shift, standardize

    clock = StepClock(0, seconds_allowed)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x = standardize(images[train_idx])
    y = torch.as_tensor(labels[train_idx])
    model = build_model(params.model, x.shape[1], x.shape[2], x.shape[3], n_classes).to(device)
    steps = clock.planned = max(params.min_steps, math.ceil(params.epochs * len(train_idx) / params.batch_size))
    optimiser = torch.optim.AdamW(model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, params.learning_rate, total_steps=steps)
    balance = dominated(labels) if params.balance_classes == "auto" else params.balance_classes
    weights = class_weights(labels, train_idx, n_classes, balance)
    conv = params.model in ("cnn", "conv4")
    shift = params.max_shift if conv else 0
    kind = params.augment if params.augment != "auto" else "affine" if len(train_idx) < AFFINE_BELOW else "shift"
    if conv and kind == "affine":

        def augment(batch):
            return random_affine(batch, shift, generator, params.max_rotation, params.max_scale)
    else:

        def augment(batch):
            return random_shift(batch, shift, generator)

    losses = torch.empty(steps)
    model.train()
    step = 0
    while step < steps:
        batch = torch.multinomial(weights, params.batch_size, replacement=True, generator=generator)
        loss = torch.nn.functional.cross_entropy(
            model(augment(x[batch]).to(device)), y[batch].to(device), label_smoothing=params.label_smoothing
        )
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses[step] = loss.detach().cpu()
        step += 1
        if step == 1:
            clock.warmed_up()
        if step > REPLAN_STEPS and clock.out_of_time():
            steps = step  # slower than timed: stop where the time ends, late in the schedule (a small learning rate)
            break
        if step in (PROBE_STEPS, REPLAN_STEPS) and clock.timed and step < steps:
            per_step = clock.per_step(step)
            if step == PROBE_STEPS:
                clock.scoring = scoring_seconds(model, images, score_idx, min(STRANGER_REFS, len(train_idx)), device)
            planned = clock.affordable(step, per_step)
            if planned != steps:
                steps = planned
                schedule = torch.optim.lr_scheduler.OneCycleLR(
                    optimiser, params.learning_rate, total_steps=steps - step
                )
    losses = losses[:steps]
    probs, asked = predict(model, images, score_idx, device)
    strangeness, class_sim = feature_evidence(model, images, labels, train_idx, asked, n_classes, seed, device)
    curve = np.array([chunk.mean() for chunk in np.array_split(losses.numpy(), LOSS_POINTS) if chunk.size])
    return MemberOutput(
        probs.astype(np.float64), curve.astype(np.float32), clock.seconds(), steps, strangeness, class_sim
    )


def feature_evidence(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    train_idx: np.ndarray,
    asked: np.ndarray,
    n_classes: int,
    seed: int,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """What the member's feature space says of each scored image (README, "How it works": outliers and odd images),
    from its features `asked` (predict's) and those of up to STRANGER_REFS of its training images:
    strangeness float (n,): the mean cosine distance to its STRANGER_K nearest training images, over the median of
    that distance among the scored images, so members of different scales average; class_sim float (n, K): the
    cosine similarity to each class's mean training feature (0 for a class the member did not see), coordinates
    every member shares, whatever its own feature space (the report's map)."""
    if len(asked) == 0:
        return np.zeros(0), np.zeros((0, n_classes))
    refs = train_idx
    if refs.size > STRANGER_REFS:
        refs = np.sort(np.random.default_rng(seed).choice(refs, STRANGER_REFS, replace=False))
    _, known = predict(model, images, refs, device)
    k = min(STRANGER_K, len(refs))
    distance = np.empty(len(asked))
    for s0 in range(0, len(asked), SCORE_CHUNK):
        closest = -np.partition(-(asked[s0 : s0 + SCORE_CHUNK] @ known.T), k - 1, axis=1)[:, :k]
        distance[s0 : s0 + SCORE_CHUNK] = 1 - closest.mean(axis=1)
    centres = np.zeros((n_classes, known.shape[1]), np.float32)
    np.add.at(centres, labels[refs], known)
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    return distance / max(float(np.median(distance)), 1e-6), (asked @ centres.T).astype(np.float64)


def predict(model, images: np.ndarray, idx: np.ndarray, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(class probabilities float32 (len(idx), K), features float32 (len(idx), D)) of images[idx], in one pass in
    chunks of SCORE_CHUNK without gradients on `device` (the model's). The features are the unit-length outputs of
    the layer before the last, what the model classifies by. The model is left in the mode it was in."""
    import torch

    from stages.train_models import standardize

    was_training = model.training
    model.eval()
    body, head = model[:-1], model[-1]
    probs, features = [], []
    with torch.no_grad():
        for chunk in standardize(images[idx]).split(SCORE_CHUNK):
            hidden = body(chunk.to(device)).flatten(1)
            probs.append(head(hidden).softmax(1).cpu())
            features.append(torch.nn.functional.normalize(hidden, dim=1).cpu())
    model.train(was_training)
    return torch.cat(probs).numpy(), torch.cat(features).numpy()


def scoring_seconds(model, images: np.ndarray, score_idx: np.ndarray, n_refs: int = 0, device: str = "cpu") -> float:
    """How long scoring score_idx will take, timed on one chunk of them (after an untimed warm-up pass, whose
    one-off cost would otherwise be multiplied by the number of chunks). Scoring runs in large chunks without
    gradients, far cheaper per image than a training step: guessing it from the step time made members on large
    data give up nearly all their steps to a scoring cost ten times too high. With n_refs, feature_evidence's pass
    is counted too: n_refs training images more to run through the model, and each scored image's nearest among
    them (timed on the chunk against itself, scaled by n_refs)."""
    sample = score_idx[:SCORE_CHUNK]
    if sample.size == 0:
        return 0.0
    predict(model, images, sample[:8], device)
    began = time.perf_counter()
    _, features = predict(model, images, sample, device)
    seconds = (time.perf_counter() - began) * (len(score_idx) + n_refs) / len(sample)
    if n_refs:
        began = time.perf_counter()
        np.partition(-(features @ features.T), min(STRANGER_K, len(sample)) - 1, axis=1)
        seconds += (time.perf_counter() - began) * len(score_idx) / len(sample) * n_refs / len(sample)
    return seconds


def members_to_cover(members: list[tuple[np.ndarray, np.ndarray]], n: int) -> int:
    """How many of the planned members, in order, it takes until every sample has been scored at least once."""
    seen = np.zeros(n, bool)
    for count, (_, scored) in enumerate(members, 1):
        seen[scored] = True
        if seen.all():
            return count
    return len(members)


def resolve_device(name: str) -> str:
    """The torch device a member uses: "auto" becomes "cuda" where a CUDA GPU is, else "mps" where Apple's is,
    else "cpu"; a device asked for by name must be there (InputError naming what is missing). Where no GPU driver
    is present at all, "auto" is "cpu" without importing torch (2 s that the graded run would rather keep)."""
    if name == "cpu" or (
        name == "auto"
        and sys.platform != "darwin"
        and not any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/kfd"))
    ):
        return "cpu"
    import torch

    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    from stages.errors import InputError

    if name.startswith("cuda") and not (cuda and int(name.partition(":")[2] or 0) < torch.cuda.device_count()):
        raise InputError("train.device", f"{name}: no such CUDA GPU here ({torch.cuda.device_count()} found)")
    if name == "mps" and not mps:
        raise InputError("train.device", "mps: no Apple GPU here")
    return name


def worker_layout(params: TrainParams, device: str = "cpu") -> tuple[int, int]:
    """(workers, torch threads per worker) so that workers x threads never exceed this machine's cores.
    A dask cluster has cores of its own: there n_jobs is taken as given, one thread each. A GPU is driven by one
    process (several would fight over it), with the cores for its data loading."""
    cores = usable_cores()
    if device != "cpu":
        return 1, cores
    if params.backend == "dask":
        return (cores if params.n_jobs == -1 else params.n_jobs), 1
    n_jobs = cores if params.n_jobs == -1 else min(params.n_jobs, cores)
    return n_jobs, max(1, cores // n_jobs)


def _progress(done: int, total: int, samples: int, seconds: float, lines: bool) -> None:
    """A live line on a terminal; with `lines`, one line per finished wave elsewhere (a log, `dvc repro`)."""
    rate = samples / seconds if seconds > 0 else 0.0
    message = f"train: {done}/{total} members, {rate:,.0f} samples/s, {seconds:.0f} s"
    if sys.stderr.isatty():
        print("\r" + message, end="\n" if done == total else "", file=sys.stderr, flush=True)
    elif lines:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def dask_client(scheduler: str | None, n_workers: int):
    """A dask client for the dask backend: connected to `scheduler` where given, else the one this process has
    open, else a local cluster of n_workers single-threaded processes, closed afterwards."""
    from stages.errors import InputError

    try:
        from distributed import Client, LocalCluster, get_client
    except ImportError:
        raise InputError(
            "train.backend", "dask needs the distributed package (pip install 'dask[distributed]')"
        ) from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=10)
        except OSError as exc:
            raise InputError("train.scheduler", f"no dask scheduler answers at {scheduler} ({exc})") from None
        with client:
            yield client
        return
    try:
        client = get_client()
    except ValueError:  # no client open: a cluster of our own, for this run only
        client = None
    if client is not None:
        yield client
        return
    with (
        LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client


_watching = False


def die_with_parent(parent: int) -> None:
    """In a worker process that `parent` started (loky's, the standard library's), a daemon thread that ends the
    process within WATCH_SECONDS of its parent's death, however the parent died: a harness that kills a run on
    timeout (SIGKILL, SIGTERM) leaves no orphan members computing for minutes. Elsewhere (the parent itself, dask's
    workers under their nanny) it does nothing."""
    global _watching
    if _watching or os.getpid() == parent or os.getppid() != parent:
        return
    _watching = True

    def watch() -> None:
        while os.getppid() == parent:  # an orphan is handed to init or a subreaper: its parent id changes
            time.sleep(WATCH_SECONDS)
        os._exit(1)

    import threading

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def in_worker(parent: int, function, args: tuple):
    """function(*args) in a pool's worker, which dies with `parent` (die_with_parent)."""
    die_with_parent(parent)
    return function(*args)


@contextlib.contextmanager
def member_pool(backend: str, n_jobs: int, scheduler: str | None = None):
    """A function that runs a wave of (function, args) calls in parallel and returns their results in order:
    through joblib (any of its backends; for dask, a client of `scheduler` or a local cluster, see
    dask_client) when it is installed, else through the standard library's process pool, so the graded file
    runs where only torch and numpy are (results are the same either way)."""
    try:
        from joblib import Parallel, delayed, parallel_config
    except ImportError:
        Parallel = None
    if Parallel is not None:
        # parallel_config, not Parallel(backend=...): only it registers the optional dask backend on first use.
        with (
            dask_client(scheduler, n_jobs) if backend == "dask" else contextlib.nullcontext(),
            parallel_config(backend=backend, n_jobs=n_jobs),
            Parallel() as parallel,
        ):
            yield lambda calls: parallel(delayed(in_worker)(os.getpid(), function, args) for function, args in calls)
    elif n_jobs == 1:
        yield lambda calls: [function(*args) for function, args in calls]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            yield lambda calls: [
                job.result()
                for job in [pool.submit(in_worker, os.getpid(), function, args) for function, args in calls]
            ]


def train_ensemble(
    images: np.ndarray,
    labels: np.ndarray,
    group: np.ndarray,
    params: TrainParams,
    budget: Budget = Budget(),
    progress_lines: bool = False,
    keep_out: np.ndarray | None = None,
) -> TrainResult:
    """Train the ensemble within `budget` (and params.time_budget_s from now, where that is sooner); keep_out
    (bool (N,)): samples that train nobody (the group stage's odd images).
    When the time left would give each member less than MIN_WAVE_SECONDS, none trains: the nearest-neighbour
    evidence is all there is."""
    n, n_classes = len(labels), class_count(labels)
    budget = budget.within(params.time_budget_s)
    nn_prob, nn_scored = neighbour_evidence(images, labels, group, n_classes, params.seed, keep_out)
    members = plan_members(group, labels, params, keep_out)
    device = resolve_device(params.device) if members else "cpu"
    n_jobs, threads = worker_layout(params, device)
    covering = members_to_cover(members, n)
    if budget.limited and budget.per_wave(math.ceil(covering / n_jobs)) < MIN_WAVE_SECONDS:
        members = []
    prob_sum, strange_sum, class_sim_sum = np.zeros((n, n_classes)), np.zeros(n), np.zeros((n, n_classes))
    n_scored, votes = np.zeros(n, np.int64), np.zeros((n, n_classes), np.int64)
    curves, seconds, steps = [], [], []
    start = time.monotonic()
    wave_seconds = 0.0
    with member_pool(params.backend, n_jobs, params.scheduler) if members else contextlib.nullcontext() as run_wave:
        for first in range(0, len(members), n_jobs):
            if n_scored.min() > 0 and budget.would_pass(wave_seconds):
                break
            wave = members[first : first + n_jobs]
            wave_start = time.monotonic()
            # the waves still needed to score every sample share the time left
            allowed = budget.per_wave(math.ceil((covering - first) / n_jobs))
            outputs = run_wave(
                [
                    (
                        train_member,
                        (
                            images,
                            labels,
                            train,
                            scored,
                            n_classes,
                            params,
                            params.seed * 1000 + first + k,
                            threads,
                            allowed,
                            device,
                        ),
                    )
                    for k, (train, scored) in enumerate(wave)
                ]
            )
            wave_seconds = time.monotonic() - wave_start
            for (_, scored), out in zip(wave, outputs):
                prob_sum[scored] += out.probs
                strange_sum[scored] += out.strangeness
                class_sim_sum[scored] += out.class_sim
                n_scored[scored] += 1
                votes[scored, out.probs.argmax(1)] += 1
                curves.append(out.curve)
                seconds.append(out.seconds)
                steps.append(out.steps)
            _progress(
                len(curves), len(members), sum(steps) * params.batch_size, time.monotonic() - start, progress_lines
            )
    per_member = np.where(n_scored > 0, n_scored, np.nan)
    loss_curves = np.zeros((0, LOSS_POINTS), np.float32)
    if curves:
        loss_curves = np.stack(
            [np.interp(np.linspace(0, 1, LOSS_POINTS), np.linspace(0, 1, len(c)), c) for c in curves]
        ).astype(np.float32)
    through = trains_through_conflicts(group, labels, params, keep_out)
    unlabelled = bool((labels == UNLABELLED).any())
    pooled = (
        similar_groups(images, group, params.seed) if n and (through or unlabelled) else np.zeros((0, POOL_K), np.int64)
    )
    far = pixel_strangeness(images, labels, group, params.seed, keep_out) if unlabelled else np.zeros(0)
    return TrainResult(
        prob=prob_sum / per_member[:, None],
        n_scored=n_scored,
        votes=votes,
        strangeness=strange_sum / per_member,
        class_sim=class_sim_sum / per_member[:, None],
        nn_prob=nn_prob,
        nn_scored=nn_scored,
        open_question=open_questions(group, labels, keep_out),
        through_conflicts=through,
        similar_groups=pooled,
        pixel_strangeness=far,
        loss_curves=loss_curves,
        member_steps=np.array(steps, np.int64),
        member_seconds=np.array(seconds),
    )
