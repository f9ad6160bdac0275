"""Does the submittable file, dist/hw02.py, answer as the repo's hw02.py does?

The bundle alone with torch and numpy against the repo's hw02.py: both lines' errors, whether they are the same,
both wall times.

    python -m benchmarks bundle_parity                       # the sample and 5 cases (exact, perturbed, ...): ~6 min
    python -m benchmarks bundle_parity --families exact --seeds 1
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.harness.cases import FAMILIES, planted
from benchmarks.harness.data import REPO
from benchmarks.harness.runs import case_folder, command, measured_run
from benchmarks.harness.scores import parse_line, tally
from pipeline.bundle import bundle, python_with_only

DEFAULT = ["exact", "perturbed", "noisy", "two-evil", "orphans"]


def options(parser) -> None:
    parser.add_argument("--families", nargs="+", default=DEFAULT, choices=list(FAMILIES))
    parser.add_argument("--seeds", type=int, default=1, help="cases per family (seeds 100, 101, ...)")


def bundled_run(python: Path, text: str, case_folder: str) -> tuple[str, float]:
    """Run the bundle from an empty folder holding it and the case's two files; (stdout, wall seconds)."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "hw02.py").write_text(text)
        for name in ("images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"):
            shutil.copy(Path(case_folder) / name, Path(folder) / name)
        start = time.perf_counter()
        done = subprocess.run(
            [str(python), "hw02.py", "--data", "images-idx3-ubyte.gz", "--labels", "labels-idx1-ubyte.gz"],
            cwd=folder,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "HOME": folder},
            timeout=600,
        )
        if done.returncode != 0:
            raise SystemExit(f"dist/hw02.py failed: {done.stderr.strip()}")
        return done.stdout, time.perf_counter() - start


def compare(name: str, folder: Path, python: Path, text: str) -> dict:
    """One row: the repo's hw02.py and the bundle on the case in folder."""
    truth = np.array(sorted(parse_line((folder / "truth.txt").read_text())), np.int64)
    repo = measured_run(command("hw02", folder))
    bundled_out, bundle_seconds = bundled_run(python, text, str(folder))
    return {
        "case": name,
        "errors (repo)": repo.score(truth).errors,
        "errors (bundle)": tally(parse_line(bundled_out), truth).errors,
        "same line": repo.out == bundled_out,
        "repo wall s": repo.seconds,
        "bundle wall s": bundle_seconds,
    }


def run(args, report) -> None:
    text = bundle()
    columns = {"case": "", "errors (repo)": "d", "errors (bundle)": "d", "same line": "", "repo wall s": ".1f"}
    table = report.table(columns | {"bundle wall s": ".1f"})
    with tempfile.TemporaryDirectory() as venv_folder:
        python = python_with_only(Path(venv_folder), "torch", "numpy")
        table.add(compare("sample", REPO / "data" / "sample", python, text))
        for family in args.families:
            for seed in range(100, 100 + args.seeds):
                with case_folder(planted(family, seed)) as folder:
                    table.add(compare(f"{family} seed {seed}", Path(folder), python, text))
