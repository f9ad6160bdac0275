"""Speed against the alternatives, in one run on one machine (issue 36): wall and CPU seconds and errors of hw02.py,
the assignment's advice (`subsets`: nine models on random 2/3 subsets) and cleanlab on a plain 5-fold CNN of the
same architecture (benchmarks/peer_methods.py), each as its own command, on the bundled sample and on planted
cases of 2,000 and 10,000 MNIST digits with N//11 exact evil twins (benchmarks/peers.py's size family).

    python -m benchmarks.speed                     # sample, 2k and 10k, one case each: about 6 min on 2 cores
    python -m benchmarks.speed --sizes 2000 --seeds 3

CPU seconds are the command's and its workers' (user + system, from the kernel's account of reaped children).
Ratios divide each method's mean wall time by the advice's on the same cases. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile

import numpy as np

from benchmarks.machine import describe
from benchmarks.peers import REPO, command, measured_run, plant_case, score
from pipeline.plant import write_case

METHODS = ("hw02", "subsets", "cleanlab")
SAMPLE = REPO / "data" / "sample"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(method: str, folder: str, n_classes: int | None, truth: np.ndarray) -> dict:
    cpu = children_cpu()
    out, _, wall, peak = measured_run(command(method, folder, n_classes))
    return {"method": method, "wall": wall, "cpu": children_cpu() - cpu, "peak_mb": peak, **score(out, truth)}


def run(sizes: list[int], seeds: int, methods) -> list[dict]:
    rows = []
    truth = np.array([int(i) for i in (SAMPLE / "truth.txt").read_text().split(",") if i.strip()])
    for method in methods:  # the sample as it is bundled
        rows.append({"case": "sample (165)", **timed(method, str(SAMPLE.relative_to(REPO)), None, truth)})
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    for n in sizes:
        for seed in range(100, 100 + seeds):
            case, n_classes = plant_case("size", n, seed)
            with tempfile.TemporaryDirectory() as folder:
                write_case(case, folder)
                for method in methods:
                    rows.append({"case": f"{n:,} digits", **timed(method, folder, n_classes, case.truth)})
                    print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| case | method | cases | mean errors | wall s | CPU s | wall / advice's | peak MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == case]
        advice = [r["wall"] for r in mine if r["method"] == "subsets"]
        for method in dict.fromkeys(r["method"] for r in mine):
            runs = [r for r in mine if r["method"] == method]
            wall = statistics.mean(r["wall"] for r in runs)
            ratio = f"{wall / statistics.mean(advice):.2f}" if advice else "-"
            lines.append(
                f"| {case} | {method} | {len(runs)} | "
                f"{statistics.mean(r['missed'] + r['false'] for r in runs):.2f} | {wall:.1f} | "
                f"{statistics.mean(r['cpu'] for r in runs):.1f} | {ratio} | "
                f"{max(r['peak_mb'] for r in runs):.0f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[2000, 10_000], help="planted case sizes")
    parser.add_argument("--seeds", type=int, default=1, help="cases per size (seeds 100, 101, ...)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    args = parser.parse_args(argv)
    print(describe(), flush=True)
    print(table(run(args.sizes, args.seeds, args.methods)))
    print(describe(), flush=True)


if __name__ == "__main__":
    main()
