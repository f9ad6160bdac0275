"""Each DVC stage as files in, files out: load the artifacts it reads, call its function in stages/, write what it
makes atomically (nothing is written when anything fails). The `twins` commands call these; paths from Paths."""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from pipeline.artifacts import (
    atomic_write_bytes,
    atomic_write_text,
    load,
    save,
    staged_folder,
    write_idx,
    write_images,
    write_timing,
)
from pipeline.choices import read_choices
from pipeline.paths import PATHS, Paths, check_apart
from pipeline.runner import find_suspects
from stages.aggregate import AggregateParams, Decisions, decide, result_tables, summary_metrics
from stages.decode import Dataset, DecodeParams
from stages.decode import decode as decode_data
from stages.decode_readers import file_digest
from stages.errors import InputError
from stages.export import CHANGES_HEADER, Changes, ExportOptions, apply_choices, plan_changes
from stages.external import External, ExternalParams, read_external
from stages.group import GroupParams, GroupResult, group_images, summarize
from stages.labels import UNLABELLED, class_count, class_name, label_cell
from stages.report import ReportParams, draw
from stages.tables import cell, csv_text
from stages.train import TrainParams, TrainResult, train_ensemble

A = TypeVar("A", External, GroupResult, TrainResult, Decisions)


def decode(params: DecodeParams, paths: Paths = PATHS) -> Dataset:
    check_apart(paths, "decode", data=data_paths(params))
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
    check_apart(paths, "external", data=external_paths(params))
    data = load(paths.decoded, Dataset) if data is None else data
    result = read_external(
        params, data.images, data.labels, data.class_names, class_count(data.labels, data.class_names)
    )
    if result.note:
        print(f"external: note: {result.note}", file=sys.stderr)
    save(paths.external, bound(result, data))
    return result


def external_paths(params: ExternalParams) -> tuple[str, ...]:
    """The files of the evidence a user brought (probabilities, features, a model), as further inputs."""
    return tuple(path for path in (params.pred_probs, params.features, params.model) if path)


def data_paths(params: DecodeParams) -> tuple[str, ...]:
    """The paths decode reads: the images, and the labels where they are a file of their own."""
    from stages.decode_readers import kind_of

    separate = params.labels and kind_of(params.images) in ("idx", "npy")
    return (params.images, params.labels) if separate else (params.images,)


def load_decoded(paths: Paths, step: str) -> Dataset:
    """The decoded data, for `step`, whose outputs are first checked apart from its inputs and from the data the
    artifact was decoded from (a --results inside the image folder would become a class of its own)."""
    check_apart(paths, step)
    data = load(paths.decoded, Dataset)
    check_apart(paths, step, data=(data.source,) if data.source else ())
    return data


def bound(result: A, data: Dataset) -> A:
    """`result` marked as made from `data` (its fingerprint), as every artifact after decode's is saved."""
    result.dataset = data.fingerprint
    return result


def load_made_from(path: str, kind: type[A], data: Dataset, decoded: str) -> A:
    """The artifact at `path`, checked to hold a row per sample of `data` and to have been made from `data`: an
    artifact of another run, on other data of the same size, would otherwise be applied to these samples."""
    result = load(path, kind, len(data.labels))
    if result.dataset != data.fingerprint:
        raise InputError(
            path,
            f"was made from other data ({result.dataset or 'unrecorded'}) than {decoded} holds ({data.fingerprint}): "
            f"run 'twins {kind.STAGE}' again",
        )
    return result


def group(params: GroupParams, paths: Paths = PATHS) -> GroupResult:
    data = load_decoded(paths, "group")
    start = time.monotonic()
    result = bound(group_images(data.images, params), data)
    save(paths.groups, result)
    summary = summarize(result.group, data.labels, result.odd) | {"threshold": round(result.threshold, 6)}
    atomic_write_text(paths.groups_summary, json.dumps(summary, indent=2) + "\n")
    write_timing(paths.timing("group"), seconds=time.monotonic() - start)
    return result


