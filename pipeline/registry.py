"""The pipeline's stages in order: each one's parameters (its section of params.yaml), the files it reads and writes
(pipeline/paths.py's names) and what it does. The `twins` commands, `twins run`, the Python API's sections, the
check of params.yaml and the parameter reference are all made from this list; dvc.yaml declares the same stages for
DVC, and a test keeps the two equal (docs: "Contributing: Layout")."""

from __future__ import annotations

from dataclasses import dataclass

from stages.aggregate import AggregateParams
from stages.decode import DecodeParams
from stages.export import ExportOptions
from stages.external import ExternalParams
from stages.group import GroupParams
from stages.report import ReportParams
from stages.train import TrainParams


@dataclass(frozen=True)
class Stage:
    name: str  # the stage, its `twins` command and its section of params.yaml
    params: type  # its parameter class (stages/params.py)
    reads: tuple[str, ...]  # the files it reads (Paths fields)
    writes: tuple[str, ...]  # ... and writes
    summary: str  # what it does, in a line (the command's help)
    in_memory: bool = False  # also run in one process, on arrays, by find_issues and hw02.py (pipeline/runner.py)


STAGES = (
    Stage(
        "decode",
        DecodeParams,
        reads=(),
        writes=("decoded", "timings"),
        summary="Read and check the data; write images, labels, class names, source paths and checksums.",
    ),
    Stage(
        "external",
        ExternalParams,
        reads=("decoded",),
        writes=("external",),
        summary="Read and check the evidence you bring: a model's probabilities, embeddings, or the model itself.",
        in_memory=True,
    ),
    Stage(
        "group",
        GroupParams,
        reads=("decoded",),
        writes=("groups", "groups_summary", "timings"),
        summary="Put every image in a twin group with its exact and near-identical copies.",
        in_memory=True,
    ),
    Stage(
        "train",
        TrainParams,
        reads=("decoded", "external", "groups"),
        writes=("oob", "timings"),
        summary="Train the ensemble of subset models (whole twin groups in or out) for out-of-bag evidence.",
        in_memory=True,
    ),
    Stage(
        "aggregate",
        AggregateParams,
        reads=("decoded", "groups", "oob"),
        writes=("decisions", "results", "metrics"),
        summary="Decide every conflicting twin group and flag other samples on strong evidence.",
        in_memory=True,
    ),
    Stage(
        "report",
        ReportParams,
        reads=("decoded", "groups", "oob", "decisions"),
        writes=("results",),
        summary="Draw the figures and the review page of a finished run into the results folder.",
    ),
    Stage(
        "export",
        ExportOptions,
        reads=("decoded", "decisions"),
        writes=("export",),
        summary="Write a cleaned copy of the data set with every change listed in changes.csv.",
    ),
)
BY_NAME = {stage.name: stage for stage in STAGES}
SECTIONS: dict[str, type] = {stage.name: stage.params for stage in STAGES}  # params.yaml's sections, in order
IN_MEMORY: dict[str, type] = {stage.name: stage.params for stage in STAGES if stage.in_memory}  # find_issues' params
RUN = tuple(stage.name for stage in STAGES if stage.name != "export")  # what `twins run` runs, in order
