"""Stage 2, group: every image in a group with its exact and near-identical copies (docs: "How it works: group").

group_images runs the steps in order: exact copies (group_candidates.unique_images), blanks (group_blanks),
candidate pairs (group_candidates), pair checks (group_pairs), the threshold (_shape_groups) and clusters
(group_clusters)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from stages.artifact import Artifact, Field
from stages.cores import map_chunks
from stages.group_align import Bounds, aligned_check, grey
from stages.group_blanks import blank_scores, odd_kinds
from stages.group_candidates import (
    centroids,
    exhaustive_neighbours,
    forest_neighbours,
    geometric_pairs,
    geometric_queries,
    shifted_descriptors,
    unique_images,
)
from stages.group_clusters import bounded_clusters, representatives
from stages.group_pairs import noise_z, shift_distances
from stages.labels import conflicting_groups
from stages.params import MAX_SEED, Params, param

SAMPLE_MATCHES = 32  # best descriptor matches of each sampled image whose exact distances are measured
GEOMETRIC_RANK = 4  # geometric candidates aligned per image: its best ones by descriptor (aligning costs most)
IMAGE_CHUNK = 8192  # images measured at a time: each one's figures are its own, and float copies of all are large


@dataclass(frozen=True)
class GroupParams(Params):
    """How near a copy must be to its original to share its twin group (docs: "How it works: group")."""

    threshold_fraction: float = param(
        0.35,
        "The shape threshold is this times the threshold_quantile quantile of the nearest distances between "
        "distinct images: copies lie a few tenths of that distance apart.",
        within="(0, 2]",
    )
    threshold_quantile: float = param(
        0.75, "See threshold_fraction; a high quantile stays put when many images have twins.", within="[0, 1]"
    )
    max_noise_z: float = param(
        5.0,
        "A pair matches only when its residual's largest local mean is at most this many standard errors (white "
        "noise reaches about 3.5, a missing bar tens); also decides which images are blank.",
        within="(0, 1000]",
    )
    max_noise_sigma: float = param(
        24.0,
        "...and when the residual's noise level is at most this many grey levels: room for noisy copies, while two "
        "renderings of one glyph differ by more along every stroke.",
        within="(0, 255]",
    )
    blank_tolerance: float = param(
        0.25,
        "Blank images (one grey level plus noise) are copies when their channel means differ by at most this share "
        "of the range (a +-12% brightness and contrast change moves a level by up to 24%).",
        within="[0, 1]",
    )
    neighbours: int = param(
        4, "Candidate partners checked per image (a copy is almost always its original's first).", within="1..64"
    )
    n_trees: int = param(
        3, "Trees of the random-projection forest that proposes candidates (more: fewer misses).", within="1..64"
    )
    leaf_size: int = param(16, "Images per leaf of those trees.", within="2..1024")
    grid: int = param(8, "Descriptor resolution: grid x grid box averages of the grey image.", within="2..32")
    max_shift: int = param(
        1,
        "Largest shift in pixels (each axis) between a copy and its original: searched pixel by pixel, or with "
        "geometric on, one pixel searched and larger shifts aligned (3 there).",
        within="0..3",
    )
    geometric: bool = param(
        False,
        "Align candidate pairs, so that copies shifted up to max_shift, rotated up to max_rotation, scaled up to "
        'max_scale (and mirrored) join their original (docs: "Geometric twins"). Off: on letters it joins glyphs '
        "of different fonts, and it takes several times as long.",
    )
    max_rotation: float = param(
        10.0, "With geometric on: largest rotation in degrees between a copy and its original.", within="[0, 20]"
    )
    max_scale: float = param(
        0.25,
        "With geometric on: largest scaling between a copy and its original, a share either way (0.25: 1/1.25 to "
        "1.25; a crop of 3 pixels a side of 28, resized back, scales by 1.27).",
        within="[0, 0.5]",
    )
    mirror: bool = param(
        False,
        "With geometric on, a copy may also be mirrored left to right: off for digits and letters (a mirror image is "
        "another glyph), on for photos, where augmentations saved to disk are often mirrored.",
    )
    aligned_fraction: float = param(
        0.5,
        "A pair that needs the geometric check matches only when its distance after alignment is at most this share "
        "of the threshold (the freedom to warp brings distinct images closer).",
        within="(0, 1]",
    )
    threshold_sample: int = param(
        1000,
        "The threshold is read from this many images (all, in smaller sets), each compared with every image.",
        within="10..100000",
    )
    seed: int = param(
        0, "Seeds the forest and the threshold's sample, so a run is reproducible.", within=f"0..{MAX_SEED}"
    )

    def check(self) -> None:
        if self.mirror and not self.geometric:  # else it would be silently ignored
            raise ValueError("mirror needs geometric: true (only the geometric pair check finds mirrored copies)")


@dataclass
class GroupResult(Artifact):
    """The group stage's result and artifact."""

    group: np.ndarray  # int64 (N,): ids 0..G-1 in order of first appearance; singletons are groups of one
    distance: np.ndarray  # float32 (N,): shape distance to the group's representative (0 for it, its exact
    #                       copies and blanks), best over two copies' worth of shifts, or after alignment
    threshold: float  # the shape threshold derived from this data
    representative: np.ndarray  # int64 (G,): sample index of each group's representative
    exact: np.ndarray  # int64 (N,): exact-copy class (identical bytes), numbered by first appearance
    blank: np.ndarray  # bool (N,): image is one grey level plus noise
    odd: np.ndarray  # str (N,): "blank", "noise", "saturated" (broken: kept out of training), or ""
    dataset: str = ""  # Dataset.fingerprint of the data it was made from (pipeline/steps.py; "" in memory)

    STAGE = "group"
    FIELDS = {
        "group": Field("iu", 1, True),
        "distance": Field("f", 1, True),
        "threshold": Field("f", 0),
        "representative": Field("iu", 1),
        "exact": Field("iu", 1, True),
        "blank": Field("b", 1, True),
        "odd": Field("U", 1, True),
        "dataset": Field("U", 0),
    }


