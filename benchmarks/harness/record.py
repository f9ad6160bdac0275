"""What a benchmark run leaves behind: its tables as rows of named values, with the exact command, the commit, the
date and the machine, in benchmarks/results/NAME.json. One file per benchmark and configuration, the latest run
replacing the previous: the options a run was given name its configuration (NAME--first-seed-120.json), except
those that only say how many cases to run (NOT_CONFIGURATION) or where files go (paths). While it runs, a benchmark
prints each row as it comes, as a Markdown table, with the machine line before and after.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.harness.data import REPO

RESULTS = REPO / "benchmarks" / "results"
NOT_CONFIGURATION = {"seeds", "cases", "trials", "loads", "results"}  # how many cases, not which


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    """CPU, usable cores, memory, Python and torch: where a figure was measured (times mean little without it)."""
    from importlib.metadata import PackageNotFoundError, version

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        memory = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB"
    except (ValueError, OSError, AttributeError):
        memory = ""
    try:
        torch = f", torch {version('torch')}"
    except PackageNotFoundError:
        torch = ""
    return f"{cpu_model()}, {cores} cores{memory}, Python {platform.python_version()}{torch}"


def load_average() -> float | None:
    """The 1-minute load average: other work on the machine slows a run."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def describe() -> str:
    """One line for a log: date, machine and load average."""
    return f"# {datetime.date.today().isoformat()}, {machine()}, load average {load_average()}"


def commit() -> str:
    """The checkout's commit, and whether its code differs from it (results files and BENCHMARKS.md aside)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":!benchmarks/results", ":!BENCHMARKS.md"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown"
    if head.returncode:
        return "unknown"
    return head.stdout.strip() + (" (with uncommitted changes)" if status.stdout.strip() else "")


def cell(value, spec: str) -> str:
    """A value as a table prints it: '-' for none, yes or no for a truth value, else format(value, spec)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec)


def plain(value):
    """A value as JSON keeps it: numpy scalars as Python's, nan as None, floats to 6 significant digits."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.6g}")
    return value


def markdown(columns: dict[str, str], rows: list[list], title: str = "", *, compact: bool = False) -> list[str]:
    """A Markdown table of rows of values in the order of columns (heading: format spec), numbers right-aligned;
    compact leaves out the padding spaces (BENCHMARKS.md's tables; they render alike)."""
    bar = "|" if compact else " | "

    def line(cells) -> str:
        return (bar.strip() if compact else "| ") + bar.join(cells) + ("|" if compact else " |")

    lines = [f"**{title}**", ""] if title else []
    lines += [line(columns), "|" + "|".join("--:" if spec else "--" for spec in columns.values()) + "|"]
    return lines + [line(cell(value, spec) for value, spec in zip(row, columns.values())) for row in rows]


@dataclass
class Table:
    """Rows of named values; `columns` maps each column's heading to its format spec ("" for text, ".2f", ...).

    `wide` = (index columns, column across, value columns) shows a long table across one of its columns in
    BENCHMARKS.md: a row per index, and per value of the column across (per method, say) its values, so that a
    table of families x methods is a row per family; the columns left out stay in the results file."""

    columns: dict[str, str]
    title: str = ""
    rows: list[dict] = field(default_factory=list)
    wide: tuple[list[str], str, list[str]] | None = None

    def add(self, row: dict) -> None:
        """Add a row (every column's value, by heading) and print it, after the heading on the first."""
        if list(row) != list(self.columns):
            raise ValueError(f"a row of {list(row)} in a table of {list(self.columns)}")
        row = {key: plain(value) for key, value in row.items()}
        lines = markdown(self.columns, [list(row.values())], self.title)
        print("\n".join(lines if not self.rows else lines[-1:]), flush=True)
        self.rows.append(row)

    def markdown(self, *, compact: bool = False) -> list[str]:
        """The table as BENCHMARKS.md shows it: its rows, or across a column where it says so (wide)."""
        if self.wide is None:
            return markdown(self.columns, [list(r.values()) for r in self.rows], self.title, compact=compact)
        index, across, values = self.wide
        keys = list(dict.fromkeys(tuple(r[c] for c in index) for r in self.rows))
        heads = list(dict.fromkeys(r[across] for r in self.rows))
        cells = {(tuple(r[c] for c in index), r[across]): r for r in self.rows}
        columns = {c: self.columns[c] for c in index}
        for head in heads:
            name = cell(head, self.columns[across])
            columns |= {(f"{name}: {v}" if len(values) > 1 else name): self.columns[v] for v in values}
        rows = [[*key, *(cells.get((key, h), {}).get(v) for h in heads for v in values)] for key in keys]
        return markdown(columns, rows, self.title, compact=compact)


class Report:
    """The figures of one run of a benchmark, written as one results file when the run is done (all or nothing)."""

    def __init__(self, benchmark: str, argv: list[str], configuration: str = "", folder: Path = RESULTS):
        self.benchmark, self.configuration, self.folder = benchmark, configuration, folder
        self.command = " ".join(["python -m benchmarks", benchmark, *map(_quoted, argv)])
        self.tables: list[Table] = []
        self.notes: list[str] = []
        self.files: list[str] = []
        self.date, self.machine, self.commit = datetime.date.today().isoformat(), machine(), commit()
        self.load_before, self.start = load_average(), time.monotonic()
        print(describe(), flush=True)

    def table(self, columns: dict[str, str], title: str = "", *, wide=None) -> Table:
        """A new table of these columns (heading: format spec); wide: see Table."""
        self.tables.append(Table(columns, title, wide=wide))
        if self.tables[-1] is not self.tables[0]:
            print(flush=True)
        return self.tables[-1]

    def note(self, text: str) -> None:
        """A line under the tables, measured, not judged by hand (a target met or not, a setting of the run)."""
        self.notes.append(text)
        print(f"# {text}", flush=True)

    def beside(self, suffix: str) -> Path:
        """Where a file that goes with the results goes by default (a plot: suffix ".png")."""
        return self.folder / f"{results_name(self.benchmark, self.configuration)}{suffix}"

    def file(self, path: Path | str) -> None:
        """A file the run wrote (a plot), named in the results by its path from the repository where it is inside."""
        path = Path(path).resolve()
        self.files.append(str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path))

    def results(self) -> dict:
        return {
            "benchmark": self.benchmark,
            "configuration": self.configuration,
            "command": self.command,
            "commit": self.commit,
            "date": self.date,
            "machine": self.machine,
            "load_average": [self.load_before, load_average()],
            "seconds": round(time.monotonic() - self.start, 1),
            "notes": self.notes,
            "files": self.files,
            "tables": [{"title": t.title, "columns": t.columns, "wide": t.wide, "rows": t.rows} for t in self.tables],
        }

    def write(self) -> Path | None:
        """Write the results file (None: the run made no table, as `same_answers save`); say where it went."""
        print(describe().replace("# ", "# after: ", 1), flush=True)
        if not self.tables:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.beside(".json")
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(dumps(self.results()), encoding="utf-8")
        temporary.replace(path)
        print(f"# results: {path}", file=sys.stderr, flush=True)
        return path


