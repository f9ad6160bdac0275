"""Where the pipeline's files live: written once here for the `twins` commands, and once in dvc.yaml's vars
(a test keeps the two equal)."""

from __future__ import annotations

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
