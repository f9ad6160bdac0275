"""Speed against the alternatives in one run on one machine (issue 36).

Wall and CPU seconds, peak memory and errors of hw02.py, the assignment's advice and cleanlab on 5 folds, each as
its own command.

    python -m benchmarks speed                     # sample, 2k and 10k, one case each: about 6 min on 2 cores
    python -m benchmarks speed --sizes 2000 --seeds 3

The peers are benchmarks/harness/peers.py's, the cases the size family of benchmarks/harness/cases.py. CPU seconds
are the command's and its workers' (user + system, from the kernel's account of reaped children). Ratios divide
each method's mean wall time by the advice's on the same cases.
"""

from __future__ import annotations

import statistics
import sys

import numpy as np

from benchmarks.harness.cases import size_case
from benchmarks.harness.data import REPO
from benchmarks.harness.runs import command, measured_run, run_methods
from benchmarks.harness.scores import parse_line

METHODS = ("hw02", "subsets", "cleanlab")
SAMPLE = REPO / "data" / "sample"
COLUMNS = {
    "case": "",
    "method": "",
    "cases": "d",
    "mean errors": ".2f",
    "wall s": ".1f",
    "CPU s": ".1f",
    "wall / advice's": ".2f",
    "peak MB": ".0f",
}


def options(parser) -> None:
    parser.add_argument("--sizes", type=int, nargs="*", default=[2000, 10_000], help="planted case sizes")
    parser.add_argument("--seeds", type=int, default=1, help="cases per size (seeds 100, 101, ...)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)


def measure(sizes: list[int], seeds: int, methods) -> list[dict]:
    """One row per (case, method): its tally, wall and CPU seconds and peak MB."""
    rows = []
    truth = np.array(sorted(parse_line((SAMPLE / "truth.txt").read_text())))
    for method in methods:  # the sample as it is bundled
        run = measured_run(command(method, SAMPLE.relative_to(REPO)))
        rows.append({"case": "sample (165)", "method": method, "run": run, "score": run.score(truth)})
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    for n in sizes:
        for seed in range(100, 100 + seeds):
            case, n_classes = size_case(n, seed)
            for method, run in run_methods(case, methods, n_classes).items():
                rows.append({"case": f"{n:,} digits", "method": method, "run": run, "score": run.score(case.truth)})
                print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Per case and method: means over its cases, and its wall time over the advice's (None without the advice)."""
    out = []
    for case in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == case]
        advice = [r["run"].seconds for r in mine if r["method"] == "subsets"]
        for method in dict.fromkeys(r["method"] for r in mine):
            runs = [r for r in mine if r["method"] == method]
            wall = statistics.mean(r["run"].seconds for r in runs)
            values = [case, method, len(runs), statistics.mean(r["score"].errors for r in runs), wall]
            values += [statistics.mean(r["run"].cpu for r in runs), wall / statistics.mean(advice) if advice else None]
            out.append(dict(zip(COLUMNS, [*values, max(r["run"].peak_mb for r in runs)])))
    return out


def run(args, report) -> None:
    rows = summarize(measure(args.sizes, args.seeds, args.methods))
    table = report.table(COLUMNS)
    for row in rows:
        table.add(row)
