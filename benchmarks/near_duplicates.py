"""Would a model's embeddings find the edited copies our pixel test misses? (issue 45)

Issue 45 asks that pairs whose given embeddings are almost identical join the twin groups where the pixel test cannot
decide, if a benchmark shows no distinct items merge. This measures whether they can. Per source, the 2,000 clean
items and the 40 edited copies of each edit that `geometric_twins` builds (same draws), embedded by the strong
model of `external_evidence` (a CNN trained on the source's training set, its 512-wide penultimate layer: the
features a user with a model would bring), cosine distances. Per edit: copies the group stage joins to their
original with its defaults (`pixels`), copies whose original is their nearest item by embedding (`nearest`), the
median of the copy's distance to its original over the original's distance to its nearest other clean item
(`ratio`: below 1, the copy is nearer than any distinct item), and copies that Datalab's near-duplicate check
(`Datalab.find_issues(features=, issue_types={"near_duplicate": {}})`, its default radius: 0.13 of the median
nearest-neighbour distance) puts in a set with their original (`datalab`). Per source: the clean pairs that check
calls near-duplicates, and of them pairs whose labels differ: distinct items a join by embeddings would merge.

    python -m benchmarks near_duplicates                      # MNIST and Fashion-MNIST: about 2 minutes on 2 cores
    python -m benchmarks near_duplicates --sources fashion
"""

from __future__ import annotations

import functools

import numpy as np

from benchmarks import geometric_twins as geo

EDITS = ("jpeg", "rotate", "resize", "shift2", "crop", "mirror")


@functools.cache
def strong_model(source: str):
    """The source's strong model (external_evidence's), loaded once."""
    import torch

    from benchmarks.external_evidence import CACHE, network, strong

    strong(source, CACHE)  # trains and caches the weights the first time
    model = network(10)
    model.load_state_dict(torch.load(CACHE / f"{source}-strong.pt"))
    return model


def embed(source: str, images: np.ndarray) -> np.ndarray:
    """Unit-length features (N, 512) of grey uint8 (N, 28, 28, 1) images by the source's strong model."""
    from benchmarks.external_evidence import predict

    _, features = predict(strong_model(source), images[..., 0])
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def datalab_sets(features: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
    """Datalab's near-duplicate sets on the features: each item's set of near-duplicates (indices)."""
    from cleanlab import Datalab

    lab = Datalab({"label": labels}, label_name="label", verbosity=0)
    lab.find_issues(features=features, issue_types={"near_duplicate": {}})
    return [np.asarray(s, int) for s in lab.get_info("near_duplicate")["near_duplicate_sets"]]


COPIES = {"source": "", "edit": "", "pixels": "d", "nearest": "d", "ratio": ".2f", "datalab": "d"}
CLEAN = {"source": "", "near-duplicate pairs": "d", "with different labels": "d"}


def options(parser) -> None:
    parser.add_argument("--sources", nargs="+", default=["mnist", "fashion"], choices=["mnist", "fashion"])


def run(args, report) -> None:
    from stages.group import GroupParams, group_images

    copies_table = report.table(
        COPIES, f"Edited copies (of {geo.N_COPIES}) found: by the pixel test's defaults, and by the embeddings"
    )
    clean_rows = []
    for source in args.sources:
        images, labels = geo.load(source)
        pick = geo.clean_items(images)
        clean, labels = images[pick], labels[pick]
        originals = np.sort(np.random.default_rng(1).choice(geo.N_CLEAN, geo.N_COPIES, replace=False))
        base = embed(source, clean)
        nearest_other = 1 - np.sort(base @ base.T, axis=1)[:, -2]  # the largest similarity is the item itself
        sets = datalab_sets(base, labels)
        pairs = {(i, int(j)) for i, s in enumerate(sets) for j in s if i < j}
        mixed = sum(labels[i] != labels[j] for i, j in pairs)
        clean_rows.append({"source": source, "near-duplicate pairs": len(pairs), "with different labels": mixed})
        for k, edit in enumerate(geo.EDITS):
            if edit not in EDITS:
                continue
            copies = geo.edited(clean[originals], edit, seed=k)  # geometric_twins' draws
            group = group_images(np.concatenate([clean, copies]), GroupParams()).group
            features = embed(source, copies)
            distance = 1 - features @ base.T
            own = distance[np.arange(len(copies)), originals]
            both = np.concatenate([base, features])
            joined = datalab_sets(both, np.r_[labels, labels[originals]])[geo.N_CLEAN :]
            copies_table.add(
                {
                    "source": source,
                    "edit": edit,
                    "pixels": int((group[geo.N_CLEAN :] == group[originals]).sum()),
                    "nearest": int((distance.argmin(1) == originals).sum()),
                    "ratio": float(np.median(own / np.maximum(nearest_other[originals], 1e-12))),
                    "datalab": int(sum(o in s for o, s in zip(originals, joined))),
                }
            )
    clean_table = report.table(CLEAN, f"Datalab's near-duplicate pairs among {geo.N_CLEAN} clean items")
    for row in clean_rows:
        clean_table.add(row)