def _threshold(nearest: np.ndarray, params: GroupParams) -> float:
    nearest = nearest[np.isfinite(nearest)]
    if nearest.size == 0:
        return 0.0
    return float(params.threshold_fraction * np.quantile(nearest, params.threshold_quantile))


def _ranked(query: np.ndarray, d: np.ndarray, rank: int = 0) -> np.ndarray:
    """Each query's rank-th smallest distance (0: nearest) over its rows of (query, d) (inf with fewer rows)."""
    queries, start, count = np.unique(query, return_index=True, return_counts=True)
    order = np.lexsort((d, query))
    out = np.full(len(queries), np.inf)
    has = count > rank
    out[has] = d[order][start[has] + rank]
    return out


def _geometric(params: GroupParams) -> bool:
    """Whether the geometric pair check runs: asked for, and with some edit past a one-pixel shift to align."""
    return params.geometric and (
        params.max_shift > 1 or params.max_rotation > 0 or params.max_scale > 0 or params.mirror
    )


def _shape_groups(images: np.ndarray, params: GroupParams) -> tuple[np.ndarray, np.ndarray, float]:
    """Clusters of distinct, non-blank images: (representative of each image's cluster, distance to it,
    threshold)."""
    n = len(images)
    if n < 2:
        return np.arange(n), np.zeros(n, np.float32), 0.0
    shift = min(params.max_shift, 1) if _geometric(params) else params.max_shift  # searched pixel by pixel
    descriptors = shifted_descriptors(images, params.grid, shift)
    forest = dict(n_trees=params.n_trees, leaf_size=params.leaf_size, seed=params.seed)
    i, j = forest_neighbours(descriptors, params.neighbours, **forest)
    sample = np.random.default_rng(params.seed).permutation(n)[: params.threshold_sample]
    q, m = exhaustive_neighbours(descriptors, np.sort(sample), SAMPLE_MATCHES)
    del descriptors
    geometric = _Geometric(images, params, forest) if _geometric(params) else None
    pairs = np.unique(
        np.r_[np.minimum(i, j) * n + np.maximum(i, j), np.zeros(0, np.int64) if geometric is None else geometric.pairs]
    )
    a, b = pairs // n, pairs % n
    d, offset = shift_distances(images, np.r_[a, q], np.r_[b, m], shift)  # one pass for both
    d, offset, qd = d[: len(a)], offset[: len(a)], d[len(a) :]  # qd: exact distances of the sample's best matches
    checked, noise_like = np.zeros(len(a), bool), np.zeros(len(a), bool)

    def accepted(threshold: float, aligned: bool) -> tuple[np.ndarray, np.ndarray]:
        """(accepted, distance) of each pair: by its shift distance, or (aligned) by its aligned one."""
        close = d <= threshold
        todo = close & ~checked  # the noise check is costly: run it only on pairs that pass on shape
        z, sigma = noise_z(images, a[todo], b[todo], offset[todo], shift)
        # one of the two directions (original -> copy) must explain the other image as a copy
        noise_like[todo] = ((z <= params.max_noise_z) & (sigma <= params.max_noise_sigma)).any(axis=1)
        checked[todo] = True
        ok = close & noise_like
        if not aligned or geometric is None:
            return ok, d
        warped = geometric.accepted(pairs, ~ok, threshold)
        return ok | np.isfinite(warped), np.where(ok, d, warped)

    def clusters(threshold: float, aligned: bool) -> tuple[np.ndarray, np.ndarray]:
        ok, dist = accepted(threshold, aligned)
        distance = _member_distances(images, params, shift, geometric)
        cluster = bounded_clusters(images, a[ok], b[ok], dist[ok], radius=2 * threshold, distance=distance)
        return cluster, representatives(cluster, a[ok], b[ok], dist[ok])

    # The threshold comes from the sample's exact nearest distances, in two passes
    # (docs: "How it works: The threshold"); the geometric check joins in the last one (a warped copy is far from
    # its original by shift distance anyway).
    cluster, _ = clusters(_threshold(_ranked(q, qd, rank=1), params), aligned=False)
    between = cluster[q] != cluster[m]
    threshold = _threshold(_ranked(q[between], qd[between]), params)
    cluster, centre = clusters(threshold, aligned=True)
    dist = np.zeros(n, np.float32)
    member = np.flatnonzero(centre != np.arange(n))
    dist[member] = _member_distances(images, params, shift, geometric)(member, centre[member], threshold)
    return centre, dist, threshold


