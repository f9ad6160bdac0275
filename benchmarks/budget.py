"""The graded run under short time budgets on a busy machine.

hw02.py at each `--time-budget` with busy loops beside it, standing for the default 150 s on a slower or busier
machine.

    python -m benchmarks budget                                    # exact and perturbed, 10 cases each: ~40 min
    python -m benchmarks budget --families exact --seeds 2 --budgets 10 150

Every case runs at every budget (seeds first-seed, first-seed + 1, ...). Errors = missed + wrongly flagged;
"flagged" is how many indices the line holds (the 15 evil twins of a case call for 15); "neighbours" counts the runs
in which the members were too weak and nearest neighbours decided (hw02.py says so on stderr). The time ratio
divides each budget's median wall time by the mean wall time of the row family's runs at the largest budget.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from benchmarks.harness.cases import FAMILIES, planted
from benchmarks.harness.runs import case_folder, command, measured_run

BUSY_LOOP = "import time\nend = time.monotonic() + 7200\nwhile time.monotonic() < end:\n    pass\n"
COLUMNS = {
    "family": "",
    "time budget s": "g",
    "cases": "d",
    "mean errors": ".2f",
    "worst": "d",
    "mean flagged": ".1f",
    "most flagged": "d",
    "neighbours": "d",
    "median wall s": ".1f",
    "max wall s": ".1f",
    "wall / largest budget's": ".2f",
}


def options(parser) -> None:
    parser.add_argument("--families", nargs="+", default=["exact", "perturbed"], choices=list(FAMILIES))
    parser.add_argument("--seeds", type=int, default=10, help="cases per family")
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--budgets", type=float, nargs="+", default=[5, 10, 20, 40, 150])
    parser.add_argument("--busy", type=int, default=2, help="CPU-bound processes running beside hw02.py")


def family_runs(family: str, args) -> dict[float, list[dict]]:
    """Per budget, one dict per case: its tally, wall seconds, how many it flagged, whether neighbours decided."""
    runs = {budget: [] for budget in args.budgets}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        case = planted(family, seed)
        with case_folder(case) as folder:
            for budget in args.budgets:
                hw02 = measured_run(command("hw02", folder) + ["--time-budget", f"{budget:g}"])
                result = {
                    "score": hw02.score(case.truth),
                    "seconds": hw02.seconds,
                    "flagged": len(hw02.flagged),
                    "neighbours": "nearest neighbours" in hw02.err,
                }
                runs[budget].append(result)
                print(f"  {family} seed {seed} budget {budget:g}: {result}", file=sys.stderr, flush=True)
    return runs


def run(args, report) -> None:
    report.note(f"{args.busy} busy loops beside each run")
    wide = (["time budget s", "cases"], "family", ["mean errors", "neighbours", "median wall s"])
    table = report.table(COLUMNS, "Mean errors, runs decided by neighbours and median wall time by family", wide=wide)
    busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(args.busy)]
    try:
        for family in args.families:
            runs = family_runs(family, args)
            reference = statistics.mean(r["seconds"] for r in runs[max(args.budgets)])
            for budget, rows in runs.items():
                errors = [r["score"].errors for r in rows]
                seconds = [r["seconds"] for r in rows]
                values = [
                    family,
                    budget,
                    len(rows),
                    statistics.mean(errors),
                    max(errors),
                    statistics.mean(r["flagged"] for r in rows),
                    max(r["flagged"] for r in rows),
                    sum(r["neighbours"] for r in rows),
                    statistics.median(seconds),
                    max(seconds),
                    statistics.median(seconds) / reference,
                ]
                table.add(dict(zip(COLUMNS, values)))
    finally:
        for process in busy:
            process.kill()
