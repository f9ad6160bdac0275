"""The whole pipeline in one process, no files and no cache: what hw02.py and `twins run` call.

It runs the very same stage functions as the DVC stages, in the same order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from stages.aggregate import AggregateParams, Decisions, decide
from stages.budget import Budget
from stages.external import External
from stages.group import GroupParams, GroupResult, group_images
from stages.train import TrainParams, TrainResult, train_ensemble


@dataclass
class RunResult:
    groups: GroupResult
    oob: TrainResult
    decisions: Decisions
    seconds: dict[str, float] = field(default_factory=dict)


def describe_training(oob: TrainResult, model: str) -> str:
    """One log line's worth: members, the fewest and most steps any took (fewer when time ran short), coverage."""
    if oob.source == "heads":
        return f"{len(oob.member_steps)} heads on the features given"
    if oob.source == "pred_probs" and not len(oob.member_steps):
        return "the probabilities given, no member needed (no twin conflicts)"
    if not len(oob.member_steps):
        return f"no {model} members trained"
    steps = oob.member_steps
    step_range = f"{steps.min()}" if steps.min() == steps.max() else f"{steps.min()}-{steps.max()}"
    return (
        f"{len(steps)} {model} members of {step_range} steps, "
        f"every sample scored {int(oob.n_scored.min()) if len(oob.n_scored) else 0}+ times"
    )


def find_suspects(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    group_params: GroupParams = GroupParams(),
    train_params: TrainParams = TrainParams(),
    aggregate_params: AggregateParams = AggregateParams(),
    external: External | None = None,
    budget: Budget = Budget(),
    log=lambda message: None,
    progress_lines: bool = False,
) -> RunResult:
    """Group, train, decide; with `external`, the evidence a user brought (stages/external.py), in place of members
    where it can be. `budget` bounds the training; `log` gets progress (and with progress_lines the train
    stage prints a line per wave of members on stderr even where it is no terminal)."""
    seconds = {}

    start = time.monotonic()
    groups = group_images(images, group_params)
    seconds["group"] = time.monotonic() - start
    n_groups = int(groups.group.max()) + 1
    log(
        f"group: {len(labels)} samples in {n_groups} groups ({len(labels) - n_groups} copies), "
        f"threshold {groups.threshold:.4g}, {seconds['group']:.2f} s"
    )

    start = time.monotonic()
    oob = train_ensemble(
        images,
        labels,
        groups.group,
        train_params,
        budget=budget,
        progress_lines=progress_lines,
        keep_out=groups.odd != "",
        external=external,
    )
    seconds["train"] = time.monotonic() - start
    log(f"train: {describe_training(oob, train_params.model)}, {seconds['train']:.2f} s")

    start = time.monotonic()
    decisions = decide(labels, groups.group, oob, aggregate_params, odd=groups.odd)
    seconds["aggregate"] = time.monotonic() - start
    log(
        f"aggregate: {int((decisions.reason == 'twin').sum())} flagged in conflicting twin groups, "
        f"{int((decisions.reason == 'wrong_label').sum())} without a twin (estimated wrong labels "
        f"{decisions.estimate[0]:.1f}, {decisions.estimate[1]:.1f}-{decisions.estimate[2]:.1f}; flagged above "
        f"{decisions.cut:.3g}), {int(decisions.worth_a_look.sum())} worth a look; {int(decisions.outlier.sum())} "
        f"outliers, {int((decisions.odd != '').sum())} odd images"
    )
    if decisions.note:
        log(f"note: {decisions.note}")
    return RunResult(groups, oob, decisions, seconds)
