"""Where the pipeline's files live: written once here for the `twins` commands, and once in dvc.yaml's vars
(a test keeps the two equal)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    decoded: str = "artifacts/decoded.npz"  # decode's Dataset
    external: str = "artifacts/external.npz"  # external's External: the evidence a user brought, checked
    groups: str = "artifacts/groups.npz"  # group's GroupResult
    groups_summary: str = "artifacts/groups.json"  # group sizes and conflicts, for people
    oob: str = "artifacts/oob.npz"  # train's TrainResult
    decisions: str = "artifacts/decisions.npz"  # aggregate's Decisions
    results: str = "results"  # suspects.txt, samples.csv, issues.csv, skipped.txt; the report's figures and tables
    metrics: str = "metrics.json"  # aggregate's counts and threshold (a DVC metric)
    timings: str = "metrics"  # <stage>.json: each stage's wall-clock figures (DVC metrics, kept out of artifacts)
    export: str = "export"  # export's cleaned copy of the data set, with changes.csv

    def timing(self, stage: str) -> str:
        return str(Path(self.timings) / f"{stage}.json")

    def under(self, root: str | Path) -> Paths:
        """The same layout below another folder (tests, benchmarks)."""
        return replace(self, **{f.name: str(Path(root) / getattr(self, f.name)) for f in fields(self)})


PATHS = Paths()
FOLDERS = ("results", "timings", "export")  # the Paths that name folders; the rest name files


def check_layout(paths: Paths, names: tuple[str, ...], writes: bool = False) -> None:
    """Refuse, before any work, a path of `names` that no file (or folder) can take: a folder where a file goes, a
    file where a folder goes or above one, and with `writes` (all of them outputs) a folder it may not write in.
    A run would otherwise fail there only after training."""
    import os

    from stages.errors import InputError

    for name in names:
        path = Path(getattr(paths, name))
        folder = name in FOLDERS
        if path.exists() and path.is_dir() != folder:
            found, wanted = ("file", "folder") if folder else ("folder", "file")
            raise InputError(str(path), f"is a {found}, not a {wanted} (--{name.replace('_', '-')})")
        above = next((p for p in path.parents if p.exists()), None)
        if above is not None and not above.is_dir():
            raise InputError(str(path), f"cannot be written: {above} is a file, not a folder")
        inside = path if folder and path.is_dir() else above
        if writes and inside is not None and not os.access(inside, os.W_OK | os.X_OK):
            raise InputError(str(path), f"cannot be written (no permission to write in {inside})")


READS = {  # the Paths each step reads (decode reads the data, named apart)
    "external": ("decoded",),
    "group": ("decoded",),
    "train": ("decoded", "groups", "external"),
    "aggregate": ("decoded", "groups", "oob"),
    "report": ("decoded", "groups", "oob", "decisions"),
    "export": ("decoded", "decisions"),
}
WRITES = {  # the Paths each step writes
    "decode": ("decoded", "timings"),
    "external": ("external",),
    "group": ("groups", "groups_summary", "timings"),
    "train": ("oob", "timings"),
    "aggregate": ("decisions", "results", "metrics"),
    "report": ("results",),
    "run": ("decoded", "external", "groups", "oob", "decisions", "results", "metrics", "timings"),
    "export": (),
}


WRITTEN_IN = {  # the files each output folder's step writes (stages.aggregate.result_tables, stages.report.draw)
    "--results": re.compile(
        r"suspects\.txt|samples\.csv|issues\.csv|skipped\.txt|embedding\.npy|review\.html|confusion\.csv|"
        r"classes\.csv|loss\.csv|(flagged(-\d+)?|scores|confusion|outliers|map|loss)\.png"
    ),
    "--timings": re.compile(r"(decode|group|train)\.json"),
    "--out": re.compile(r".*"),  # export's, new or empty
}


def check_apart(paths: Paths, step: str, data: tuple[str, ...] = (), out: str | None = None) -> None:
    """Refuse, before any work, outputs of `step` that overlap its inputs or each other, compared resolved (links
    followed, relative to the working folder): an output that is an input or lies inside the data's folder (the
    report's figures would become samples of a class `results` on the next run, a cleaned copy a class `clean`), and
    an input or another output that an output takes the place of (metrics written over samples.csv, samples.csv over
    a manifest of that name). data: the data's own paths (decode.images, decode.labels); out: export's --out."""
    from stages.errors import InputError

    outputs = [(option(name), getattr(paths, name)) for name in WRITES[step]] + ([("--out", out)] if out else [])
    inputs = [(option(name), getattr(paths, name)) for name in READS.get(step, ())] + [("the data", p) for p in data]
    inputs = [(name, given, Path(given).resolve()) for name, given in inputs if given]
    seen: list[tuple[str, str, Path]] = []
    for name, given in outputs:
        path = Path(given).resolve()
        for source, source_given, source_path in inputs:
            if path == source_path or (source_path in path.parents and source_path.is_dir()):
                where = "is" if path == source_path else "lies inside"
                raise InputError(given, f"{where} {source_given} ({source}): outputs never go into the data")
            if writes_over(name, path, source_path):
                raise InputError(given, f"would write over {source_given} ({source}): outputs never go on the data")
        for other, other_given, other_path in seen:
            if path == other_path or writes_over(name, path, other_path) or writes_over(other, other_path, path):
                raise InputError(given, f"overlaps {other} ({other_given}): two outputs given one place")
        seen.append((name, given, path))


def writes_over(name: str, path: Path, other: Path) -> bool:
    """Is `other` one of the files the output folder `name` (at `path`) writes (WRITTEN_IN)?"""
    return other.parent == path and name in WRITTEN_IN and WRITTEN_IN[name].fullmatch(other.name) is not None


def option(name: str) -> str:
    return f"--{name.replace('_', '-')}"
