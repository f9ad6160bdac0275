"""Real scale (issue 22): MNIST's 60,000 training digits with 3,000 evil twins, end to end and group stage alone.

    python -m benchmarks.real_scale hw02 --budgets 150 60 30     # hw02.py end to end, exact twins: ~5 min
    python -m benchmarks.real_scale hw02 --perturbed
    python -m benchmarks.real_scale dvc --budgets 150             # `dvc repro` with train.time_budget_s: ~4 min
    python -m benchmarks.real_scale group --sizes 60000 600000    # the group stage alone, peak memory: ~10 min

The case: 57,000 digits drawn from the real MNIST training set in ../shared/data (not shipped with the repo) and
3,000 evil twins, a copy of one of them with another label (5%); with --perturbed every copy also carries noise
up to sigma 8, brightness/contrast up to 12% and a one-pixel shift. `group` at 600,000 adds nine rounds of
rotated, scaled and shifted variants of the 57,000 (benchmarks.peers.with_variants), each a distinct image.
hw02.py and dvc run as commands, with wall time and the peak summed memory of the command and its workers
(benchmarks.peers.measured_run); the group stage runs in a child process whose peak resident set is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import describe

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
N_EVIL = 3000


def real_case(perturbed: bool, seed: int = 100):
    from pipeline.plant import PERTURBED, PlantSpec, plant
    from stages.decode_idx import read_images, read_labels

    try:
        images = read_images(SHARED / "mnist-train-images-idx3-ubyte.gz")
        labels = read_labels(SHARED / "mnist-train-labels-idx1-ubyte.gz")
    except Exception as exc:
        raise SystemExit(f"benchmarks.real_scale needs MNIST's training set in {SHARED}: {exc}") from None
    spec = PlantSpec(n_clean=len(labels) - N_EVIL, n_evil=N_EVIL, seed=seed, **(PERTURBED if perturbed else {}))
    return plant(images, labels, spec)


def run_hw02(args) -> None:
    from benchmarks.deadline import under_budgets

    case = real_case(args.perturbed)
    print("| twins | time budget s | wall s | peak MB | errors | missed | wrongly flagged | training (hw02.py -v) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for budget, seconds, peak, result, training in under_budgets(case, None, args.budgets):
        print(
            f"| {'perturbed' if args.perturbed else 'exact'} | {budget:g} | {seconds:.1f} | {peak:.0f} "
            f"| {result['missed'] + result['false']} | {result['missed']} | {result['false']} | {training} |",
            flush=True,
        )


def run_dvc(args) -> None:
    from benchmarks.peers import measured_run, score
    from benchmarks.real_data import pipeline_repo
    from pipeline.plant import write_case

    case = real_case(args.perturbed)
    print("| twins | train.time_budget_s | wall s | peak MB | errors | missed | wrongly flagged |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for budget in args.budgets:
        with tempfile.TemporaryDirectory() as folder:
            repo = Path(folder) / "repo"
            write_case(case, repo / "data")
            # the aggregate parameters hw02.py takes
            pipeline_repo(
                repo,
                decode={"images": "data/images-idx3-ubyte.gz", "labels": "data/labels-idx1-ubyte.gz"},
                train={"time_budget_s": budget},
                aggregate={"count_z": 2.0, "min_expected_wrong": 2.0},
            )
            _, _, seconds, peak = measured_run([sys.executable, "-m", "dvc", "repro"], cwd=repo)
            result = score((repo / "results" / "suspects.txt").read_text(), case.truth)
            missed, false = result["missed"], result["false"]
            print(
                f"| {'perturbed' if args.perturbed else 'exact'} | {budget:g} | {seconds:.1f} | {peak:.0f} "
                f"| {missed + false} | {missed} | {false} |",
                flush=True,
            )


def group_child(n: int) -> dict:
    from benchmarks.peers import with_variants
    from stages.group import GroupParams, group_images, summarize

    case = real_case(perturbed=True)
    images, labels, source = case.images, case.labels, case.source
    if n > len(labels):
        clean = np.flatnonzero(case.role == "original")
        extra, extra_labels = with_variants(images[clean], labels[clean], n - len(labels) + len(clean), seed=1)
        extra, extra_labels = extra[len(clean) :][: n - len(labels)], extra_labels[len(clean) :][: n - len(labels)]
        images = np.concatenate([images, extra])
        labels = np.concatenate([labels, extra_labels])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = group_images(images, GroupParams())
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    evil = np.flatnonzero(case.role == "evil")
    original_of = {source[i]: i for i in np.flatnonzero(case.role == "original")}
    found = float(np.mean([result.group[i] == result.group[original_of[source[i]]] for i in evil]))
    summary = summarize(result.group, labels)
    return {
        "n": len(labels),
        "seconds": seconds,
        "peak_mb": peak / 1024,
        "before_mb": before / 1024,
        "groups": summary["groups"],
        "conflicting": summary["conflicting_groups"],
        "twins_found": found,
    }


def run_group(args) -> None:
    print(
        "| N | wall s | peak MB (data loaded before) | groups | conflicting groups | evil twins with their original |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.real_scale", "group-child", "--n", str(n)],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise SystemExit(done.stderr[-2000:])
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"| {r['n']} | {r['seconds']:.1f} | {r['peak_mb']:.0f} ({r['before_mb']:.0f}) | {r['groups']} "
            f"| {r['conflicting']} | {r['twins_found']:.4f} of {N_EVIL} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["hw02", "dvc", "group", "group-child"])
    parser.add_argument("--budgets", type=float, nargs="+", default=[150, 60, 30])
    parser.add_argument("--perturbed", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+", default=[60_000, 600_000])
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.what == "group-child":
        print(json.dumps(group_child(args.n)))
        return
    print(describe())
    {"hw02": run_hw02, "dvc": run_dvc, "group": run_group}[args.what](args)
    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
