"""Wall time, throughput and out-of-bag accuracy of the train stage by model kind and n_jobs.

On clean MNIST digits: 165 of them for every model kind, and with --large the default ensemble on all 10,000.

    python -m benchmarks train_speed              # 165 samples: every model kind, n_jobs 1 and 2
    python -m benchmarks train_speed --large      # also the default ensemble on all 10,000 test digits

Groups are the samples themselves (clean data, no copies). Throughput counts training samples seen per second
(steps x batch size over all members, divided by the stage's wall time). Out-of-bag accuracy: the share of samples
whose mean out-of-bag prediction is their label.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from pipeline.plant import load_source
from stages.train import MODEL_KINDS, TrainParams, train_ensemble


def measure(images, labels, params: TrainParams) -> dict:
    group = np.arange(len(labels))
    start = time.monotonic()
    result = train_ensemble(images, labels, group, params)
    seconds = time.monotonic() - start
    steps = int(result.member_steps.sum())
    predicted = np.nan_to_num(result.prob, nan=0).argmax(1)
    return {
        "members": len(result.member_seconds),
        "seconds": seconds,
        "samples_per_s": steps * params.batch_size / seconds,
        "oob_accuracy": float((predicted == labels)[result.n_scored > 0].mean()),
    }


def options(parser) -> None:
    parser.add_argument("--large", action="store_true", help="also train on all 10,000 MNIST test digits")


def run(args, report) -> None:
    images, labels = load_source("mnist")
    pick = np.random.default_rng(0).choice(len(labels), 165, replace=False)
    runs = [(165, replace(TrainParams(), model=kind, n_jobs=n_jobs)) for kind in MODEL_KINDS for n_jobs in (1, 2)]
    if args.large:
        runs += [(len(labels), replace(TrainParams(), n_jobs=n_jobs)) for n_jobs in (2,)]
    columns = {"N": "d", "model": "", "n_jobs": "d", "members": "d", "wall s": ".1f", "samples/s": ",.0f"}
    table = report.table(columns | {"OOB accuracy": ".3f"})
    for n, params in runs:
        x, y = (images[pick], labels[pick]) if n == 165 else (images, labels)
        row = measure(x, y, params)
        values = [n, params.model, params.n_jobs, row["members"], row["seconds"], row["samples_per_s"]]
        table.add(dict(zip(table.columns, [*values, row["oob_accuracy"]])))
