"""How many of Rolnick-style copy groups can be decided right at all? A ceiling for benchmarks.massive_noise.

    python -m benchmarks.copies_ceiling   # ~5 min on 2 cores

For the copies-5 and copies-20 shapes of benchmarks/massive_noise.py (same cases, seeds 100-104), the share of
groups whose true label each method names:
- `majority`: the group's most common label;
- `ours`: the label pipeline.api.find_issues suggests for the group (defaults, as in benchmarks.massive_noise);
- `pooled best`: the group's own label counts times its k most similar groups' pooled counts (pixel correlation,
  best over one-pixel shifts), iterated as label propagation; the best of a grid (k in 5, 10, 20; smoothing in 0.1,
  0.5) chosen with the truth, so an optimistic figure for any method that pools labels over similar pictures.
Each wrong group costs about (its true label's count + the winner's count) errors, 2-3 for copies-5, about 7 for
copies-20: that turns a share of groups into errors.
"""

from __future__ import annotations

import numpy as np

from benchmarks.machine import describe
from benchmarks.massive_noise import label_counts, make_case
from pipeline.plant import load_source
from stages.neighbours import best_correlation, shifted_references


def similarity(images: np.ndarray) -> np.ndarray:
    s = best_correlation(images, shifted_references(images, 1))
    np.fill_diagonal(s, -np.inf)
    return s


def propagated(counts: np.ndarray, order: np.ndarray, k: int, smoothing: float) -> np.ndarray:
    p = counts / counts.sum(1, keepdims=True)
    for _ in range(30):
        q = counts * (p[order[:, :k]].mean(1) + smoothing / counts.shape[1])
        p = q / q.sum(1, keepdims=True)
    return p.argmax(1)


def main() -> None:
    from pipeline.api import find_issues

    source = load_source("mnist")
    print(describe())
    print("| shape | cases | groups | majority | ours | pooled best (optimistic) |")
    print("|---|---:|---:|---:|---:|---:|")
    for shape in ("copies-5", "copies-20"):
        right = {"majority": [], "ours": [], "pooled": []}
        for seed in range(100, 105):
            images, given, truth, group = make_case(shape, seed, *source)
            first = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
            counts = label_counts(given, group).astype(float)
            true = truth[first]
            order = np.argsort(-similarity(images[first]), 1)
            right["majority"].append((counts.argmax(1) == true).mean())
            right["ours"].append(
                (find_issues(images, given, params={"train": {"seed": seed}}).suggested[first] == true).mean()
            )
            right["pooled"].append(
                max((propagated(counts, order, k, s) == true).mean() for k in (5, 10, 20) for s in (0.1, 0.5))
            )
        print(
            f"| {shape} | 5 | {len(first)} | {np.mean(right['majority']):.2f} | {np.mean(right['ours']):.2f} "
            f"| {np.mean(right['pooled']):.2f} |",
            flush=True,
        )
    print(describe().replace("# ", "# after: ", 1))


if __name__ == "__main__":
    main()
