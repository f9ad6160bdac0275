"""Does hw02.py keep its deadline on a slower machine? One large case under shrinking budgets.

Wall time, errors and members' training at each `--time-budget` on one case of the size family.

    python -m benchmarks deadline                          # 20k samples, budgets 150 (default), 60, 30: ~3 min
    python -m benchmarks deadline --n 10000 --budgets 150 40
    python -m benchmarks deadline --n 60000 --budgets 150 60 30   # MNIST's training-set size: ~5 min

The budget is wall time from process start, measured on the machine at hand, so a budget of B seconds here is
what the default 150 s is on a machine 150 / B times slower. The size family (benchmarks/harness/cases.py): N - N//11
clean digits, N//11 exact evil twins; MNIST and notMNIST together, 20 classes, above 10k; past 20k also rotated,
scaled and shifted variants of them.
"""

from __future__ import annotations

from benchmarks.harness.cases import size_case
from benchmarks.harness.runs import under_budgets


def options(parser) -> None:
    parser.add_argument("--n", type=int, default=20_000, help="samples in the case")
    parser.add_argument("--budgets", type=float, nargs="+", default=[150, 60, 30], help="--time-budget values")
    parser.add_argument("--seed", type=int, default=100)


def run(args, report) -> None:
    case, n_classes = size_case(args.n, args.seed)
    columns = {"N": "d", "time budget s": "g", "wall s": ".1f", "errors": "d", "missed": "d", "wrongly flagged": "d"}
    table = report.table(columns | {"training (hw02.py -v)": ""})
    for budget, hw02, training in under_budgets(case, n_classes, args.budgets):
        score = hw02.score(case.truth)
        values = [len(case.labels), budget, hw02.seconds, score.errors, score.missed, score.false, training]
        table.add(dict(zip(table.columns, values)))
