"""Each DVC stage as files in, files out: load the artifacts it reads, call its function in stages/, write what it
makes atomically (nothing is written when anything fails). The `twins` commands call these; paths from Paths."""

from __future__ import annotations

import io
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.artifacts import (
    atomic_write_bytes,
    atomic_write_text,
    immediate_writes,
    load,
    made_folders,
    save,
    unwritable,
    write_idx,
    write_images,
    write_timing,
)
from pipeline.paths import PATHS, Paths
from pipeline.runner import find_suspects
from stages.aggregate import AggregateParams, Decisions, decide, result_tables, summary_metrics
from stages.decode import Dataset, DecodeParams
from stages.decode import decode as decode_data
from stages.errors import InputError
from stages.export import CHANGES_HEADER, Changes, ExportOptions, apply_choices, plan_changes
from stages.external import External, ExternalParams, read_external
from stages.group import GroupParams, GroupResult, group_images, summarize
from stages.labels import UNLABELLED, class_count, class_name, label_cell
from stages.report import ReportParams, draw
from stages.train import TrainParams, TrainResult, train_ensemble


def decode(params: DecodeParams, paths: Paths = PATHS) -> Dataset:
    start = time.monotonic()
    dataset = decode_data(params)
    for skipped in dataset.skipped:
        print(f"decode: left out {skipped}", file=sys.stderr)
    unlabelled = int((dataset.labels == UNLABELLED).sum())
    if unlabelled:  # said, so that labels left out by mistake do not pass unnoticed
        print(
            f"decode: {unlabelled} of {len(dataset.labels)} samples carry no label: they get a suggested label, "
            f"never a wrong-label flag",
            file=sys.stderr,
        )
    save(paths.decoded, dataset)
    write_timing(paths.timing("decode"), seconds=time.monotonic() - start)
    return dataset


def external(params: ExternalParams, paths: Paths = PATHS, data: Dataset | None = None) -> External:
    """The evidence a user brought, checked against the decoded data (loaded, unless `data` is given)."""
    data = load(paths.decoded, Dataset) if data is None else data
    result = read_external(
        params, data.images, data.labels, data.class_names, class_count(data.labels, data.class_names)
    )
    if result.note:
        print(f"external: note: {result.note}", file=sys.stderr)
    save(paths.external, result)
    return result


def group(params: GroupParams, paths: Paths = PATHS) -> GroupResult:
    data = load(paths.decoded, Dataset)
    start = time.monotonic()
    result = group_images(data.images, params)
    save(paths.groups, result)
    summary = summarize(result.group, data.labels, result.odd) | {"threshold": round(result.threshold, 6)}
    atomic_write_text(paths.groups_summary, json.dumps(summary, indent=2) + "\n")
    write_timing(paths.timing("group"), seconds=time.monotonic() - start)
    return result


def train(params: TrainParams, paths: Paths = PATHS) -> TrainResult:
    data = load(paths.decoded, Dataset)
    groups = load(paths.groups, GroupResult, len(data.labels))
    brought = load(paths.external, External) if Path(paths.external).exists() else None
    start = time.monotonic()
    result = train_ensemble(
        data.images, data.labels, groups.group, params, progress_lines=True, keep_out=groups.odd != "", external=brought
    )
    save(paths.oob, result)
    seconds = result.member_seconds
    write_timing(
        paths.timing("train"),
        seconds=time.monotonic() - start,
        members=len(seconds),
        median_member_seconds=float(np.median(seconds)) if len(seconds) else 0.0,
    )
    return result


def write_results(
    decisions: Decisions,
    data: Dataset,
    group: np.ndarray,
    oob: TrainResult,
    seconds: dict[str, float],
    results: str | Path,
    metrics: str | Path,
) -> None:
    """The results folder's tables (stages.aggregate.result_tables), embedding.npy (the members' mean class
    similarities, float32 (N, K), nan rows where unscored; docs: "How it works: The map") and metrics.json."""
    for name, text in result_tables(decisions, data.labels, group, data.class_names, data.paths, data.skipped).items():
        atomic_write_text(Path(results) / name, text)
    embedding = io.BytesIO()
    np.save(embedding, oob.class_sim.astype(np.float32))
    atomic_write_bytes(Path(results) / "embedding.npy", embedding.getvalue())
    summary = summary_metrics(decisions, data.labels, group, seconds, data.class_names, data.skipped)
    atomic_write_text(metrics, json.dumps(summary, indent=2) + "\n")


