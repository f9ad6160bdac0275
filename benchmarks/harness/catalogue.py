"""The benchmarks there are, and BENCHMARKS.md made from their results files.

A benchmark is a module benchmarks/NAME.py with a docstring (a line that says what it asks, then a paragraph on what
it measures, ended by an indented block of example commands: its introduction in BENCHMARKS.md), `options(parser)`
that adds its command-line options, and `run(args, report)` that measures and hands its tables to the report
(benchmarks/harness/record.py).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

from benchmarks.harness.data import REPO
from benchmarks.harness.record import RESULTS, Table, read

DOCUMENT = REPO / "BENCHMARKS.md"
HEADER = """# Benchmarks

Made by `python -m benchmarks render` from `benchmarks/results/`, where each benchmark's latest run per configuration
leaves its figures: not edited by hand, and today's figures only (earlier ones are in this file's history in git).
Each table stands under the command that made it, with that run's commit, date and machine; times compare only
within one run. A table of, say, families by methods shows a row per family and a column per method; its other
columns are in the results file. `python -m benchmarks` lists the benchmarks, `python -m benchmarks NAME --help`
tells what one measures and its options.
"""


def names() -> list[str]:
    """Every benchmark, by name (its module's), in alphabetical order."""
    import benchmarks

    return sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if not m.ispkg and not m.name.startswith("_")
    )


def load(name: str) -> ModuleType:
    return importlib.import_module(f"benchmarks.{name}")


def summary(module: ModuleType) -> str:
    """The docstring's first line: what the benchmark asks, in a line."""
    return (module.__doc__ or "").strip().splitlines()[0]


def intro(module: ModuleType) -> str:
    """The docstring's paragraphs after its first line, up to its first indented block (the example commands)."""
    lines = []
    for line in (module.__doc__ or "").strip().splitlines()[1:]:
        if line.startswith("    "):
            break
        lines.append(line)
    return "\n".join(lines).strip()


def section(name: str, runs: list[dict], machine: str | None = None) -> list[str]:
    """A benchmark's part of BENCHMARKS.md: what it asks, and where it has results, what it measures and its tables,
    each under its command, commit, date and machine (left out where every run shares it: machine)."""
    module = load(name)
    lines = [f"## {name}: {summary(module).rstrip('.')}", ""]
    if not runs:
        return lines + [f"No results yet: `python -m benchmarks {name}`.", ""]
    lines += [intro(module), ""]
    for run in runs:
        where = "" if run["machine"] == machine else f", {run['machine']}"
        load_average = " to ".join(str(x) for x in run["load_average"])
        lines += [
            f"`{run['command']}`: commit {run['commit']}, {run['date']}{where}, load average {load_average}, "
            f"{duration(run['seconds'])}.",
            "",
        ]
        for table in run["tables"]:
            lines += Table(**table).markdown(compact=True) + [""]
        lines += [f"- {note}" for note in run["notes"]] + ([""] if run["notes"] else [])
        if run["files"]:
            lines += [f"Written with the tables: {', '.join(f'`{f}`' for f in run['files'])}.", ""]
    return lines


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def render(folder: Path = RESULTS) -> str:
    """BENCHMARKS.md: per benchmark its introduction, then each results file's tables under its command."""
    results = read(folder)
    unknown = sorted({r["benchmark"] for r in results} - set(names()))
    if unknown:
        raise ValueError(f"results of benchmarks that do not exist: {', '.join(unknown)} (in {folder})")
    machines = {r["machine"] for r in results}
    machine = machines.pop() if len(machines) == 1 else None
    lines = [HEADER + (f"\nEvery run below was on one machine: {machine}.\n" if machine else "")]
    for name in names():
        lines += section(name, [r for r in results if r["benchmark"] == name], machine)
    return "\n".join(lines).rstrip("\n") + "\n"


def listing() -> str:
    """One line per benchmark: its name and what it measures."""
    width = max(map(len, names()))
    lines = [f"{name:<{width}}  {summary(load(name))}" for name in names()]
    return "\n".join(
        ["python -m benchmarks NAME [options]   runs one (--help: its options); the benchmarks:", *lines, ""]
        + [f"python -m benchmarks render   writes {DOCUMENT.name} from benchmarks/results/"]
    )
