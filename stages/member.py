"""One ensemble member: a model trained on some twin groups that scores the others (docs: "How it works: train").
It runs in a worker process (stages/workers.py), so everything it needs comes in its arguments."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from stages.budget import StepClock
from stages.labels import UNLABELLED

if TYPE_CHECKING:
    from stages.train import TrainParams

LOSS_POINTS = 20  # each member's loss curve is averaged into this many points, so curves of any length line up
PROBE_STEPS = 10  # steps a member times (the first, warming up, left out) before it sets its step count; >= 2
REPLAN_STEPS = 200  # ... and times again, over enough steps to be sure, to set it anew
SCORE_CHUNK = 1024  # images scored per forward pass
DOMINANT_RATIO = 3.0  # balance_classes "auto": balance where the largest class outnumbers the median class this much
STRANGER_K = 10  # a scored image's strangeness: mean feature distance to this many nearest training images ...
STRANGER_REFS = 5000  # ... among at most this many of the member's training images (a random subset beyond)
AFFINE_BELOW = 1000  # augment "auto": rotations and scalings for members that train on fewer images, shifts beyond


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
    *,
    n_classes: int,
    params: TrainParams,
    seed: int,
    threads: int,
    seconds_allowed: float | None = None,
    device: str = "cpu",
) -> MemberOutput:
    """Train one model on train_idx and score score_idx with it.

    With seconds_allowed, the member fits its steps to the time (fit). Batches are drawn and augmented on the CPU
    (the same random numbers whatever the device) and trained on `device`."""
    import torch

    from stages.train_models import build_model, standardize

    clock = StepClock(0, seconds_allowed)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x = standardize(images[train_idx])
    model = build_model(params.model, x.shape[1], x.shape[2], x.shape[3], n_classes).to(device)
    balance = dominated(labels) if params.balance_classes == "auto" else params.balance_classes
    weights = class_weights(labels, train_idx, n_classes, balance)
    augment = augmenter(params, len(train_idx), generator)
    y = torch.as_tensor(labels[train_idx])

    def batch():
        drawn = torch.multinomial(weights, params.batch_size, replacement=True, generator=generator)
        return augment(x[drawn]), y[drawn]

    def scoring() -> float:
        return scoring_seconds(model, images, score_idx, min(STRANGER_REFS, len(train_idx)), device)

    losses = fit(model, batch, params=params, clock=clock, device=device, scoring=scoring, n_train=len(train_idx))
    probs, features = predict(model, images, score_idx, device)
    strangeness, class_sim = feature_evidence(
        model, images, labels, train_idx, features, n_classes=n_classes, seed=seed, device=device
    )
    curve = np.array([chunk.mean() for chunk in np.array_split(losses, LOSS_POINTS) if chunk.size])
    return MemberOutput(
        probs.astype(np.float64), curve.astype(np.float32), clock.seconds(), len(losses), strangeness, class_sim
    )


def augmenter(params: TrainParams, n_train: int, generator):
    """The member's augmentation of a batch (train.augment): random shifts, or shifts, rotations and scalings for
    conv models that train on fewer than AFFINE_BELOW images under "auto"."""
    from stages.train_models import random_affine, random_shift

    conv = params.model in ("cnn", "conv4")
    shift = params.max_shift if conv else 0
    kind = params.augment if params.augment != "auto" else "affine" if n_train < AFFINE_BELOW else "shift"
    if conv and kind == "affine":
        return lambda batch: random_affine(batch, shift, generator, params.max_rotation, params.max_scale)
    return lambda batch: random_shift(batch, shift, generator)


def fit(model, batch, *, params: TrainParams, clock: StepClock, device: str, scoring, n_train: int) -> np.ndarray:
    """Train `model` on batches from batch() (images, labels) with AdamW on a one-cycle schedule; returns the loss
    of each step taken. With a timed clock, the member times its first PROBE_STEPS steps and its scoring (scoring())
    and, if the planned steps would not fit, takes as many as do, on a schedule remade for them: a large data set
    on a slow machine gets shorter training rather than no answer before the deadline. At REPLAN_STEPS it times its
    steps again and sets their number anew (never above the plan), and where they still run slower than timed it
    stops when its time is up, late in the schedule."""
    import torch

    steps = clock.planned = max(params.min_steps, math.ceil(params.epochs * n_train / params.batch_size))
    optimiser = torch.optim.AdamW(model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, params.learning_rate, total_steps=steps)
    losses = torch.empty(steps)
    model.train()
    step = 0
    while step < steps:
        images, labels = batch()
        loss = torch.nn.functional.cross_entropy(
            model(images.to(device)), labels.to(device), label_smoothing=params.label_smoothing
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
                clock.scoring = scoring()
            planned = clock.affordable(step, per_step)
            if planned != steps:
                steps = planned
                schedule = torch.optim.lr_scheduler.OneCycleLR(
                    optimiser, params.learning_rate, total_steps=steps - step
                )
    return losses[:steps].numpy()


def feature_evidence(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    train_idx: np.ndarray,
    features: np.ndarray,
    *,
    n_classes: int,
    seed: int,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """What the member's feature space says of each scored image (docs: "How it works: Members"),
    from its features of the scored images (predict's) and those of up to STRANGER_REFS of its training images:
    strangeness float (n,): the mean cosine distance to its STRANGER_K nearest training images, over the median of
    that distance among the scored images, so members of different scales average; class_sim float (n, K): the
    cosine similarity to each class's mean training feature (0 for a class the member did not see), coordinates
    every member shares, whatever its own feature space (the report's map)."""
    if len(features) == 0:
        return np.zeros(0), np.zeros((0, n_classes))
    refs = stranger_refs(train_idx, seed)
    _, known = predict(model, images, refs, device)
    return feature_stats(features, known, labels[refs], n_classes)


def stranger_refs(train_idx: np.ndarray, seed: int) -> np.ndarray:
    """The training images a scored image is compared with: all, or STRANGER_REFS of them drawn at random."""
    if train_idx.size > STRANGER_REFS:
        return np.sort(np.random.default_rng(seed).choice(train_idx, STRANGER_REFS, replace=False))
    return train_idx


def feature_stats(
    features: np.ndarray, known: np.ndarray, known_labels: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(strangeness float (n,), class_sim float (n, K)) of unit-length features (n, D) against unit-length training
    features `known` with their labels (feature_evidence says what each means)."""
    k = min(STRANGER_K, len(known))
    distance = np.empty(len(features))
    for s0 in range(0, len(features), SCORE_CHUNK):
        closest = -np.partition(-(features[s0 : s0 + SCORE_CHUNK] @ known.T), k - 1, axis=1)[:, :k]
        distance[s0 : s0 + SCORE_CHUNK] = 1 - closest.mean(axis=1)
    centres = np.zeros((n_classes, known.shape[1]), np.float32)
    np.add.at(centres, known_labels, known)
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    return distance / max(float(np.median(distance)), 1e-6), (features @ centres.T).astype(np.float64)


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