def aggregate(params: AggregateParams, paths: Paths = PATHS) -> Decisions:
    start = time.monotonic()
    data = load(paths.decoded, Dataset)
    groups = load(paths.groups, GroupResult, len(data.labels))
    oob = load(paths.oob, TrainResult, len(data.labels))
    if oob.prob.shape[1] <= data.labels.max() or oob.votes.shape != oob.prob.shape:
        raise InputError(
            paths.oob,
            f"holds {oob.prob.shape[1]} classes, the labels {data.labels.max() + 1} (run 'twins train' again)",
        )
    decisions = decide(data.labels, groups.group, oob, params, odd=groups.odd)
    if decisions.note:
        print(f"aggregate: note: {decisions.note}", file=sys.stderr)
    save(paths.decisions, decisions)
    seconds = {"aggregate": time.monotonic() - start}  # the earlier stages' own are in metrics/<stage>.json
    write_results(decisions, data, groups.group, oob, seconds, paths.results, paths.metrics)
    return decisions


def report(params: ReportParams, paths: Paths = PATHS) -> list[Path]:
    """Every figure and table into the results folder; returns their paths."""
    data = load(paths.decoded, Dataset)
    n = len(data.labels)
    return write_report(
        data,
        load(paths.groups, GroupResult, n),
        load(paths.oob, TrainResult, n),
        load(paths.decisions, Decisions, n),
        params,
        paths.results,
    )


def write_report(
    data: Dataset,
    groups: GroupResult,
    oob: TrainResult,
    decisions: Decisions,
    params: ReportParams,
    results: str | Path,
) -> list[Path]:
    files = draw(data, groups, oob, decisions, params)
    out = Path(results)
    for name, content in files.items():
        (atomic_write_text if isinstance(content, str) else atomic_write_bytes)(out / name, content)
    # Pages left over from an earlier, longer report would pass for current ones.
    for stale in out.glob("flagged-*.png"):
        if re.fullmatch(r"flagged-\d+\.png", stale.name) and stale.name not in files:
            stale.unlink()
    return [out / name for name in files]


def run_all(params: dict[str, Any], paths: Paths = PATHS, log=None):
    """Every stage in one process (pipeline.runner.find_suspects), with `params` by section (pipeline/registry.py's
    RUN), writing what the stages would: the artifacts, the results tables, metrics.json and the report, so
    `twins report` and `twins export` work after it."""
    data = decode(params["decode"], paths)
    brought = external(params["external"], paths, data)
    result = find_suspects(
        data.images,
        data.labels,
        external=brought,
        group_params=params["group"],
        train_params=params["train"],
        aggregate_params=params["aggregate"],
        log=log or (lambda message: None),
        progress_lines=True,
    )
    save(paths.groups, result.groups)
    save(paths.oob, result.oob)
    save(paths.decisions, result.decisions)
    write_results(result.decisions, data, result.groups.group, result.oob, result.seconds, paths.results, paths.metrics)
    write_report(data, result.groups, result.oob, result.decisions, params["report"], paths.results)
    return result


