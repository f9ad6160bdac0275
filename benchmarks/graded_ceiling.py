"""How few errors could the graded run make at all? A ceiling for issue 32's targets.

Errors in the conflicting twin groups and among the twin-less samples, by the rule, by a far better model, and by a
ranking's best cut chosen with the truth.

    python -m benchmarks graded_ceiling            # exact, orphans, orphans-10, 10 cases each: ~20 min on 2 cores
    python -m benchmarks graded_ceiling --families orphans --seeds 3

For MNIST families of benchmarks/harness/cases.py (seeds from 0, not the 100s that accuracy reports), each case
runs hw02.py's configuration in this process (the default members, its GRADED_AGGREGATE) and splits the errors
(missed + wrongly flagged) in two:
- in the conflicting twin groups: `rule` (what hw02.py flags there) against `reference`: each group's label that
  a reference CNN finds likeliest (summed log probability over the group's pictures), the rest flagged;
- among the samples no twin contradicts: `rule` against `best cut, members` (the members' calibrated margin, the
  given label's probability less the likeliest other's, the ranking the per-class counts use, cut where that
  case's errors are fewest, chosen with the truth: no rule that thresholds this ranking does better) and `best
  cut, reference` (the same for the reference's margin).
The reference is a CNN trained on 20,000 of MNIST's training digits (the cases come from its test digits): a model
that knows digits far better than members trained on 165 of them can, never shipped, a ceiling only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.harness.cases import FAMILIES, planted, spec
from benchmarks.harness.data import shared
from benchmarks.harness.scores import best_cut_errors, errors_within
from hw02 import GRADED_AGGREGATE
from pipeline.runner import find_suspects
from stages.noise_model import EPS, label_margin, softmax
from stages.train import TrainParams


def reference_model(n: int = 20_000, epochs: int = 2, seed: int = 0) -> torch.nn.Module:
    """A plain CNN on MNIST's first n training digits (about 98.5% on its test digits)."""
    torch.manual_seed(seed)
    images, labels = shared("mnist", "train")
    x = torch.tensor(images[:n, ..., 0], dtype=torch.float32)
    y = torch.tensor(labels[:n], dtype=torch.long)
    x = x[:, None] / 255
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * 49, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(epochs):
        for batch in torch.randperm(n).split(128):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


def reference_twin_flags(labels: np.ndarray, group: np.ndarray, asked: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Flags in the conflicting groups (asked) when each goes to the label of largest summed log prob."""
    flagged = np.zeros(len(labels), bool)
    for g in np.unique(group[asked]):
        rows = np.flatnonzero((group == g) & asked)
        candidates = np.unique(labels[rows])
        winner = candidates[np.argmax(np.log(prob[rows][:, candidates] + 1e-9).sum(0))]
        flagged[rows] = labels[rows] != winner
    return flagged


def case_errors(case, reference: torch.nn.Module) -> dict[str, tuple[int, int]]:
    """(wrong labels there, errors) by where and how decided: in the conflicting twin groups, by the rule and the
    reference; among the samples no twin contradicts (twin-less), by the rule and the best cuts of two rankings."""
    run = find_suspects(case.images, case.labels, train_params=TrainParams(), aggregate_params=GRADED_AGGREGATE)
    asked = run.oob.open_question & (run.groups.odd == "")
    wrong = np.isin(np.arange(len(case.labels)), case.truth)
    alone = run.oob.scored & ~run.oob.open_question
    calibrated = run.decisions.calibrated  # the given label's; the margin needs every class's
    members = softmax(np.log(np.nan_to_num(run.oob.prob, nan=1.0) + EPS) / run.decisions.temperature)
    assert np.allclose(members[np.arange(len(calibrated)), case.labels][alone], calibrated[alone])
    with torch.no_grad():
        pixels = torch.tensor(case.images[..., 0], dtype=torch.float32)[:, None] / 255
        ref = F.softmax(reference(pixels), 1).numpy()
    at_twins, at_alone = int((wrong & asked).sum()), int((wrong & alone).sum())
    return {
        "twin groups: rule": (at_twins, errors_within(run.decisions.flagged, wrong, asked)),
        "twin groups: reference": (
            at_twins,
            errors_within(reference_twin_flags(case.labels, run.groups.group, asked, ref), wrong, asked),
        ),
        "twin-less: rule": (at_alone, errors_within(run.decisions.flagged, wrong, alone)),
        "twin-less: best cut, members": (
            at_alone,
            best_cut_errors(label_margin(members, case.labels)[alone], wrong[alone]),
        ),
        "twin-less: best cut, reference": (
            at_alone,
            best_cut_errors(label_margin(ref, case.labels)[alone], wrong[alone]),
        ),
    }


def options(parser) -> None:
    parser.add_argument("--families", nargs="+", default=["exact", "orphans", "orphans-10"], choices=list(FAMILIES))
    parser.add_argument("--seeds", type=int, default=10)


def run(args, report) -> None:
    reference = reference_model()
    columns = {"family": "", "cases": "d", "decided": "", "wrong labels there": ".1f", "mean errors": ".2f"}
    wide = (["family", "cases"], "decided", ["mean errors"])
    table = report.table(columns | {"worst": "d"}, "Mean errors a case where and as decided", wide=wide)
    for family in args.families:
        if spec(family, 0)[0] != "mnist":
            raise SystemExit(f"graded_ceiling: {family} is not an MNIST family; the reference model knows digits only")
        cases = [case_errors(planted(family, seed), reference) for seed in range(args.seeds)]
        for decided in cases[0]:
            wrong, errors = zip(*(c[decided] for c in cases))
            values = [family, len(cases), decided, np.mean(wrong), np.mean(errors), max(errors)]
            table.add(dict(zip(table.columns, values)))
