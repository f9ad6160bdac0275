"""Evidence from pixels alone, no training: nearest neighbours' class probabilities, the groups most like each
group, and how far an image lies from the labelled pictures (docs: "How it works: train"). Each compares
standardised images by correlation, best over small shifts, never with the image's own twin group."""

from __future__ import annotations

import numpy as np

from stages.labels import UNLABELLED, open_questions
from stages.shifts import overlap_regions

NEIGHBOURS = 3  # a class's evidence is the mean similarity to its NEIGHBOURS most similar training images
NEIGHBOUR_REFS = 2000  # at most this many training images to compare with (a random subset beyond)
NEIGHBOUR_CHECKS = 1000  # at most this many clean samples scored, to measure how often neighbours are right
POOL_K = 5  # each group's this many most similar groups (docs: "How it works: Similar groups")
POOL_REFS = 2000  # ... among at most this many other groups (a random subset beyond) ...
POOL_FLOPS = 2e12  # ... and fewer where comparing every group (or sample: pixel_strangeness) would take more arithmetic


def standardized_pixels(images: np.ndarray) -> np.ndarray:
    """float32 (N, H, W, C), each image centred and scaled to unit length: dot products are correlations."""
    x = images.astype(np.float32)
    x -= x.mean(axis=(1, 2, 3), keepdims=True)
    x /= np.maximum(np.sqrt((x * x).sum(axis=(1, 2, 3), keepdims=True)), 1e-6)
    return x


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """x (N, H, W, C) moved by (dy, dx) pixels, zeros (the mean, once standardized) filling in."""
    out = np.zeros_like(x)
    source, target = overlap_regions(x.shape[1], x.shape[2], dy, dx)
    out[:, target[0], target[1]] = x[:, source[0], source[1]]
    return out


def shifted_references(images: np.ndarray, max_shift: int) -> list[np.ndarray]:
    """The images standardised and moved by every shift of up to max_shift pixels: float32 (N, H*W*C) per shift,
    computed once for best_correlation to compare many queries with."""
    x = standardized_pixels(images)
    return [
        shifted(x, dy, dx).reshape(len(x), -1)
        for dy in range(-max_shift, max_shift + 1)
        for dx in range(-max_shift, max_shift + 1)
    ]


def best_correlation(images: np.ndarray, moved: list[np.ndarray]) -> np.ndarray:
    """float32 (len(images), len(references)): each image's correlation with each reference (shifted_references),
    best over the shifts."""
    q = standardized_pixels(images).reshape(len(images), -1)
    similarity = q @ moved[0].T
    for r in moved[1:]:
        np.maximum(similarity, q @ r.T, out=similarity)
    return similarity


def masked_similarities(
    images: np.ndarray, group: np.ndarray, query: np.ndarray, refs: np.ndarray, max_shift: int, chunk: int
):
    """Yields (rows, similarity float32 (len(rows), len(refs))): images[query], `chunk` at a time (rows: their
    slice of query), against images[refs] by best_correlation, -1 where a reference is in the query's own twin
    group. The references are standardised and shifted once."""
    moved = shifted_references(images[refs], max_shift)
    for start in range(0, len(query), chunk):
        part = query[start : start + chunk]
        similarity = best_correlation(images[part], moved)
        similarity[group[part][:, None] == group[refs][None, :]] = -1.0
        yield slice(start, start + len(part)), similarity


def top_mean(similarity: np.ndarray, k: int) -> np.ndarray:
    """float (rows,): the mean of each row's k largest values."""
    return -np.partition(-similarity, k - 1, axis=1)[:, :k].mean(1)


def reference_budget(images: np.ndarray, n_queries: int, max_shift: int, floor: int) -> int:
    """How many references best_correlation may compare n_queries images with inside POOL_FLOPS (at least floor)."""
    per_ref = 2 * (2 * max_shift + 1) ** 2 * int(np.prod(images.shape[1:])) * n_queries
    return max(floor, int(POOL_FLOPS / per_ref))


def nearest_neighbour_probs(
    images: np.ndarray,
    labels: np.ndarray,
    group: np.ndarray,
    query: np.ndarray,
    refs: np.ndarray,
    n_classes: int,
    *,
    max_shift: int = 1,
    sharpness: float = 50.0,
    chunk: int = 2048,
) -> np.ndarray:
    """Class probabilities (float64 (len(query), K)) of images[query] from the training images images[refs].

    A class's evidence is the mean correlation with its NEIGHBOURS most similar reference images, best over
    shifts of up to max_shift pixels; a query never compares with its own twin group. Probabilities are
    softmax(sharpness x evidence), to be calibrated downstream. No training: it answers in milliseconds on a
    graded case, where a member needs seconds (docs: "How it works: Nearest neighbours"). Queries go `chunk` at a
    time, so the similarity matrix stays small; the references are standardised and shifted once."""
    of_class = [labels[refs] == c for c in range(n_classes)]
    evidence = np.full((len(query), n_classes), -1.0)
    for rows, similarity in masked_similarities(images, group, query, refs, max_shift, chunk):
        for c, columns in enumerate(of_class):
            k = min(NEIGHBOURS, int(columns.sum()))
            if k:
                evidence[rows, c] = top_mean(similarity[:, columns], k)
    z = sharpness * (evidence - evidence.max(1, keepdims=True))
    return np.exp(z) / np.exp(z).sum(1, keepdims=True)


