"""Peak memory of reading a huge choices file made for 49 samples (issue 47: a 78 MB file took 556 MB).

The whole file read as export read it before, list(csv.DictReader(f)), against pipeline.choices.read_choices,
which stops at row N + 1 or at a row past 1 MB, on two files of 60-80 MB: millions of rows naming the 49 samples
over and over, and one line of a single 78 MB field. Memory is Python's, as tracemalloc traces it.

    python -m benchmarks choices_memory      # about a minute
"""

from __future__ import annotations

import csv
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np

from pipeline.choices import read_choices
from stages.decode import Dataset
from stages.errors import InputError

N = 49  # samples the choices file is made for
SHAPES = ("rows", "one-line")
COLUMNS = {"file": "", "file MiB": ".0f", "read": "", "peak MiB": ".1f", "outcome": ""}


def huge_file(path: Path, shape: str) -> None:
    """About 60-80 MB: millions of rows naming the 49 samples over and over, or one line of a single field."""
    with open(path, "w") as f:
        f.write("index,path,choice,new_label\n")
        if shape == "rows":
            f.writelines(f"{i % N},d/{i % N}.png,keep,\n" for i in range(3_700_000))
        else:
            f.write("1," + "x" * 78_000_000 + ",keep,\n")


def whole(path: Path) -> list[dict]:
    """The file read as export read it before issue 47: every row at once."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def peak_mib(read) -> tuple[float, str]:
    """(peak MiB traced while read() runs, what it did: read whole or refused, with the refusal's reason)."""
    tracemalloc.start()
    try:
        read()
        outcome = "read whole"
    except (InputError, csv.Error) as exc:
        outcome = f"refused: {str(exc).split(': ', 1)[-1]}"
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak, outcome


def options(parser) -> None:
    """None: the two files' shapes and sizes are fixed, near issue 47's 78 MB for 49 samples."""


def run(args, report) -> None:
    data = Dataset(
        images=np.zeros((N, 8, 8, 1), np.uint8), labels=np.arange(N) % 2, paths=[f"d/{i}.png" for i in range(N)]
    )
    table = report.table(COLUMNS, f"Peak memory reading a choices file made for {N} samples")
    with tempfile.TemporaryDirectory() as folder:
        for shape in SHAPES:
            path = Path(folder) / f"{shape}.csv"
            huge_file(path, shape)
            size = path.stat().st_size / 2**20
            for name, read in (
                ("whole file (before)", whole),
                ("read_choices (after)", lambda p: read_choices(str(p), data)),
            ):
                peak, outcome = peak_mib(lambda: read(path))
                table.add(dict(zip(COLUMNS, [shape, size, name, peak, outcome])))
            path.unlink()
    after = [r for r in table.rows if r["read"] == "read_choices (after)"]
    report.note(
        f"read_choices peaks at {max(r['peak MiB'] for r in after):.1f} MiB at most, on files of "
        f"{min(r['file MiB'] for r in after):.0f}-{max(r['file MiB'] for r in after):.0f} MiB"
    )
