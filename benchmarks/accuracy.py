"""Accuracy and wall time of the graded run, `hw02.py`, on planted case families.

    python -m benchmarks.accuracy                       # every small family, 20 seeds each
    python -m benchmarks.accuracy --families exact --seeds 5
    python -m benchmarks.accuracy --families large-10k --seeds 1
    python -m benchmarks.accuracy --families exact --first-seed 120 --seeds 40   # other cases than the table's

Each case is written to a temporary folder and hw02.py runs on it as a separate process, exactly as the grader
runs it, so wall times include Python start-up and imports. Errors = missed + wrongly flagged (the grader's count).
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

from benchmarks.cases import FAMILIES, SMALL, spec
from benchmarks.machine import describe
from benchmarks.peers import command, measured_run, score
from pipeline.plant import load_source, plant, write_case


def run_case(family: str, seed: int) -> dict:
    source, case_spec = spec(family, seed)
    case = plant(*load_source(source), case_spec)
    with tempfile.TemporaryDirectory() as folder:
        write_case(case, folder)
        out, _, seconds, _ = measured_run(command("hw02", folder, n_classes=None))  # the grader's command line
    return {**score(out, case.truth), "seconds": seconds, "n": len(case.labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=SMALL, choices=list(FAMILIES))
    parser.add_argument("--seeds", type=int, default=20, help="cases per family")
    parser.add_argument(
        "--first-seed", type=int, default=100, help="the cases are seeds first-seed, first-seed + 1, ..."
    )
    args = parser.parse_args()
    print(describe())
    print("| family | N | cases | mean errors | worst | mean missed | mean wrongly flagged | median s | max s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for family in args.families:
        rows = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            rows.append(run_case(family, seed))
            print(f"  {family} seed {seed}: {rows[-1]}", file=sys.stderr, flush=True)
        errors = [r["missed"] + r["false"] for r in rows]
        seconds = [r["seconds"] for r in rows]
        print(
            f"| {family} | {rows[0]['n']} | {len(rows)} | {statistics.mean(errors):.2f} | {max(errors)} "
            f"| {statistics.mean(r['missed'] for r in rows):.2f} | {statistics.mean(r['false'] for r in rows):.2f} "
            f"| {statistics.median(seconds):.1f} | {max(seconds):.1f} |",
            flush=True,
        )

    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
