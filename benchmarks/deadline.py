"""Does hw02.py keep its deadline on a slower machine? One large case, run under shrinking time budgets.

    python -m benchmarks.deadline                          # 20k samples, budgets 150 (default), 60, 30: ~3 min
    python -m benchmarks.deadline --n 10000 --budgets 150 40
    python -m benchmarks.deadline --n 60000 --budgets 150 60 30   # MNIST's training-set size: ~5 min

The budget is wall time from process start, measured on the machine at hand, so a budget of B seconds here is
what the default 150 s is on a machine 150 / B times slower. The case is the size family of benchmarks/peers.py
(N - N//11 clean digits, N//11 exact evil twins; MNIST and notMNIST together, 20 classes, above 10k; past 20k
also rotated, scaled and shifted variants of them). Prints, per budget, the wall time, the errors and the
training line hw02.py logs with -v (members and steps they took).
"""

from __future__ import annotations

import argparse
import tempfile

from benchmarks.machine import describe
from benchmarks.peers import command, measured_run, plant_case, score
from pipeline.plant import write_case


def under_budgets(case, n_classes: int | None, budgets):
    """hw02.py on the case once per time budget: (budget, wall seconds, peak MB, score, its training log line)."""
    with tempfile.TemporaryDirectory() as folder:
        write_case(case, folder)
        for budget in budgets:
            cmd = command("hw02", folder, n_classes) + ["--time-budget", f"{budget:g}", "-v"]
            out, err, seconds, peak = measured_run(cmd)
            training = next((line.split("train: ", 1)[1] for line in err.splitlines() if "train: " in line), "")
            yield budget, seconds, peak, score(out, case.truth), training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="samples in the case")
    parser.add_argument("--budgets", type=float, nargs="+", default=[150, 60, 30], help="--time-budget values")
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args()

    case, n_classes = plant_case("size", args.n, args.seed)
    print(describe(), flush=True)
    print("| N | time budget s | wall s | errors | missed | wrongly flagged | training (hw02.py -v) |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for budget, seconds, _, result, training in under_budgets(case, n_classes, args.budgets):
        print(
            f"| {len(case.labels)} | {budget:g} | {seconds:.1f} | {result['missed'] + result['false']} "
            f"| {result['missed']} | {result['false']} | {training} |",
            flush=True,
        )
    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
