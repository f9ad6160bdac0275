"""Do the fast tests bite? One bug at a time planted in a copy of the repository.

Each bug planted alone; the fast tests run on the copy until their first failure. Every bug should be caught.

    python -m benchmarks planted_bugs                               # the ten bugs: about 5 minutes on 2 cores
    python -m benchmarks planted_bugs --bugs "1-based output"

The copy holds the files git tracks and the untracked ones it does not ignore, as they are in this checkout. A bug
whose code has moved stops the run and says so: the anchor below needs updating with the code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.harness.data import REPO

# name: (file, code as it is, code with the bug)
BUGS = {
    "1-based output": (
        "stages/aggregate.py",
        "str(int(i)) for i in sorted(indices)",
        "str(int(i) + 1) for i in sorted(indices)",
    ),
    "descending output": (
        "stages/aggregate.py",
        "for i in sorted(indices))",
        "for i in sorted(indices, reverse=True))",
    ),
    "labels reader accepts 2051": (
        "stages/decode_idx.py",
        "read_idx(path, (LABELS_MAGIC,))",
        "read_idx(path, (LABELS_MAGIC, GREY_MAGIC))",
    ),
    "balancing ignored": (
        "stages/member.py",
        "weights = class_weights(labels, train_idx, n_classes, balance)",
        "weights = class_weights(labels, train_idx, n_classes, False)",
    ),
    "fixed threshold ignored": (
        "stages/rules.py",
        "        params.threshold\n        if params.threshold is not None\n        else pick_threshold(",
        "        pick_threshold(",
    ),
    "a member trains on what it scores": (
        "stages/member.py",
        "    x = standardize(images[train_idx])\n",
        "    train_idx = np.union1d(train_idx, score_idx)\n    x = standardize(images[train_idx])\n",
    ),
    "the plan trains on held-out groups": ("stages/train.py", "~held & ~in_question[group]", "~in_question[group]"),
    "conflicts never train": ("stages/train.py", "        asked[:] = False", "        pass"),
    "per-class counts ignored": (
        "stages/rules.py",
        "for c in np.flatnonzero(wrong_by_class * keep >= 0.5):",
        "for c in []:",
    ),
    "calibration never fitted on copies": (
        "stages/aggregate.py",
        "fitted = scored & ~apart & labelled if oob.through_conflicts else alone",
        "fitted = alone",
    ),
}


def options(parser) -> None:
    parser.add_argument("--bugs", nargs="+", default=list(BUGS), choices=list(BUGS), metavar="BUG")


def copy_of_repo(folder: Path) -> Path:
    """The checkout's files (tracked, and untracked but not ignored) copied into folder/repo."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (folder / "repo" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, folder / "repo" / name)
    return folder / "repo"


def fast_tests(name: str) -> tuple[bool, str]:
    """(whether the fast tests failed, the last line pytest printed) on a copy with the bug planted, stopping at the
    first failure."""
    path, code, bug = BUGS[name]
    with tempfile.TemporaryDirectory() as folder:
        repo = copy_of_repo(Path(folder))
        text = (repo / path).read_text()
        if code not in text:
            raise SystemExit(f"planted_bugs: {path}: the code to plant {name!r} in has moved; update BUGS")
        (repo / path).write_text(text.replace(code, bug, 1))
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-m", "not slow", "-x", "-p", "no:cacheprovider"],
            cwd=repo,
            env={**os.environ, "PYTHONPATH": str(repo)},
            capture_output=True,
            text=True,
        )
    lines = done.stdout.strip().splitlines()
    return done.returncode != 0, lines[-1] if lines else done.stderr.strip()[-200:]


def run(args, report) -> None:
    table = report.table({"bug": "", "file": "", "caught": "", "the fast tests said": ""})
    for name in args.bugs:
        caught, said = fast_tests(name)
        table.add({"bug": name, "file": BUGS[name][0], "caught": caught, "the fast tests said": said})