def neighbour_evidence(
    images: np.ndarray,
    labels: np.ndarray,
    group: np.ndarray,
    n_classes: int,
    seed: int,
    keep_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(nn_prob, nn_scored) for TrainResult: every open question, and up to NEIGHBOUR_CHECKS clean samples
    (so the aggregate stage can compare how often neighbours and members are right), against up to
    NEIGHBOUR_REFS clean samples, as members never train on an open question either (nor on keep_out or an
    unlabelled sample)."""
    n = len(labels)
    prob, scored = np.zeros((n, n_classes)), np.zeros(n, bool)
    open_question = open_questions(group, labels, keep_out)
    clean = np.flatnonzero(~open_question & (labels != UNLABELLED) & ~(False if keep_out is None else keep_out))
    if clean.size < 2:
        return prob, scored
    rng = np.random.default_rng(seed)
    refs = np.sort(rng.choice(clean, min(clean.size, NEIGHBOUR_REFS), replace=False))
    checks = np.sort(rng.choice(clean, min(clean.size, NEIGHBOUR_CHECKS), replace=False))
    query = np.union1d(np.flatnonzero(open_question), checks)
    prob[query] = nearest_neighbour_probs(images, labels, group, query, refs, n_classes)
    scored[query] = True
    return prob, scored


def similar_groups(
    images: np.ndarray, group: np.ndarray, seed: int, k: int = POOL_K, max_shift: int = 1, chunk: int = 1024
) -> np.ndarray:
    """int64 (N, k): per sample, the k groups whose first image correlates best with its group's first image (best
    over shifts of up to max_shift pixels; among at most POOL_REFS other groups), most similar first; -1 where
    fewer exist. Where copies with conflicting labels are the rule, the aggregate stage pools these groups' labels,
    and where samples are unlabelled it spreads the labels to them (docs: "How it works: Similar groups")."""
    n_groups = int(group.max()) + 1
    first = np.full(n_groups, len(group))
    np.minimum.at(first, group, np.arange(len(group)))
    rng = np.random.default_rng(seed)
    refs = np.sort(
        rng.choice(
            n_groups, min(n_groups, POOL_REFS, reference_budget(images, n_groups, max_shift, k + 1)), replace=False
        )
    )
    moved = shifted_references(images[first[refs]], max_shift)
    found = np.full((n_groups, k), -1, np.int64)
    take = min(k, len(refs) - 1)
    for start in range(0, n_groups, chunk):
        part = np.arange(start, min(start + chunk, n_groups))
        similarity = best_correlation(images[first[part]], moved)
        similarity[part[:, None] == refs[None, :]] = -np.inf
        if take > 0:
            best = np.argsort(-similarity, axis=1, kind="stable")[:, :take]
            found[part, :take] = refs[best]
    return found[group]


def pixel_strangeness(
    images: np.ndarray,
    labels: np.ndarray,
    group: np.ndarray,
    *,
    seed: int,
    keep_out: np.ndarray | None = None,
    max_shift: int = 1,
    chunk: int = 1024,
) -> np.ndarray:
    """float64 (N,): how far each image lies from the labelled pictures, in pixels: 1 - its mean correlation with
    its NEIGHBOURS most similar labelled images (best over shifts of up to max_shift pixels, among at most
    NEIGHBOUR_REFS of them and fewer past POOL_FLOPS, never its own twin group), over the median of that distance
    among the labelled images themselves. Where most samples are unlabelled, members trained on the few labels read
    a stranger confidently as a class; the pixels still tell it lies far from every labelled picture
    (docs: "How it works: Outliers")."""
    refs = np.flatnonzero((labels != UNLABELLED) & ~(False if keep_out is None else keep_out))
    if refs.size < 2:
        return np.ones(len(labels))
    affordable = reference_budget(images, len(labels), max_shift, NEIGHBOURS + 1)
    refs = np.sort(np.random.default_rng(seed).choice(refs, min(refs.size, NEIGHBOUR_REFS, affordable), replace=False))
    k = min(NEIGHBOURS, refs.size - 1)
    distance = np.empty(len(labels))
    for rows, similarity in masked_similarities(images, group, np.arange(len(labels)), refs, max_shift, chunk):
        distance[rows] = 1 - top_mean(similarity, k)
    return distance / max(float(np.median(distance[refs])), 1e-6)
