"""The graded run under short time budgets on a busy machine: hw02.py on planted cases, with other CPU-bound
processes running beside it the whole time.

    python -m benchmarks.budget                                    # exact and perturbed, 10 cases each: ~40 min
    python -m benchmarks.budget --families exact --seeds 2 --budgets 10 150

A grader's machine may be slower or busier than ours: `--time-budget B` here, with two busy loops taking their
share of the 2 cores, stands for the default 150 s on a machine several times slower. Every case runs at every
budget (seeds 100, 101, ... as in benchmarks/accuracy.py). Errors = missed + wrongly flagged; "flagged" is how
many indices the line holds (the 15 evil twins of a case call for 15); "neighbours" counts the runs in which the
members were too weak and nearest neighbours decided (hw02.py says so on stderr). The time ratio divides each
run's wall time by the same run's reference: the mean wall time of the 150 s runs of the row's family.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile

from benchmarks.cases import FAMILIES, spec
from benchmarks.machine import describe
from benchmarks.peers import command, measured_run, score
from pipeline.plant import load_source, plant, write_case

BUSY_LOOP = "import time\nend = time.monotonic() + 7200\nwhile time.monotonic() < end:\n    pass\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=["exact", "perturbed"], choices=list(FAMILIES))
    parser.add_argument("--seeds", type=int, default=10, help="cases per family")
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--budgets", type=float, nargs="+", default=[5, 10, 20, 40, 150])
    parser.add_argument("--busy", type=int, default=2, help="CPU-bound processes running beside hw02.py")
    args = parser.parse_args()

    busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(args.busy)]
    try:
        print(describe() + f", {args.busy} busy loops beside each run", flush=True)
        print(
            "| family | time budget s | cases | mean errors | worst | mean flagged | most flagged | neighbours "
            "| median wall s | max wall s | wall / 150 s runs |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for family in args.families:
            runs = {budget: [] for budget in args.budgets}
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                source, case_spec = spec(family, seed)
                case = plant(*load_source(source), case_spec)
                with tempfile.TemporaryDirectory() as folder:
                    write_case(case, folder)
                    for budget in args.budgets:
                        cmd = command("hw02", folder, n_classes=None) + ["--time-budget", f"{budget:g}"]
                        out, err, seconds, _ = measured_run(cmd)
                        result = score(out, case.truth)
                        flagged = len(out.split(",")) if out.strip() else 0
                        runs[budget].append(
                            {
                                **result,
                                "seconds": seconds,
                                "flagged": flagged,
                                "neighbours": "nearest neighbours" in err,
                            }
                        )
                        print(
                            f"  {family} seed {seed} budget {budget:g}: {runs[budget][-1]}", file=sys.stderr, flush=True
                        )
            reference = statistics.mean(r["seconds"] for r in runs[max(args.budgets)])
            for budget, rows in runs.items():
                errors = [r["missed"] + r["false"] for r in rows]
                seconds = [r["seconds"] for r in rows]
                print(
                    f"| {family} | {budget:g} | {len(rows)} | {statistics.mean(errors):.2f} | {max(errors)} "
                    f"| {statistics.mean(r['flagged'] for r in rows):.1f} | {max(r['flagged'] for r in rows)} "
                    f"| {sum(r['neighbours'] for r in rows)} | {statistics.median(seconds):.1f} "
                    f"| {max(seconds):.1f} | {statistics.median(seconds) / reference:.2f} |",
                    flush=True,
                )
    finally:
        for process in busy:
            process.kill()
    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
