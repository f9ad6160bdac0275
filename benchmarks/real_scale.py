"""Real scale (issue 22): MNIST's 60,000 training digits with 3,000 evil twins.

End to end (hw02.py, `dvc repro`) under time budgets, and the group stage alone: wall time, peak memory, errors or
twins found.

    python -m benchmarks real_scale hw02 --budgets 150 60 30     # hw02.py end to end, exact twins: ~5 min
    python -m benchmarks real_scale hw02 --perturbed
    python -m benchmarks real_scale dvc --budgets 150             # `dvc repro` with train.time_budget_s: ~4 min
    python -m benchmarks real_scale group --sizes 60000 600000    # the group stage alone, peak memory: ~10 min

The case: 57,000 digits drawn from the real MNIST training set in ../shared/data (not shipped with the repo) and
3,000 evil twins, a copy of one of them with another label (5%); with --perturbed every copy also carries noise
up to sigma 8, brightness/contrast up to 12% and a one-pixel shift. `group` at 600,000 adds nine rounds of
rotated, scaled and shifted variants of the 57,000 (harness.cases.with_variants), each a distinct image.
hw02.py and dvc run as commands, with wall time and the peak summed memory of the command and its workers
(harness.runs.measured_run); the group stage runs in a child process whose peak resident set is its own.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.harness.data import shared
from benchmarks.harness.runs import in_fresh_process, measured_run, pipeline_repo, under_budgets
from benchmarks.harness.scores import parse_line, tally

N_EVIL = 3000
RUNS = {  # the columns of an end-to-end run's table
    "twins": "",
    "time budget s": "g",
    "wall s": ".1f",
    "peak MB": ".0f",
    "errors": "d",
    "missed": "d",
    "wrongly flagged": "d",
}
GROUP = {
    "N": "d",
    "wall s": ".1f",
    "peak MB": ".0f",
    "data loaded before MB": ".0f",
    "groups": "d",
    "conflicting groups": "d",
    "evil twins with their original": ".4f",
    "evil twins": "d",
}


def options(parser) -> None:
    parser.add_argument("what", choices=["hw02", "dvc", "group"])
    parser.add_argument("--budgets", type=float, nargs="+", default=[150, 60, 30])
    parser.add_argument("--perturbed", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+", default=[60_000, 600_000])


def real_case(perturbed: bool, seed: int = 100):
    from pipeline.plant import PERTURBED, PlantSpec, plant

    images, labels = shared("mnist", "train")
    spec = PlantSpec(n_clean=len(labels) - N_EVIL, n_evil=N_EVIL, seed=seed, **(PERTURBED if perturbed else {}))
    return plant(images, labels, spec)


def run_hw02(args, table) -> None:
    case = real_case(args.perturbed)
    for budget, hw02, training in under_budgets(case, None, args.budgets):
        score = hw02.score(case.truth)
        values = [case_name(args), budget, hw02.seconds, hw02.peak_mb, score.errors, score.missed, score.false]
        table.add(dict(zip(table.columns, [*values, training])))


def run_dvc(args, table) -> None:
    from pipeline.plant import write_case

    case = real_case(args.perturbed)
    for budget in args.budgets:
        with tempfile.TemporaryDirectory() as folder:
            repo = Path(folder) / "repo"
            write_case(case, repo / "data")
            pipeline_repo(
                repo,
                decode={"images": "data/images-idx3-ubyte.gz", "labels": "data/labels-idx1-ubyte.gz"},
                train={"time_budget_s": budget},
                aggregate={"count_z": 2.0, "min_expected_wrong": 2.0},  # the aggregate parameters hw02.py takes
            )
            dvc = measured_run([sys.executable, "-m", "dvc", "repro"], cwd=repo)
            score = tally(parse_line((repo / "results" / "suspects.txt").read_text()), case.truth)
            values = [case_name(args), budget, dvc.seconds, dvc.peak_mb, score.errors, score.missed, score.false]
            table.add(dict(zip(RUNS, values)))


def case_name(args) -> str:
    return "perturbed" if args.perturbed else "exact"


def group_child(n: int) -> dict:
    """One row of the group table, in a fresh process (its peak memory its own)."""
    from benchmarks.harness.cases import with_variants
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
    values = [len(labels), seconds, peak / 1024, before / 1024, summary["groups"], summary["conflicting_groups"]]
    return dict(zip(GROUP, [*values, found, N_EVIL]))


def run(args, report) -> None:
    if args.what == "group":
        table = report.table(GROUP)
        for n in args.sizes:
            table.add(in_fresh_process("benchmarks.real_scale.group_child", n))
    elif args.what == "hw02":
        run_hw02(args, report.table(RUNS | {"training (hw02.py -v)": ""}))
    else:
        run_dvc(args, report.table(RUNS))
