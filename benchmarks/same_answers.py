"""Does a change keep the answers? Every case's groups, probabilities and flags at two commits.

Per family, how many cases' groups, probabilities or flags moved between two commits, and how the group threshold
changed.

    python -m benchmarks same_answers save before/          # at the old commit (a git worktree)
    python -m benchmarks same_answers save after/           # at the new one
    python -m benchmarks same_answers compare before/ after/

The cases are the bundled sample and `--seeds` planted cases of every small family (benchmarks/harness/cases.py),
run in one process with the default parameters and no deadline, so a run is reproducible. `save` writes an .npz per
case and the commit it ran at; `compare` notes each case that moved (groups, probabilities or flags). Folders saved
by `python -m benchmarks.same_answers save` before the benchmarks had one entry point compare all the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from benchmarks.harness.cases import SMALL, planted
from benchmarks.harness.data import REPO
from benchmarks.harness.record import commit
from pipeline.runner import find_suspects

SAMPLE = REPO / "data" / "sample"


def options(parser) -> None:
    sub = parser.add_subparsers(dest="command", required=True)
    saving = sub.add_parser("save", help="save every case's answers in a folder")
    saving.add_argument("folder", type=Path)
    saving.add_argument("--seeds", type=int, default=20, help="planted cases per family")
    saving.add_argument("--first-seed", type=int, default=100)
    comparing = sub.add_parser("compare", help="compare two saved folders")
    comparing.add_argument("before", type=Path)
    comparing.add_argument("after", type=Path)


def cases(seeds: int, first_seed: int):
    """(name, images, labels) of the bundled sample, then of each small family's planted cases."""
    from stages.decode_idx import read_images, read_labels

    yield "sample", read_images(SAMPLE / "images-idx3-ubyte.gz"), read_labels(SAMPLE / "labels-idx1-ubyte.gz")
    for family in SMALL:
        for seed in range(first_seed, first_seed + seeds):
            case = planted(family, seed)
            yield f"{family}-{seed}", case.images, case.labels


def save(folder: Path, seeds: int, first_seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "commit.txt").write_text(commit() + "\n")
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


def changes(a, b) -> list[str]:
    """What moved between two saved answers of one case (nothing: [])."""
    moved = []
    if not np.array_equal(a["group"], b["group"]):
        moved.append(f"{int((a['group'] != b['group']).sum())} group ids")
    pa, pb = mean_prob(a), mean_prob(b)
    if not np.allclose(pa, pb, atol=1e-6, equal_nan=True) or not np.array_equal(a["n_scored"], b["n_scored"]):
        moved.append(f"probabilities (largest change {np.nanmax(np.abs(pa - pb)):.3g})")
    if not np.array_equal(a["flagged"], b["flagged"]):
        gone, new = np.flatnonzero(a["flagged"] & ~b["flagged"]), np.flatnonzero(b["flagged"] & ~a["flagged"])
        moved.append(f"flags: lost {gone.tolist()}, gained {new.tolist()}")
    return moved


def compare(before: Path, after: Path, report) -> None:
    """A note per case whose groups, out-of-bag probabilities or flags moved; then per family the cases, how many
    moved, and how the group threshold changed (it may move without moving a group)."""
    saved_at = [(f / "commit.txt").read_text().strip() if (f / "commit.txt").exists() else "?" for f in (before, after)]
    report.note(f"before: {before} (saved at {saved_at[0]}); after: {after} (saved at {saved_at[1]})")
    rows: dict[str, list[tuple[bool, float]]] = {}
    for path in sorted(before.glob("*.npz")):
        if not (after / path.name).exists():
            continue
        family = path.stem.rsplit("-", 1)[0] if path.stem != "sample" else "sample"
        a, b = np.load(path), np.load(after / path.name)
        moved = changes(a, b)
        if moved:
            report.note(f"{path.stem}: {'; '.join(moved)}")
        rows.setdefault(family, []).append((bool(moved), float(b["threshold"]) - float(a["threshold"])))
    columns = {"family": "", "cases": "d", "moved (groups, probabilities or flags)": "d"}
    table = report.table(columns | {"threshold change, mean": "+.4f", "threshold change, largest": "+.4f"})
    for family, found in rows.items():
        change = np.array([c for _, c in found])
        values = [family, len(found), sum(m for m, _ in found), change.mean(), change[np.argmax(np.abs(change))]]
        table.add(dict(zip(table.columns, values)))


def run(args, report) -> None:
    if args.command == "save":
        save(args.folder, args.seeds, args.first_seed)
    else:
        compare(args.before, args.after, report)
