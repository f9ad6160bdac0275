"""Each DVC stage as files in, files out: load the artifacts it reads, call its function in stages/, write what it
makes atomically (nothing is written when anything fails). The `twins` commands call these; paths from Paths."""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.artifacts import atomic_write_bytes, atomic_write_text, load, save, write_timing
from pipeline.paths import PATHS, Paths
from stages.aggregate import AggregateParams, Decisions, decide, result_tables, summary_metrics
from stages.decode import DecodeParams, decode as decode_data
from stages.decode import Dataset
from stages.errors import InputError
from stages.group import GroupParams, GroupResult, group_images, summarize
from stages.report import ReportParams, draw
from stages.train import TrainParams, TrainResult, train_ensemble


def decode(params: DecodeParams, paths: Paths = PATHS) -> Dataset:
    start = time.monotonic()
    dataset = decode_data(params)
    for skipped in dataset.skipped:
        print(f"decode: left out {skipped}", file=sys.stderr)
    save(paths.decoded, dataset)
    write_timing(paths.timing("decode"), seconds=time.monotonic() - start)
    return dataset


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
    start = time.monotonic()
    result = train_ensemble(data.images, data.labels, groups.group, params, progress_lines=True,
                            keep_out=groups.odd != "")
    save(paths.oob, result)
    seconds = result.member_seconds
    write_timing(paths.timing("train"), seconds=time.monotonic() - start, members=len(seconds),
                 median_member_seconds=float(np.median(seconds)) if len(seconds) else 0.0)
    return result


def write_results(decisions: Decisions, data: Dataset, group: np.ndarray, seconds: dict[str, float],
                  results: str | Path, metrics: str | Path) -> None:
    """The results folder's tables (stages.aggregate.result_tables) and metrics.json."""
    for name, text in result_tables(decisions, data.labels, group, data.class_names, data.paths,
                                    data.skipped).items():
        atomic_write_text(Path(results) / name, text)
    summary = summary_metrics(decisions, data.labels, group, seconds, data.class_names, data.skipped)
    atomic_write_text(metrics, json.dumps(summary, indent=2) + "\n")


def aggregate(params: AggregateParams, paths: Paths = PATHS) -> Decisions:
    start = time.monotonic()
    data = load(paths.decoded, Dataset)
    groups = load(paths.groups, GroupResult, len(data.labels))
    oob = load(paths.oob, TrainResult, len(data.labels))
    if oob.prob.shape[1] <= data.labels.max() or oob.votes.shape != oob.prob.shape:
        raise InputError(paths.oob, f"holds {oob.prob.shape[1]} classes, the labels {data.labels.max() + 1} "
                                    f"(run 'twins train' again)")
    decisions = decide(data.labels, groups.group, oob, params, odd=groups.odd)
    if decisions.note:
        print(f"aggregate: note: {decisions.note}", file=sys.stderr)
    save(paths.decisions, decisions)
    seconds = {"aggregate": time.monotonic() - start}  # the earlier stages' own are in metrics/<stage>.json
    write_results(decisions, data, groups.group, seconds, paths.results, paths.metrics)
    return decisions


def report(params: ReportParams, paths: Paths = PATHS) -> list[Path]:
    """Every figure and table into the results folder; returns their paths."""
    data = load(paths.decoded, Dataset)
    n = len(data.labels)
    files = draw(data, load(paths.groups, GroupResult, n), load(paths.oob, TrainResult, n),
                 load(paths.decisions, Decisions, n), params)
    out = Path(paths.results)
    for name, content in files.items():
        (atomic_write_text if isinstance(content, str) else atomic_write_bytes)(out / name, content)
    # Pages left over from an earlier, longer report would pass for current ones.
    for stale in out.glob("flagged-*.png"):
        if re.fullmatch(r"flagged-\d+\.png", stale.name) and stale.name not in files:
            stale.unlink()
    return [out / name for name in files]
