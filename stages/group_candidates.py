"""The group stage's candidate pairs: exact copies by their bytes, near copies proposed by a random-projection
forest over small shifted descriptors (README, "How it works": 2. group)."""
from __future__ import annotations

import numpy as np

from stages.group_pairs import shifts

QUERY_BLOCK = 16  # a leaf's queries are compared with its images this many at a time, in one matrix product


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


def shifted_descriptors(images: np.ndarray, grid: int, max_shift: int, chunk: int = 8192) -> np.ndarray:
    """(S, N, G*G) float32 unit vectors: the grey image box-averaged to a G x G grid, mean removed, for each
    shift of shifts(max_shift); shift (0, 0) sits in the middle. Box-averaging happens once, the shifts only
    move the sampling points. The boxes keep max_shift pixels away from the border: what lies there can be
    pushed out of the frame by a shift (a glyph's frame line), and no shifted query could find it again.
    Made `chunk` images at a time (float copies of them all would be large)."""
    n, h, w, _ = images.shape

    def axis(length):
        margin = max_shift if length > 2 * max_shift + 1 else 0
        inner = length - 2 * margin
        g = min(grid, inner)
        centres = margin + np.round((np.arange(g) + 0.5) * inner / g - 0.5).astype(np.int64)
        return max(1, round(inner / g)), centres

    (kh, rows), (kw, cols) = axis(h), axis(w)
    offsets = shifts(max_shift)
    # the box means are needed at these rows and columns only (every shift's sampling points)
    need_rows = np.unique(np.concatenate([np.clip(rows - dy, 0, h - 1) for dy, _ in offsets]))
    need_cols = np.unique(np.concatenate([np.clip(cols - dx, 0, w - 1) for _, dx in offsets]))
    out = np.empty((len(offsets), n, len(rows) * len(cols)), np.float32)
    for s0 in range(0, n, chunk):
        x = images[s0:s0 + chunk].astype(np.float32)
        x = x[..., 0] if x.shape[-1] == 1 else x.mean(axis=-1)
        m = len(x)
        # box sums one axis at a time; a box reaching past the border repeats the edge pixels
        rows_summed = sum(x[:, np.clip(need_rows + a - kh // 2, 0, h - 1)] for a in range(kh))
        boxed = sum(rows_summed[:, :, np.clip(need_cols + b - kw // 2, 0, w - 1)] for b in range(kw)) / (kh * kw)
        for s, (dy, dx) in enumerate(offsets):
            r = np.searchsorted(need_rows, np.clip(rows - dy, 0, h - 1))
            c = np.searchsorted(need_cols, np.clip(cols - dx, 0, w - 1))
            d = boxed[:, r][:, :, c].reshape(m, -1)
            d = d - d.mean(axis=1, keepdims=True)
            norm = np.linalg.norm(d, axis=1, keepdims=True)
            out[s, s0:s0 + m] = np.where(norm > 1e-6, d / np.maximum(norm, 1e-6), 0)
    return out


def _split(node: np.ndarray, values: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Split every node at the median of `values` over its members: (child of each member, threshold per node)."""
    v = values.astype(np.float64)
    span = float(v.max() - v.min()) if len(v) else 0.0
    # one sort by node, then value: each value squeezed into [0, 1) beside its node number
    order = np.argsort(node + (v - v.min()) / (span * 1.000001 if span > 0 else 1.0), kind="stable")
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
        # leaf table: the members of every leaf, padded with -1, and their descriptors (zeros for the padding)
        order = np.argsort(node, kind="stable")
        leaves = np.arange(2 ** depth)
        starts = np.searchsorted(node[order], leaves)
        ends = np.searchsorted(node[order], leaves, side="right")
        width = int((ends - starts).max())
        table = np.full((len(leaves), width), -1, np.int64)
        for c in range(width):
            has = starts + c < ends
            table[has, c] = order[starts[has] + c]
        leaf_base = np.where((table >= 0)[..., None], base[table], 0).transpose(0, 2, 1)  # (leaves, dim, width)
        # the queries of each leaf in blocks of QUERY_BLOCK (padded with -1): one small matrix product per block
        by_leaf = np.argsort(query_node, kind="stable")
        per_leaf = np.bincount(query_node, minlength=len(leaves))
        first_block = np.r_[0, np.cumsum(-(-per_leaf // QUERY_BLOCK))]
        rank = np.arange(len(by_leaf)) - np.r_[0, np.cumsum(per_leaf)][query_node[by_leaf]]
        blocks = np.full((first_block[-1], QUERY_BLOCK), -1, np.int64)
        blocks[first_block[query_node[by_leaf]] + rank // QUERY_BLOCK, rank % QUERY_BLOCK] = by_leaf
        block_leaf = np.repeat(leaves, np.diff(first_block))
        for b0 in range(0, len(blocks), chunk // QUERY_BLOCK):
            q, leaf = blocks[b0:b0 + chunk // QUERY_BLOCK], block_leaf[b0:b0 + chunk // QUERY_BLOCK]
            sim = queries[np.maximum(q, 0)] @ leaf_base[leaf]  # (blocks, QUERY_BLOCK, width)
            cand = np.broadcast_to(table[leaf][:, None, :], sim.shape)
            owner = q % n
            valid = (cand >= 0) & (cand != owner[..., None]) & (q >= 0)[..., None]
            sim = np.where(valid, sim, -np.inf).reshape(-1, width)
            cand, owner = cand.reshape(-1, width), owner.ravel()
            top = np.argpartition(-sim, keep - 1, axis=1)[:, :keep] if width > keep else \
                np.broadcast_to(np.arange(width), (len(sim), width))
            i, j, best = np.repeat(owner, top.shape[1]), np.take_along_axis(cand, top, 1).ravel(), \
                np.take_along_axis(sim, top, 1).ravel()
            ok = np.isfinite(best)  # padding rows and leaves too small for `keep` matches
            found_i.append(i[ok])
            found_j.append(j[ok])
            found_s.append(best[ok])
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # each pair once, at its best similarity; then each image's partners best first (ties by index), top k
    pair, s = np.concatenate(found_i) * n + np.concatenate(found_j), np.concatenate(found_s)
    order = np.argsort(pair)
    pair, s = pair[order], s[order]
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    pair, s = pair[starts], np.maximum.reduceat(s, starts)
    i, j = pair // n, pair % n
    order = np.argsort(i * 4.0 + (1.0 - s.astype(np.float64)), kind="stable")  # 1 - s lies in [0, 2]
    i, j = i[order], j[order]
    starts = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])
    rank = np.arange(len(i)) - np.repeat(starts, np.diff(np.r_[starts, len(i)]))
    return i[rank < k], j[rank < k]


def exhaustive_neighbours(descriptors: np.ndarray, queries: np.ndarray, k: int,
                          chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """The k best matches of each query image among all images, by best-shift descriptor similarity, searched
    exhaustively (no forest, so no misses): (query index repeated, match index), best first per query. Each
    chunk of images keeps its own k best per query; the best of those are the answer."""
    n_shifts, n, _ = descriptors.shape
    base = descriptors[n_shifts // 2]
    k = min(k, n - 1)
    shifted = descriptors[:, queries]  # (S, Q, D)
    found_sim, found_idx = [], []
    for s0 in range(0, n, chunk):
        block = base[s0:s0 + chunk].T.copy()
        sim = shifted[0] @ block
        for s in range(1, n_shifts):
            np.maximum(sim, shifted[s] @ block, out=sim)
        inside = np.flatnonzero((queries >= s0) & (queries < s0 + block.shape[1]))
        sim[inside, queries[inside] - s0] = -np.inf  # never itself
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if sim.shape[1] > k else \
            np.broadcast_to(np.arange(sim.shape[1]), sim.shape)
        found_sim.append(np.take_along_axis(sim, top, 1))
        found_idx.append(top + s0)
    sim, idx = np.concatenate(found_sim, axis=1), np.concatenate(found_idx, axis=1)
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if sim.shape[1] > k else np.argsort(-sim, axis=1)
    best_sim, best_idx = np.take_along_axis(sim, top, 1), np.take_along_axis(idx, top, 1)
    order = np.argsort(-best_sim, axis=1, kind="stable")
    return np.repeat(queries, k), np.take_along_axis(best_idx, order, 1).ravel()
