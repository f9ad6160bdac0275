"""This project's hw02.py beside three peer methods on the same planted cases, machine and run.

`subsets` and `subsets-all` (the seed's advice, two readings) and `cleanlab` (5-fold, the same CNN), each run as its
own command.

    python -m benchmarks peers                          # 8 small families (165 samples), one case each: 8-10 min
    python -m benchmarks peers --seeds 3                # the same, 3 cases each: 23-30 min on 2 cores
    python -m benchmarks peers --families exact         # one case, end to end: ~1 min
    python -m benchmarks peers --sizes --families exact # plus the size family, 1k..20k: 13-25 min
    python -m benchmarks peers --sizes --max-size 5000 --families --methods hw02 subsets

The small families cannot take much under 8 minutes on 2 cores: 32 runs (8 families x 4 methods), each training 5
to 9 CNNs, at about 14 s a run. The peers are benchmarks/harness/peers.py's; the cases benchmarks/harness/cases.py's
(seeds 100, 101, ... as in accuracy), with the size family (N - N//11 clean images, N//11 exact evil twins; 20
classes past MNIST's 10,000 test digits) from 1k, since at N = 165 it would be the `exact` family. Every method runs
as its own command on the case's idx files, one after another, so wall time includes Python start-up and imports;
peak MB is the command's and its workers' (benchmarks/harness/runs.py). Errors = missed + wrongly flagged;
precision and recall pool the cases of a row. With --sizes it also draws wall time against N, log-log (--plot).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np

from benchmarks.harness.cases import FAMILIES, SMALL, planted, size_case
from benchmarks.harness.runs import METHODS, run_methods
from benchmarks.harness.scores import Tally

SIZES = (1000, 2000, 5000, 10_000, 20_000)
COLUMNS = {
    "method": "",
    "family": "",
    "N": "d",
    "cases": "d",
    "mean errors": ".2f",
    "precision": ".3f",
    "recall": ".3f",
    "mean wall s": ".1f",
    "peak MB": ".0f",
}


def options(parser) -> None:
    parser.add_argument(
        "--families",
        nargs="*",
        default=SMALL,
        choices=list(FAMILIES),
        help="case families of benchmarks/harness/cases.py (none: only the size family)",
    )
    parser.add_argument("--sizes", "--large", action="store_true", help="add the size family, 1k..20k samples")
    parser.add_argument("--max-size", type=int, default=max(SIZES), help="largest N of the size family")
    parser.add_argument("--seeds", type=int, default=1, help="cases per family and size (seeds 100, 101, ...)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--plot", type=Path, help="with --sizes, where the plot goes (default: beside the results)")
    parser.add_argument("--json", type=Path, help="also write every case's result here")


def run_case(family: str, n: int | None, seed: int, methods) -> list[dict]:
    """Plant one case, run every method on it; one result row per method."""
    case, n_classes = size_case(n, seed) if family == "size" else (planted(family, seed), None)
    rows = []
    for method, run in run_methods(case, methods, n_classes).items():
        score = run.score(case.truth)
        rows.append({"method": method, "family": family, "n": len(case.labels), "seed": seed, "seconds": run.seconds})
        rows[-1] |= {"peak_mb": run.peak_mb, "hit": score.hit, "missed": score.missed, "false": score.false}
        print(f"  {method} {family} N={rows[-1]['n']} seed {seed}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """One table row per (method, family, N), in the order first seen: precision and recall pool its cases."""
    out = []
    for method, family, n in dict.fromkeys((r["method"], r["family"], r["n"]) for r in rows):
        mine = [r for r in rows if (r["method"], r["family"], r["n"]) == (method, family, n)]
        pooled = sum((Tally(r["hit"], r["missed"], r["false"]) for r in mine), Tally())
        errors = statistics.mean(r["missed"] + r["false"] for r in mine)
        values = [method, family, n, len(mine), errors, pooled.precision, pooled.recall]
        values += [statistics.mean(r["seconds"] for r in mine), max(r["peak_mb"] for r in mine)]
        out.append(dict(zip(COLUMNS, values)))
    return out


def plot_times(rows: list[dict], path: Path) -> None:
    """Mean wall time against N per method, log-log, over every case of that N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in dict.fromkeys(r["method"] for r in rows):
        ns = sorted({r["n"] for r in rows if r["method"] == method})
        means = [statistics.mean(r["seconds"] for r in rows if (r["method"], r["n"]) == (method, n)) for n in ns]
        ax.plot(ns, means, marker="o", label=method)
    ns = np.array(sorted({r["n"] for r in rows}), dtype=float)
    last = statistics.mean(r["seconds"] for r in rows if r["n"] == ns[-1])
    ax.plot(ns, last * ns / ns[-1], ":", color="grey", label="proportional to N")
    title = f"Wall time against N, {os.cpu_count()} cores"
    ax.set(xscale="log", yscale="log", xlabel="N (samples)", ylabel="mean wall time (s)", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args, report) -> None:
    work = [(family, None) for family in args.families]
    if args.sizes:
        work += [("size", n) for n in SIZES if n <= args.max_size]
    report.note(f"{args.seeds} seed(s) per family and size")
    rows = []
    for family, n in work:
        for seed in range(100, 100 + args.seeds):
            rows += run_case(family, n, seed, args.methods)
    wide = (["family", "N", "cases"], "method", ["mean errors", "mean wall s"])
    table = report.table(COLUMNS, "Mean errors and wall time a case by method", wide=wide)
    for row in summarize(rows):
        table.add(row)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.sizes:
        plot_times(rows, args.plot or report.beside(".png"))
        report.file(args.plot or report.beside(".png"))