def train(params: TrainParams, paths: Paths = PATHS) -> TrainResult:
    data = load_decoded(paths, "train")
    groups = load_made_from(paths.groups, GroupResult, data, paths.decoded)
    brought = load_made_from(paths.external, External, data, paths.decoded) if Path(paths.external).exists() else None
    start = time.monotonic()
    result = train_ensemble(
        data.images, data.labels, groups.group, params, progress_lines=True, keep_out=groups.odd != "", external=brought
    )
    save(paths.oob, bound(result, data))
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
    data = load_decoded(paths, "aggregate")
    groups = load_made_from(paths.groups, GroupResult, data, paths.decoded)
    oob = load_made_from(paths.oob, TrainResult, data, paths.decoded)
    if oob.prob.shape[1] <= data.labels.max() or oob.votes.shape != oob.prob.shape:
        raise InputError(
            paths.oob,
            f"holds {oob.prob.shape[1]} classes, the labels {data.labels.max() + 1} (run 'twins train' again)",
        )
    decisions = bound(decide(data.labels, groups.group, oob, params, odd=groups.odd), data)
    if decisions.note:
        print(f"aggregate: note: {decisions.note}", file=sys.stderr)
    save(paths.decisions, decisions)
    seconds = {"aggregate": time.monotonic() - start}  # the earlier stages' own are in metrics/<stage>.json
    write_results(decisions, data, groups.group, oob, seconds, paths.results, paths.metrics)
    return decisions


def report(params: ReportParams, paths: Paths = PATHS) -> list[Path]:
    """Every figure and table into the results folder; returns their paths."""
    data = load_decoded(paths, "report")
    made = [
        load_made_from(path, kind, data, paths.decoded)
        for path, kind in ((paths.groups, GroupResult), (paths.oob, TrainResult), (paths.decisions, Decisions))
    ]
    return write_report(data, *made, params, paths.results)


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
    check_apart(paths, "run", data=data_paths(params["decode"]) + external_paths(params["external"]))
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
    for path, made in ((paths.groups, result.groups), (paths.oob, result.oob), (paths.decisions, result.decisions)):
        save(path, bound(made, data))
    write_results(result.decisions, data, result.groups.group, result.oob, result.seconds, paths.results, paths.metrics)
    write_report(data, result.groups, result.oob, result.decisions, params["report"], paths.results)
    return result


def export(
    out: str | Path,
    options: ExportOptions = ExportOptions(),
    *,
    choices: str | None = None,
    form: str = "auto",
    copy: bool = False,
    dry_run: bool = False,
    paths: Paths = PATHS,
) -> Changes:
    """A cleaned copy of the data set in `out` (docs: "Export"): the decisions applied (or a person's choices
    from the review page's CSV, pipeline/choices.py), as a manifest of the source files (copied on `copy`), an .npz,
    or idx files (form "auto": the data's own form, Dataset.source_kind: a manifest where the samples came from
    files, an .npz where from numpy arrays, else idx), and changes.csv beside it. Decisions and choices must have
    been made for the decoded data, and each source file must still hold what was decoded. The original is never
    written to; `out` must be new or empty and outside the data, and is filled through a temporary folder beside it,
    so it is complete or absent. dry_run: write nothing, print what would change."""
    data = load(paths.decoded, Dataset)
    decisions = load_made_from(paths.decisions, Decisions, data, paths.decoded)
    if choices is not None:
        rows = read_choices(choices, data, paths.decoded)
        changes = apply_choices(data.labels, rows, data.class_names, choices, paths=data.paths)
    else:
        changes = plan_changes(data.labels, decisions, options)
    form = export_form(data, form)
    table, summary = changes_table(data, decisions, changes), export_summary(data, changes)
    if dry_run:
        print(f"export (dry run, nothing written): {summary}")
        print(table, end="")
        return changes
    check_apart(paths, "export", data=(data.source,) if data.source else (), out=str(out))
    with staged_folder(Path(out)) as staging:
        write_export(staging, data, changes, form, copy, table)
    print(f"export: {summary} -> {out}", file=sys.stderr)
    return changes


