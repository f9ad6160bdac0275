"""How few errors could the graded run make at all? A ceiling for issue 32's targets.

    python -m benchmarks.graded_ceiling            # exact, orphans, orphans-10, 10 cases each: ~20 min on 2 cores
    python -m benchmarks.graded_ceiling --families orphans --seeds 3

For MNIST families of benchmarks/cases.py (seeds from 0, not the 100s that benchmarks.accuracy reports), each case
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

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.cases import spec
from benchmarks.machine import describe
from benchmarks.natural_noise import SHARED
from hw02 import GRADED_AGGREGATE
from pipeline.plant import load_source, plant
from pipeline.runner import find_suspects
from stages.decode_idx import read_images, read_labels
from stages.noise_model import EPS, label_margin, softmax
from stages.train import TrainParams


def reference_model(n: int = 20_000, epochs: int = 2, seed: int = 0) -> torch.nn.Module:
    """A plain CNN on MNIST's first n training digits (about 98.5% on its test digits)."""
    torch.manual_seed(seed)
    x = torch.tensor(read_images(SHARED / "mnist-train-images-idx3-ubyte.gz")[:n, ..., 0], dtype=torch.float32)
    y = torch.tensor(read_labels(SHARED / "mnist-train-labels-idx1-ubyte.gz")[:n], dtype=torch.long)
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


def best_cut_errors(score: np.ndarray, wrong: np.ndarray) -> int:
    """Fewest misses + false flags of any cut of the ranking that flags the lowest scores (wrong: bool)."""
    hit = wrong[np.argsort(score, kind="stable")]
    found = np.r_[0, np.cumsum(hit)]
    flagged = np.arange(len(hit) + 1)
    return int(((hit.sum() - found) + (flagged - found)).min())


def twin_errors(labels: np.ndarray, group: np.ndarray, asked: np.ndarray, prob: np.ndarray, wrong: np.ndarray) -> int:
    """Errors in the conflicting groups (asked) when each goes to the label of largest summed log prob."""
    flagged = np.zeros(len(labels), bool)
    for g in np.unique(group[asked]):
        rows = np.flatnonzero((group == g) & asked)
        candidates = np.unique(labels[rows])
        winner = candidates[np.argmax(np.log(prob[rows][:, candidates] + 1e-9).sum(0))]
        flagged[rows] = labels[rows] != winner
    return int((asked & (flagged != wrong)).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=["exact", "orphans", "orphans-10"])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    source = load_source("mnist")
    reference = reference_model()
    print(describe())
    print(
        "| family | cases | twin groups: rule | reference | twin-less wrong labels | twin-less: rule | "
        "best cut, members | best cut, reference |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for family in args.families:
        errors = {"twin rule": [], "twin reference": [], "rule": [], "members": [], "reference": []}
        wrong_count = []
        for seed in range(args.seeds):
            name, case_spec = spec(family, seed)
            assert name == "mnist", "the reference model knows digits only"
            case = plant(*source, case_spec)
            run = find_suspects(case.images, case.labels, train_params=TrainParams(), aggregate_params=GRADED_AGGREGATE)
            asked = run.oob.open_question & (run.groups.odd == "")
            wrong_all = np.isin(np.arange(len(case.labels)), case.truth)
            errors["twin rule"].append(int((asked & (run.decisions.flagged != wrong_all)).sum()))
            alone = np.flatnonzero(run.oob.scored & ~run.oob.open_question)
            wrong = wrong_all[alone]
            flagged = run.decisions.flagged[alone]
            errors["rule"].append(int((wrong & ~flagged).sum() + (~wrong & flagged).sum()))
            calibrated = run.decisions.calibrated  # the given label's; the margin needs every class's
            members = softmax(np.log(np.nan_to_num(run.oob.prob, nan=1.0) + EPS) / run.decisions.temperature)
            assert np.allclose(members[np.arange(len(calibrated)), case.labels][alone], calibrated[alone])
            errors["members"].append(best_cut_errors(label_margin(members, case.labels)[alone], wrong))
            with torch.no_grad():
                pixels = torch.tensor(case.images[..., 0], dtype=torch.float32)[:, None] / 255
                ref = F.softmax(reference(pixels), 1).numpy()
            errors["twin reference"].append(twin_errors(case.labels, run.groups.group, asked, ref, wrong_all))
            errors["reference"].append(best_cut_errors(label_margin(ref, case.labels)[alone], wrong))
            wrong_count.append(int(wrong.sum()))
        cells = [f"{np.mean(errors[k]):.2f} (worst {max(errors[k])})" for k in errors]
        print(
            f"| {family} | {args.seeds} | {cells[0]} | {cells[1]} | {np.mean(wrong_count):.1f} | "
            + " | ".join(cells[2:])
            + " |",
            flush=True,
        )
    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
