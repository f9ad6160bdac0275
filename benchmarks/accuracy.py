"""Accuracy and wall time of the graded run, `hw02.py`, on planted case families.

    python -m benchmarks.accuracy                       # every small family, 20 seeds each
    python -m benchmarks.accuracy --families exact --seeds 5
    python -m benchmarks.accuracy --families large-10k --seeds 1

Each case is written to a temporary folder and hw02.py runs on it as a separate process, exactly as the grader
runs it, so wall times include Python start-up and imports. Errors = missed + wrongly flagged (the grader's count).
Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cases import FAMILIES, SMALL, spec
from benchmarks.machine import describe
from pipeline.plant import load_source, plant, write_case

REPO = Path(__file__).resolve().parent.parent


def run_case(family: str, seed: int) -> dict:
    source, case_spec = spec(family, seed)
    case = plant(*load_source(source), case_spec)
    with tempfile.TemporaryDirectory() as folder:
        write_case(case, folder)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(REPO / "hw02.py"), "--data", f"{folder}/images-idx3-ubyte.gz",
                               "--labels", f"{folder}/labels-idx1-ubyte.gz"], capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"hw02.py failed on {family} seed {seed}: {done.stderr.strip()}")
    line = done.stdout.strip()
    flagged = {int(i) for i in line.split(", ")} if line else set()
    truth = set(case.truth.tolist())
    return {"missed": len(truth - flagged), "false": len(flagged - truth), "seconds": seconds, "n": len(case.labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=SMALL, choices=list(FAMILIES))
    parser.add_argument("--seeds", type=int, default=20, help="cases per family (seeds 100, 101, ...)")
    args = parser.parse_args()
    print(describe())
    print("| family | N | cases | mean errors | worst | mean missed | mean wrongly flagged | median s | max s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for family in args.families:
        rows = []
        for seed in range(100, 100 + args.seeds):
            rows.append(run_case(family, seed))
            print(f"  {family} seed {seed}: {rows[-1]}", file=sys.stderr, flush=True)
        errors = [r["missed"] + r["false"] for r in rows]
        seconds = [r["seconds"] for r in rows]
        print(f"| {family} | {rows[0]['n']} | {len(rows)} | {statistics.mean(errors):.2f} | {max(errors)} "
              f"| {statistics.mean(r['missed'] for r in rows):.2f} | {statistics.mean(r['false'] for r in rows):.2f} "
              f"| {statistics.median(seconds):.1f} | {max(seconds):.1f} |", flush=True)

    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