def export(
    out: str | Path,
    options: ExportOptions = ExportOptions(),
    *,
    choices: str | None = None,
    form: str = "auto",
    source: str = "",
    copy: bool = False,
    dry_run: bool = False,
    paths: Paths = PATHS,
) -> Changes:
    """A cleaned copy of the data set in `out` (docs: "Export"): the decisions applied (or a
    person's choices from the review page's CSV), as a manifest of the source files (copied on `copy`), an .npz,
    or idx files (form "auto": a manifest where the samples came from files, an .npz where `source`, decode's
    images, is numpy, else idx), and changes.csv beside it. The original is never written to; `out` must be new or
    empty, and is filled through a temporary folder beside it, so it is complete or absent. dry_run: write
    nothing, print what would change."""
    import csv
    import io
    import os
    import shutil
    import tempfile

    from stages.decode_readers import kind_of

    data = load(paths.decoded, Dataset)
    decisions = load(paths.decisions, Decisions, len(data.labels))
    if choices is not None:
        try:
            with open(choices, newline="", encoding="utf-8-sig") as f:  # -sig: as spreadsheets save CSV
                rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise InputError(choices, f"cannot be read as the review page's CSV ({exc})") from None
        changes = apply_choices(data.labels, rows, data.class_names, choices)
    else:
        changes = plan_changes(data.labels, decisions, options)
    if form == "auto":
        form = "manifest" if data.paths else "npz" if source and kind_of(source) in ("npz", "npy") else "idx"
    if form == "manifest" and not data.paths:
        raise InputError("--format", "manifest needs samples read from files (these came from arrays or idx)")

    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(CHANGES_HEADER)
    names = data.class_names
    sure = np.where(changes.action == "label", decisions.suggested_prob, decisions.wrong_prob)
    for i in changes.changed():
        new_label = class_name(changes.new_label[i], names) if changes.keep[i] else ""
        writer.writerow(
            [
                i,
                source_path(data, i),
                label_cell(data.labels[i], names),
                new_label,
                changes.action[i],
                changes.reason[i],
                f"{sure[i]:.6g}",
            ]
        )
    kept = np.flatnonzero(changes.keep)
    labelled = int((changes.action == "label").sum())
    summary = (
        f"{int((changes.action == 'relabel').sum())} relabelled, "
        + (f"{labelled} unlabelled labelled, " if labelled else "")
        + f"{int((~changes.keep).sum())} removed, "
        f"{len(kept)} of {len(data.labels)} samples kept"
    )
    if dry_run:
        print(f"export (dry run, nothing written): {summary}")
        print(table.getvalue(), end="")
        return changes
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(str(out), "exists and is not an empty folder: export writes a new copy, never over data")
    try:
        made_folders(out.parent)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as exc:
        raise unwritable(out.parent, exc) from None
    try:
        with immediate_writes():  # the staging folder is this command's all-or-nothing
            write_export(staging, data, changes, form, copy, table.getvalue())
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise unwritable(out, exc) from None
        raise
    print(f"export: {summary} -> {out}", file=sys.stderr)
    return changes


def source_path(data: Dataset, i: int) -> str:
    """Sample i's source file as an absolute path ("" where the samples came from arrays or idx)."""
    return str(Path(data.paths[i]).resolve()) if data.paths else ""


def folder_name(name: str) -> str:
    """A class name as one folder of export's copy: characters a path would read as a separator (or "." and "..")
    percent-escaped, so a class named "../x" stays inside the copy. The manifest keeps the name itself."""
    safe = "".join(f"%{ord(c):02X}" if c in "/\\%" or ord(c) < 32 else c for c in name)
    return {".": "%2E", "..": "%2E%2E"}.get(safe, safe)


def write_export(folder: Path, data: Dataset, changes: Changes, form: str, copy: bool, changes_csv: str) -> None:
    """The kept samples with their new labels into `folder`, in `form` (export's docstring), and changes.csv."""
    import csv
    import io
    import shutil

    kept, names = np.flatnonzero(changes.keep), data.class_names
    labels = changes.new_label[kept]
    if form == "manifest":
        manifest = io.StringIO()
        rows = csv.writer(manifest, lineterminator="\n")
        rows.writerow(["path", "label"])
        for i, label in zip(kept, labels):
            target = source_path(data, i)
            if copy:
                relative = Path("files") / folder_name(class_name(label, names)) / f"{i}-{Path(data.paths[i]).name}"
                (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copy2(data.paths[i], folder / relative)
                except OSError as exc:
                    if exc.filename != data.paths[i]:
                        raise
                    raise InputError(data.paths[i], f"cannot be copied ({exc.strerror or exc})") from None
                target = relative.as_posix()
            rows.writerow([target, label_cell(label, names)])
        atomic_write_text(folder / "manifest.csv", manifest.getvalue())
    elif form == "npz":
        with open(folder / "data.npz", "wb") as f:
            np.savez(
                f,
                images=data.images[kept],
                labels=labels,
                **({"class_names": np.array(data.class_names)} if data.class_names else {}),
            )
    else:
        if len(labels) and labels.max() > 255:
            raise InputError("--format", "idx labels are bytes: more than 256 classes need --format npz")
        if (labels == UNLABELLED).any():
            raise InputError(
                "--format",
                "idx labels cannot mark unlabelled samples: use --format npz (-1 marks "
                "them) or label them (export.label_unlabelled)",
            )
        write_images(folder / f"images-idx{3 if data.images.shape[-1] == 1 else 4}-ubyte.gz", data.images[kept])
        write_idx(folder / "labels-idx1-ubyte.gz", labels.astype(np.uint8))
    atomic_write_text(folder / "changes.csv", changes_csv)
