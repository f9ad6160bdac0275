"""How much noise may a copy carry and still find its original? The group stage by noise level.

Evil twins grouped with their original, and groups that merge distinct images, by the copies' noise and
max_noise_sigma.

    python -m benchmarks group_noise                      # 10 cases per row, about 1 min
    python -m benchmarks group_noise --caps 16 24 --seeds 20

Each case is 150 MNIST test digits and 15 evil twins whose copies carry Gaussian noise of a standard deviation drawn
up to `noise` grey levels, a brightness/contrast change up to `brightness` and a one-pixel shift (the planting
tool's perturbations).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pipeline.plant import PlantSpec, copies_and_originals, load_source, plant
from stages.group import GroupParams, group_images

# (noise sigma, brightness): our own copies' strongest, then beyond
PERTURBATIONS = ((8.0, 0.12), (16.0, 0.3), (20.0, 0.2), (24.0, 0.3), (32.0, 0.0), (0.0, 0.3), (0.0, 0.5))
COLUMNS = {
    "noise sigma up to": "g",
    "brightness up to": ".0%",
    "max_noise_sigma": "g",
    "grouped": "d",  # evil twins grouped with their original
    "twins": "d",
    "merged": "d",  # groups holding distinct images
}


def options(parser) -> None:
    parser.add_argument("--caps", type=float, nargs="+", default=[16.0, 24.0, 32.0], help="max_noise_sigma values")
    parser.add_argument("--seeds", type=int, default=10, help="cases per row (seeds 100, 101, ...)")


def run(args, report) -> None:
    images, labels = load_source("mnist")
    wide = (["noise sigma up to", "brightness up to", "twins"], "max_noise_sigma", ["grouped", "merged"])
    table = report.table(
        COLUMNS, "Twins grouped with their original, and distinct images merged, by max_noise_sigma", wide=wide
    )
    for noise, brightness in PERTURBATIONS:
        perturbed = dict(noise_sigma=noise, brightness=brightness, shift=1)
        cases = [plant(images, labels, PlantSpec(**perturbed, seed=100 + k)) for k in range(args.seeds)]
        for cap in args.caps:
            grouped = total = merges = 0
            for case in cases:
                group = group_images(case.images, replace(GroupParams(), max_noise_sigma=cap)).group
                copies, originals = copies_and_originals(case)
                grouped += int((group[copies] == group[originals]).sum())
                total += len(copies)
                merges += sum(len(np.unique(case.source[group == g])) > 1 for g in np.unique(group))
            table.add(dict(zip(COLUMNS, [noise, brightness, cap, grouped, total, merges])))