class _Geometric:
    """The geometric pair check's candidates and results, each pair aligned at most once (docs: "Geometric twins")."""

    def __init__(self, images: np.ndarray, params: GroupParams, forest: dict):
        x = grey(images)
        self.images, self.params, self.centre = images, params, centroids(x)
        frame, centred = geometric_queries(params.max_shift, params.max_rotation, params.max_scale, params.mirror)
        margin = params.max_shift if min(x.shape[1:]) > 2 * params.max_shift + 1 else 0
        i, j, start, flip, similarity = geometric_pairs(
            x, [(None, frame), (self.centre, centred)], params.grid, margin, params.neighbours, forest
        )
        # a copy is almost always among its original's GEOMETRIC_RANK best geometric matches, or the other way round
        keep = np.minimum(_rank(i, similarity), _rank(j, similarity)) < GEOMETRIC_RANK
        i, j, self.start, self.flip = i[keep], j[keep], start[keep], flip[keep]
        self.pairs = i * len(images) + j  # sorted, as np.unique left them
        # a shift at its bound would stop the fit there and let the scale take the rest: one pixel of room
        self.bounds = Bounds(params.max_shift + 1, params.max_rotation, 1 + params.max_scale)
        self.distance = np.full((len(i), 2), np.inf, np.float32)
        self.noise_like = np.zeros((len(i), 2), bool)
        self.done = np.zeros(len(i), bool)

    def accepted(self, pairs: np.ndarray, wanted: np.ndarray, threshold: float) -> np.ndarray:
        """Aligned distance of each of `pairs` (i * N + j, sorted) where `wanted` and it is a geometric candidate
        whose residual looks like a copy's noise within aligned_fraction of the threshold; inf elsewhere."""
        at = np.searchsorted(pairs, self.pairs)  # every geometric pair is among `pairs`
        todo = wanted[at] & ~self.done
        if todo.any():
            n = len(self.images)
            i, j = self.pairs[todo] // n, self.pairs[todo] % n
            limit = self.params.aligned_fraction * threshold
            dist, z, sigma, _ = aligned_check(
                self.images, i, j, start=self.start[todo], flip=self.flip[todo], bounds=self.bounds, limit=limit
            )
            self.distance[todo] = dist
            self.noise_like[todo] = (z <= self.params.max_noise_z) & (sigma <= self.params.max_noise_sigma)
            self.done[todo] = True
        good = self.noise_like & (self.distance <= self.params.aligned_fraction * threshold)
        out = np.full(len(pairs), np.inf, np.float32)
        out[at] = np.where(wanted[at] & good.any(axis=1), np.where(good, self.distance, np.inf).min(axis=1), np.inf)
        return out


