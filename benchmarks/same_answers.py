"""Does a change keep the answers? Save every case's groups, out-of-bag probabilities and flags, then compare.

    python -m benchmarks.same_answers save before/          # at the old commit (a git worktree)
    python -m benchmarks.same_answers save after/           # at the new one
    python -m benchmarks.same_answers compare before/ after/

The cases are the bundled sample and `--seeds` planted cases of every small family (benchmarks.cases), run
in one process with the default parameters and no deadline, so a run is reproducible. `compare` prints one
line per case that moved (groups, probabilities or flags) and a count per family.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks.cases import SMALL, spec
from pipeline.plant import load_source, plant
from pipeline.runner import find_suspects

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def cases(seeds: int, first_seed: int):
    """(name, images, labels) of the bundled sample, then of each small family's planted cases."""
    from stages.decode_idx import read_images, read_labels  # where it lived before the stages/ split

    yield "sample", read_images(SAMPLE / "images-idx3-ubyte.gz"), read_labels(SAMPLE / "labels-idx1-ubyte.gz")
    for family in SMALL:
        for seed in range(first_seed, first_seed + seeds):
            case = plant(*load_source(spec(family, seed)[0]), spec(family, seed)[1])
            yield f"{family}-{seed}", case.images, case.labels


def save(folder: Path, seeds: int, first_seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, images, labels in cases(seeds, first_seed):
        if (folder / f"{name}.npz").exists():
            continue
        run = find_suspects(images, labels)
        np.savez(
            folder / f"{name}.npz",
            group=run.groups.group,
            threshold=run.groups.threshold,
            prob=run.oob.prob,
            n_scored=run.oob.n_scored,
            flagged=run.decisions.flagged,
        )
        print(f"{name}: {int(run.decisions.flagged.sum())} flagged", file=sys.stderr, flush=True)


def mean_prob(saved) -> np.ndarray:
    """The mean out-of-bag probabilities of a saved case (nan rows: unscored), from either format: the mean itself
    or, as saved before 2026-12-05, the sums over the members."""
    if "prob" in saved:
        return saved["prob"]
    return saved["prob_sum"] / np.where(saved["n_scored"] > 0, saved["n_scored"], np.nan)[:, None]


def compare(before: Path, after: Path) -> None:
    """One line per case whose groups, out-of-bag probabilities or flags moved; then per family the cases, how many
    moved, and how the group threshold changed (it may move without moving a group)."""
    rows: dict[str, list[tuple[bool, float]]] = {}
    for path in sorted(before.glob("*.npz")):
        if not (after / path.name).exists():
            continue
        family = path.stem.rsplit("-", 1)[0] if path.stem != "sample" else "sample"
        a, b = np.load(path), np.load(after / path.name)
        changes = []
        if not np.array_equal(a["group"], b["group"]):
            changes.append(f"{int((a['group'] != b['group']).sum())} group ids")
        pa, pb = mean_prob(a), mean_prob(b)
        if not np.allclose(pa, pb, atol=1e-6, equal_nan=True) or not np.array_equal(a["n_scored"], b["n_scored"]):
            changes.append(f"probabilities (largest change {np.nanmax(np.abs(pa - pb)):.3g})")
        if not np.array_equal(a["flagged"], b["flagged"]):
            gone, new = np.flatnonzero(a["flagged"] & ~b["flagged"]), np.flatnonzero(b["flagged"] & ~a["flagged"])
            changes.append(f"flags: lost {gone.tolist()}, gained {new.tolist()}")
        if changes:
            print(f"{path.stem}: {'; '.join(changes)}")
        rows.setdefault(family, []).append((bool(changes), float(b["threshold"]) - float(a["threshold"])))
    print("| family | cases | moved (groups, probabilities or flags) | threshold change: mean, largest |")
    print("|---|---:|---:|---|")
    for family, cases in rows.items():
        change = np.array([c for _, c in cases])
        print(
            f"| {family} | {len(cases)} | {sum(m for m, _ in cases)} | {change.mean():+.4f}, "
            f"{change[np.argmax(np.abs(change))]:+.4f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    saving = sub.add_parser("save")
    saving.add_argument("folder", type=Path)
    saving.add_argument("--seeds", type=int, default=20, help="planted cases per family")
    saving.add_argument("--first-seed", type=int, default=100)
    comparing = sub.add_parser("compare")
    comparing.add_argument("before", type=Path)
    comparing.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "save":
        save(args.folder, args.seeds, args.first_seed)
    else:
        compare(args.before, args.after)


if __name__ == "__main__":
    main()