def export_form(data: Dataset, form: str) -> str:
    """The form export writes: `form`, or for "auto" the data's own (a manifest where the samples came from files,
    an .npz where they came from .npz or .npy arrays, else idx)."""
    if form == "auto":
        return "manifest" if data.paths else "npz" if data.source_kind in ("npz", "npy") else "idx"
    if form == "manifest" and not data.paths:
        raise InputError("--format", "manifest needs samples read from files (these came from arrays or idx)")
    return form


def changes_table(data: Dataset, decisions: Decisions, changes: Changes) -> str:
    """changes.csv: a row per changed sample (CHANGES_HEADER), names and paths as stages.tables.cell writes them."""
    names = data.class_names
    sure = np.where(changes.action == "label", decisions.suggested_prob, decisions.wrong_prob)
    rows = [
        [
            i,
            cell(source_path(data, i)),
            cell(label_cell(data.labels[i], names)),
            cell(class_name(changes.new_label[i], names)) if changes.keep[i] else "",
            changes.action[i],
            changes.reason[i],
            f"{sure[i]:.6g}",
        ]
        for i in changes.changed()
    ]
    return csv_text([CHANGES_HEADER, *rows])


def export_summary(data: Dataset, changes: Changes) -> str:
    labelled = int((changes.action == "label").sum())
    return (
        f"{int((changes.action == 'relabel').sum())} relabelled, "
        + (f"{labelled} unlabelled labelled, " if labelled else "")
        + f"{int((~changes.keep).sum())} removed, "
        f"{int(changes.keep.sum())} of {len(data.labels)} samples kept"
    )


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
    kept, names = np.flatnonzero(changes.keep), data.class_names
    labels = changes.new_label[kept]
    if form == "manifest":
        rows = []
        for i, label in zip(kept, labels):
            target = source_path(data, i)
            if copy:
                relative = Path("files") / folder_name(class_name(label, names)) / f"{i}-{Path(data.paths[i]).name}"
                copy_checked(data, i, folder / relative)
                target = relative.as_posix()
            else:
                check_unchanged(data, i)
            rows.append([cell(target), cell(label_cell(label, names))])
        atomic_write_text(folder / "manifest.csv", csv_text([["path", "label"], *rows]))
    elif form == "npz":
        with open(folder / "data.npz", "wb") as f:
            named = {"class_names": np.array(names)} if names else {}
            np.savez(f, images=data.images[kept], labels=npz_labels(labels, names), **named)
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


def npz_labels(labels: np.ndarray, names: list[str] | None) -> np.ndarray:
    """An .npz's labels in the form decode reads back as the same classes: the class names where the data name
    their classes ("" for an unlabelled sample), else the ids (-1: unlabelled)."""
    if not names:
        return labels
    return np.array([label_cell(label, names) for label in labels], dtype=str)


def check_unchanged(data: Dataset, i: int) -> None:
    """InputError unless sample i's source file still holds the bytes decode read (Dataset.digests)."""
    try:
        with open(data.paths[i], "rb") as f:
            digest = file_digest(f)
    except OSError as exc:
        raise InputError(data.paths[i], f"cannot be read ({exc.strerror or exc})") from None
    if len(data.digests) and digest != data.digests[i].tobytes():
        raise changed_since(data, i)


def changed_since(data: Dataset, i: int) -> InputError:
    return InputError(
        data.paths[i],
        "has changed since it was decoded: its decision is about other content (run 'twins run' again)",
    )


def copy_checked(data: Dataset, i: int, target: Path) -> None:
    """Copy sample i's source file to `target`, hashing the bytes as they go: if they are not what decode read
    (Dataset.digests), the copy is refused (the staging folder it is in is then removed)."""
    import shutil

    from stages.decode_readers import HASH_CHUNK

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        source = open(data.paths[i], "rb")
    except OSError as exc:
        raise InputError(data.paths[i], f"cannot be copied ({exc.strerror or exc})") from None
    digest = hashlib.sha256()
    with source, open(target, "wb") as copy:
        while chunk := source.read(HASH_CHUNK):
            digest.update(chunk)
            copy.write(chunk)
    if len(data.digests) and digest.digest()[: data.digests.shape[1]] != data.digests[i].tobytes():
        raise changed_since(data, i)
    shutil.copystat(data.paths[i], target)
