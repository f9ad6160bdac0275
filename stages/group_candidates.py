"""The group stage's candidate pairs: exact copies by their bytes, near copies proposed by a random-projection
forest over small shifted descriptors (README, "How it works": 2. group)."""
from __future__ import annotations

import numpy as np

from stages.group_pairs import box_sum, shifts


def unique_images(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, inverse): first[u] is the first sample holding unique image u (u numbered by first appearance),
    inverse[n] the unique image of sample n. Exact copies are told apart by their bytes alone."""
    rows = np.ascontiguousarray(images.reshape(len(images), -1))
    keys = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # renumber unique images by first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order].astype(np.int64), rank[inverse.ravel()].astype(np.int64)


def shifted_descriptors(images: np.ndarray, grid: int, max_shift: int) -> np.ndarray:
    """(S, N, G*G) float32 unit vectors: the grey image box-averaged to a G x G grid, mean removed, for each
    shift of shifts(max_shift); shift (0, 0) sits in the middle. Box-averaging happens once, the shifts only
    move the sampling points. The boxes keep max_shift pixels away from the border: what lies there can be
    pushed out of the frame by a shift (a glyph's frame line), and no shifted query could find it again."""
    x = images.astype(np.float32).mean(axis=-1)[..., None]
    n, h, w, _ = x.shape

    def axis(length):
        margin = max_shift if length > 2 * max_shift + 1 else 0
        inner = length - 2 * margin
        g = min(grid, inner)
        centres = margin + np.round((np.arange(g) + 0.5) * inner / g - 0.5).astype(np.int64)
        return max(1, round(inner / g)), centres

    (kh, rows), (kw, cols) = axis(h), axis(w)
    padded = np.pad(x, ((0, 0), (kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2), (0, 0)), mode="edge")
    boxed = box_sum(padded, kh, kw)[..., 0] / (kh * kw)
    out = np.empty((len(shifts(max_shift)), n, len(rows) * len(cols)), np.float32)
    for s, (dy, dx) in enumerate(shifts(max_shift)):
        d = boxed[:, np.clip(rows - dy, 0, h - 1)][:, :, np.clip(cols - dx, 0, w - 1)].reshape(n, -1)
        d = d - d.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(d, axis=1, keepdims=True)
        out[s] = np.where(norm > 1e-6, d / np.maximum(norm, 1e-6), 0)
    return out


def _split(node: np.ndarray, values: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Split every node at the median of `values` over its members: (child of each member, threshold per node)."""
    order = np.lexsort((values, node))
    sorted_node = node[order]
    starts = np.flatnonzero(np.r_[True, sorted_node[1:] != sorted_node[:-1]])
    sizes = np.diff(np.r_[starts, len(node)])
    segment = np.repeat(np.arange(len(starts)), sizes)
    half = sizes // 2
    right = (np.arange(len(node)) - starts[segment]) >= half[segment]
    below = values[order[starts + np.maximum(half - 1, 0)]]
    above = values[order[np.minimum(starts + half, len(node) - 1)]]
    threshold = np.full(n_nodes, np.inf, np.float32)
    threshold[sorted_node[starts]] = (below + above) / 2
    child = np.empty_like(node)
    child[order] = 2 * sorted_node + right
    return child, threshold


def forest_neighbours(descriptors: np.ndarray, k: int, n_trees: int, leaf_size: int, seed: int,
                      chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Approximate k nearest neighbours (i, j), i != j, under the best-shift descriptor similarity.

    Each tree splits the unshifted descriptors at the median of a random projection, level by level, until
    leaves hold about `leaf_size` images; every shifted descriptor is routed down the same splits and meets
    the images of its leaf. Cost per tree: N log N for the splits plus S * N * leaf_size dot products."""
    n_shifts, n, dim = descriptors.shape
    base = descriptors[n_shifts // 2]
    queries = descriptors.reshape(n_shifts * n, dim)
    owner = np.tile(np.arange(n), n_shifts)
    depth = int(np.ceil(np.log2(max(n, 1) / leaf_size))) if n > leaf_size else 0
    rng = np.random.default_rng(seed)
    keep = min(2, max(n - 1, 1))  # best matches kept per query and tree, before the per-image top k
    found_i, found_j, found_s = [], [], []
    for _ in range(n_trees):
        directions = rng.standard_normal((dim, max(depth, 1))).astype(np.float32)
        base_proj, query_proj = base @ directions, queries @ directions
        node = np.zeros(n, np.int64)
        query_node = np.zeros(n_shifts * n, np.int64)
        for level in range(depth):
            node, threshold = _split(node, base_proj[:, level], 2 ** level)
            query_node = 2 * query_node + (query_proj[:, level] > threshold[query_node])
        # leaf table: the members of every leaf, padded with -1
        order = np.argsort(node, kind="stable")
        leaves = np.arange(2 ** depth)
        starts = np.searchsorted(node[order], leaves)
        ends = np.searchsorted(node[order], leaves, side="right")
        width = int((ends - starts).max())
        table = np.full((len(leaves), width), -1, np.int64)
        for c in range(width):
            has = starts + c < ends
            table[has, c] = order[starts[has] + c]
        for s0 in range(0, n_shifts * n, chunk):
            q = np.arange(s0, min(n_shifts * n, s0 + chunk))
            cand = table[query_node[q]]
            valid = (cand >= 0) & (cand != owner[q][:, None])
            cand = np.where(valid, cand, 0)
            sim = np.where(valid, np.einsum("qd,qmd->qm", queries[q], base[cand]), -np.inf)
            top = np.argpartition(-sim, keep - 1, axis=1)[:, :keep] if width > keep else \
                np.broadcast_to(np.arange(width), (len(q), width))
            found_i.append(np.repeat(owner[q], top.shape[1]))
            found_j.append(np.take_along_axis(cand, top, 1).ravel())
            found_s.append(np.take_along_axis(sim, top, 1).ravel())
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i, j, s = np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_s)
    ok = np.isfinite(s)
    i, j, s = i[ok], j[ok], s[ok]
    order = np.lexsort((-s, i))  # best first within each image; duplicates of one pair then sit together
    i, j = i[order], j[order]
    pair = i * n + j
    _, first = np.unique(pair, return_index=True)
    first.sort()
    i, j = i[first], j[first]
    starts = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])
    rank = np.arange(len(i)) - np.repeat(starts, np.diff(np.r_[starts, len(i)]))
    return i[rank < k], j[rank < k]