def _rank(owner: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Each entry's rank (0: best) by score among the entries of its owner."""
    order = np.lexsort((-score, owner))
    first = np.r_[True, owner[order][1:] != owner[order][:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - start
    return rank


def _member_distances(images: np.ndarray, params: GroupParams, shift: int, geometric: _Geometric | None):
    """distance(i, j, limit): shape distance of each pair (i, j) over two copies' worth of shifts (2 * shift), or,
    where the geometric check runs and that is above limit, after aligning them with twice its bounds (two copies
    of one original, edited either way, are that far apart)."""

    def distance(i: np.ndarray, j: np.ndarray, limit: float) -> np.ndarray:
        d, _ = shift_distances(images, i, j, 2 * shift)
        if geometric is None:
            return d
        far = np.flatnonzero(d > limit)
        if far.size:
            bounds = Bounds(2 * params.max_shift, 2 * params.max_rotation, (1 + params.max_scale) ** 2)
            for flip in (False, True) if params.mirror else (False,):
                centre = geometric.centre.copy()
                if flip:  # i mirrored: so is its centroid
                    centre[:, 1] = images.shape[2] - 1 - centre[:, 1]
                start = np.zeros((len(far), 5), np.float32)
                start[:, 3:] = centre[i[far]] - geometric.centre[j[far]]
                aligned, _, _, _ = aligned_check(
                    images, i[far], j[far], start=start, flip=np.full(len(far), flip), bounds=bounds, limit=limit
                )
                d[far] = np.minimum(d[far], aligned.min(axis=1))
        return d

    return distance


def _blank_groups(images: np.ndarray, scores: np.ndarray, tolerance: float) -> np.ndarray:
    """Centre of each blank image. Flattest first, each unassigned blank takes every unassigned blank whose
    channel means lie within tolerance * 255 of its own: a level is all a blank has to compare."""
    means = images.astype(np.float64).mean(axis=(1, 2))
    centre = np.full(len(images), -1, np.int64)
    for anchor in np.lexsort((np.arange(len(images)), scores)):
        if centre[anchor] >= 0:
            continue
        near = (centre < 0) & (np.abs(means - means[anchor]).max(axis=1) <= tolerance * 255)
        centre[near] = anchor
    return centre


def _by_first_appearance(labels: np.ndarray) -> np.ndarray:
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.ravel()]


def group_images(images: np.ndarray, params: GroupParams) -> GroupResult:
    """Group uint8 (N, H, W, C) images with their exact and near-identical copies."""
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
    first, exact = unique_images(images)
    scores, noise = _per_image(lambda x: blank_scores(x, params.max_noise_z), images, first)
    blank = (scores <= params.max_noise_z) & (noise <= params.max_noise_sigma)
    centre = np.arange(len(first))
    dist = np.zeros(len(first), np.float32)
    shaped = np.flatnonzero(~blank)
    # the one copy of the images made here, and only when some repeat or are blank
    shape_centre, shape_dist, threshold = _shape_groups(
        images if len(shaped) == len(images) else images[first[shaped]], params
    )
    centre[shaped] = shaped[shape_centre]
    dist[shaped] = shape_dist
    blanks = np.flatnonzero(blank)
    if blanks.size:
        centre[blanks] = blanks[_blank_groups(images[first[blanks]], scores[blanks], params.blank_tolerance)]

    group = _by_first_appearance(centre[exact])
    representative = np.empty(group.max() + 1, np.int64)
    representative[group] = first[centre[exact]]
    (odd,) = _per_image(odd_kinds, images, first, blank)
    return GroupResult(
        group=group,
        distance=dist[exact],
        threshold=threshold,
        representative=representative,
        exact=exact,
        blank=blank[exact],
        odd=odd[exact],
    )


def _per_image(measure, images: np.ndarray, rows: np.ndarray, *more: np.ndarray) -> tuple[np.ndarray, ...]:
    """measure(images[rows], *more), one array or a tuple of them, each one value per image, computed IMAGE_CHUNK
    images at a time on every core: float copies of all the images, or even a copy of the rows, are large."""

    def part_of(part: slice) -> tuple[np.ndarray, ...]:
        out = measure(images[rows[part]], *(m[part] for m in more))
        return out if isinstance(out, tuple) else (out,)

    parts = map_chunks(part_of, len(rows), IMAGE_CHUNK) or [part_of(slice(0, 0))]
    return tuple(np.concatenate(column) for column in zip(*parts))


def summarize(group: np.ndarray, labels: np.ndarray, odd: np.ndarray | None = None) -> dict:
    """Counts for the JSON summary: groups of each size, and groups whose members (odd images aside, as everywhere)
    carry different labels (labels.conflicting_groups)."""
    sizes = np.bincount(group)
    keep_out = None if odd is None else np.asarray(odd) != ""
    conflicting = np.flatnonzero(conflicting_groups(group, np.asarray(labels), keep_out))
    return {
        "images": int(len(group)),
        "groups": int(len(sizes)),
        "groups_by_size": {str(size): count for size, count in sorted(Counter(sizes.tolist()).items())},
        "conflicting_groups": int(len(conflicting)),
        "images_in_conflicting_groups": int(sizes[conflicting].sum()),
    }
