"""Peak memory of reading a huge choices file made for 49 samples (issue 47: a 78 MB file took 556 MB): the whole
file read as export read it before, list(csv.DictReader(f)), against pipeline.choices.read_choices, which stops
at row N + 1 or at a row past 1 MB. Memory is Python's, as tracemalloc traces it.

    python -m benchmarks.choices_memory
"""

from __future__ import annotations

import csv
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np

from benchmarks.machine import describe
from pipeline.choices import read_choices
from stages.decode import Dataset
from stages.errors import InputError

N = 49


def huge_file(path: Path, shape: str) -> None:
    """About 60-80 MB: millions of rows naming the 49 samples over and over, or one line of a single field."""
    with open(path, "w") as f:
        f.write("index,path,choice,new_label\n")
        if shape == "rows":
            f.writelines(f"{i % N},d/{i % N}.png,keep,\n" for i in range(3_700_000))
        else:
            f.write("1," + "x" * 78_000_000 + ",keep,\n")


def peak_mib(read) -> tuple[float, str]:
    tracemalloc.start()
    try:
        read()
        outcome = "read whole"
    except (InputError, csv.Error) as exc:
        outcome = f"refused: {str(exc).split(': ', 1)[-1]}"
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak, outcome


def main() -> None:
    print(describe())
    data = Dataset(
        images=np.zeros((N, 8, 8, 1), np.uint8), labels=np.arange(N) % 2, paths=[f"d/{i}.png" for i in range(N)]
    )
    with tempfile.TemporaryDirectory() as folder:
        for shape in ("rows", "one-line"):
            path = Path(folder) / f"{shape}.csv"
            huge_file(path, shape)
            size = path.stat().st_size / 2**20
            for name, read in (
                ("whole file (before)", lambda: list(csv.DictReader(open(path, newline="", encoding="utf-8-sig")))),
                ("read_choices (after)", lambda: read_choices(str(path), data)),
            ):
                peak, outcome = peak_mib(read)
                print(f"{shape}, {size:.0f} MB: {name}: peak {peak:.1f} MiB; {outcome}")


if __name__ == "__main__":
    main()