def exhaustive_neighbours(descriptors: np.ndarray, queries: np.ndarray, k: int,
                          chunk: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """The k best matches of each query image among all images, by best-shift descriptor similarity, searched
    exhaustively (no forest, so no misses): (query index repeated, match index), best first per query."""
    n_shifts, n, _ = descriptors.shape
    base = descriptors[n_shifts // 2]
    k = min(k, n - 1)
    best_sim = np.full((len(queries), 0), -np.inf, np.float32)
    best_idx = np.zeros((len(queries), 0), np.int64)
    for s0 in range(0, n, chunk):
        columns = np.arange(s0, min(n, s0 + chunk))
        sim = descriptors[0, queries] @ base[columns].T
        for s in range(1, n_shifts):
            np.maximum(sim, descriptors[s, queries] @ base[columns].T, out=sim)
        sim[queries[:, None] == columns[None, :]] = -np.inf  # never itself
        sim, idx = np.c_[best_sim, sim], np.c_[best_idx, np.broadcast_to(columns, sim.shape)]
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if sim.shape[1] > k else np.argsort(-sim, axis=1)
        best_sim, best_idx = np.take_along_axis(sim, top, 1), np.take_along_axis(idx, top, 1)
    order = np.argsort(-best_sim, axis=1, kind="stable")
    return np.repeat(queries, k), np.take_along_axis(best_idx, order, 1).ravel()