def _quoted(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def results_name(benchmark: str, configuration: str) -> str:
    return benchmark + (f"--{configuration}" if configuration else "")


def configuration(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The configuration a run's options name: each option given a value other than its default, as option-value
    (a positional's value alone), joined by '--'; options that only count cases or name paths left out."""
    parts = []
    for action in parser._actions:
        if action.dest in NOT_CONFIGURATION or action.dest == "help" or not hasattr(args, action.dest):
            continue
        value = getattr(args, action.dest)
        if value == action.default or value is None or isinstance(value, Path):
            continue
        if isinstance(value, (list, tuple)):
            if list(value) == list(action.default or []) or any(isinstance(v, Path) for v in value):
                continue
            value = "-".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        elif isinstance(value, float):
            value = f"{value:g}"
        name = action.option_strings[0].lstrip("-") if action.option_strings else ""
        parts.append(name if value is True else f"{name}-{value}" if name else str(value))
    return "--".join(re.sub(r"[^A-Za-z0-9._-]+", "-", part).strip("-") for part in parts)


def dumps(results: dict) -> str:
    """JSON with one line per table row, so that a rerun's diff shows the rows that moved."""
    tables = []
    for t in results["tables"]:
        rows = ",\n".join("    " + json.dumps(row, ensure_ascii=False) for row in t["rows"])
        head = json.dumps({k: v for k, v in t.items() if k != "rows"}, ensure_ascii=False)[:-1]
        tables.append(f'  {head}, "rows": [\n{rows}\n  ]}}')
    text = json.dumps({**results, "tables": None}, indent=1, ensure_ascii=False)
    return text.replace('"tables": null', '"tables": [\n' + ",\n".join(tables) + "\n ]") + "\n"


def read(folder: Path = RESULTS) -> list[dict]:
    """Every results file in folder, by benchmark and configuration."""
    found = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]
    return sorted(found, key=lambda r: (r["benchmark"], r["configuration"]))
