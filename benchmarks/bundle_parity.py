"""Does the submittable file answer as the repo does? dist/hw02.py, alone in an empty folder with a Python that has
only torch and numpy, against the repo's hw02.py, on the bundled sample and on planted cases.

    python -m benchmarks.bundle_parity                       # the sample and 5 cases (exact, perturbed, ...): ~6 min
    python -m benchmarks.bundle_parity --families exact --seeds 1

Prints one row per case: both lines' errors, whether the lines are identical, and both wall times.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.cases import FAMILIES, spec
from benchmarks.machine import describe
from benchmarks.peers import REPO, command, measured_run, score
from pipeline.bundle import bundle, python_with_only
from pipeline.plant import load_source, plant, write_case

DEFAULT = ["exact", "perturbed", "noisy", "two-evil", "orphans"]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=DEFAULT, choices=list(FAMILIES))
    parser.add_argument("--seeds", type=int, default=1, help="cases per family (seeds 100, 101, ...)")
    args = parser.parse_args()
    text = bundle()
    print(describe())
    print("| case | errors (repo) | errors (bundle) | same line | repo wall s | bundle wall s |")
    print("|---|---:|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as venv_folder:
        python = python_with_only(Path(venv_folder), "torch", "numpy")
        cases = [("sample", REPO / "data" / "sample", None)]
        for family in args.families:
            for seed in range(100, 100 + args.seeds):
                source, case_spec = spec(family, seed)
                cases.append((f"{family} seed {seed}", None, plant(*load_source(source), case_spec)))
        for name, folder, case in cases:
            with tempfile.TemporaryDirectory() as tmp:
                if case is not None:
                    write_case(case, tmp)
                    folder = Path(tmp)
                truth_line = (folder / "truth.txt").read_text().strip()
                truth = np.array([int(i) for i in truth_line.split(", ")] if truth_line else [], np.int64)
                out, _, repo_seconds, _ = measured_run(command("hw02", str(folder), n_classes=None))
                bundled_out, bundle_seconds = bundled_run(python, text, str(folder))
                repo_result, bundle_result = score(out, truth), score(bundled_out, truth)
                print(
                    f"| {name} | {repo_result['missed'] + repo_result['false']} "
                    f"| {bundle_result['missed'] + bundle_result['false']} | {'yes' if out == bundled_out else 'NO'} "
                    f"| {repo_seconds:.1f} | {bundle_seconds:.1f} |",
                    flush=True,
                )
    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
