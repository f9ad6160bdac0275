"""The group stage's candidate pairs: exact copies by their bytes, near copies proposed by a random-projection
forest over small shifted descriptors (README, "How it works": 2. group)."""
from __future__ import annotations

import numpy as np

from stages.group_pairs import shifts

QUERY_BLOCK = 16  # a leaf's queries are compared with its images this many at a time, in one matrix product


def unique_images(images: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """(first, inverse): first[u] is the first sample holding unique image u (u numbered by first appearance),
    inverse[n] the unique image of sample n. Exact copies are told apart by their bytes alone: each image is
    hashed to 64 bits and images of one hash are checked byte for byte (sorting the images' bytes themselves
    takes several times the memory of the data)."""
    rows = np.ascontiguousarray(images.reshape(len(images), -1))
    _, first, inverse = np.unique(row_hashes(rows, chunk), return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    same = np.ones(len(rows), bool)
    for s0 in range(0, len(rows), chunk):
        part = slice(s0, s0 + chunk)
        same[part] = (rows[part] == rows[first[inverse[part]]]).all(axis=1)
    if not same.all():  # two different images with one hash: sort the bytes after all
        keys = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
    order = np.argsort(first, kind="stable")  # renumber unique images by first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order].astype(np.int64), rank[inverse].astype(np.int64)


def row_hashes(rows: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """A 64-bit hash of each row of uint8 rows (N, B): its 8-byte words times odd random multipliers (modulo
    2**64), mixed and combined by exclusive or."""
    width = -(-rows.shape[1] // 8) * 8
    odd = np.random.default_rng(0).integers(1, 2**62, width // 8, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    key = np.empty(len(rows), np.uint64)
    for s0 in range(0, len(rows), chunk):
        words = np.zeros((len(rows[s0:s0 + chunk]), width), np.uint8)
        words[:, :rows.shape[1]] = rows[s0:s0 + chunk]
        mixed = words.view(np.uint64) * odd  # wraps modulo 2**64, as a hash should
        key[s0:s0 + chunk] = np.bitwise_xor.reduce(mixed ^ (mixed >> np.uint64(29)), axis=1)
    return key


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
    # the box sums are needed at these rows and columns only (every shift's sampling points): a matrix product
    # with a box of ones along each axis (a box reaching past the border repeats the edge pixels)
    need_rows = np.unique(np.concatenate([np.clip(rows - dy, 0, h - 1) for dy, _ in offsets]))
    need_cols = np.unique(np.concatenate([np.clip(cols - dx, 0, w - 1) for _, dx in offsets]))
    box_rows, box_cols = _box_matrix(need_rows, kh, h), _box_matrix(need_cols, kw, w)
    # each shift's sampling points, as positions in the flattened (need_rows, need_cols) grid
    points = np.stack([(np.searchsorted(need_rows, np.clip(rows - dy, 0, h - 1))[:, None] * len(need_cols)
                        + np.searchsorted(need_cols, np.clip(cols - dx, 0, w - 1))[None, :]).ravel()
                       for dy, dx in offsets])
    out = np.empty((len(offsets), n, len(rows) * len(cols)), np.float32)
    for s0 in range(0, n, chunk):
        x = images[s0:s0 + chunk].astype(np.float32)
        x = x[..., 0] if x.shape[-1] == 1 else x.mean(axis=-1)
        m = len(x)
        across = (x.reshape(m * h, w) @ box_cols.T).reshape(m, h, len(need_cols))
        boxed = (box_rows @ across).reshape(m, -1) / (kh * kw)
        for s, at in enumerate(points):
            d = boxed[:, at]
            d = d - d.mean(axis=1, keepdims=True)
            norm = np.linalg.norm(d, axis=1, keepdims=True)
            out[s, s0:s0 + m] = np.where(norm > 1e-6, d / np.maximum(norm, 1e-6), 0)
    return out


def _box_matrix(centres: np.ndarray, k: int, length: int) -> np.ndarray:
    """(len(centres), length) float32: row r sums the k pixels around centres[r], clipped to the edge."""
    box = np.zeros((len(centres), length), np.float32)
    for t in range(k):
        np.add.at(box, (np.arange(len(centres)), np.clip(centres + t - k // 2, 0, length - 1)), 1)
    return box


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
    per_tree = []  # each tree's k best partners per image: the k best over all trees are among them
    for _ in range(n_trees):
        directions = rng.standard_normal((dim, max(depth, 1))).astype(np.float32)
        base_proj, query_proj = base @ directions, queries @ directions
        node = np.zeros(n, np.int64)
        query_node = np.zeros(n_shifts * n, np.int32)
        for level in range(depth):
            node, threshold = _split(node, base_proj[:, level], 2 ** level)
            query_node = 2 * query_node + (query_proj[:, level] > threshold[query_node])
        del base_proj, query_proj
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
        by_leaf = np.argsort(query_node.astype(np.uint16) if len(leaves) <= 2**16 else query_node, kind="stable")
        per_leaf = np.bincount(query_node, minlength=len(leaves))
        first_block = np.r_[0, np.cumsum(-(-per_leaf // QUERY_BLOCK))]
        rank = np.arange(len(by_leaf)) - np.r_[0, np.cumsum(per_leaf)][query_node[by_leaf]]
        blocks = np.full((first_block[-1], QUERY_BLOCK), -1, np.int64)
        blocks[first_block[query_node[by_leaf]] + rank // QUERY_BLOCK, rank % QUERY_BLOCK] = by_leaf
        block_leaf = np.repeat(leaves, np.diff(first_block))
        # each image's queries' best matches in this tree: (image, shift * keep + rank), -1 / -inf where none
        partner = np.full((n, n_shifts * keep), -1, np.int32)
        score = np.full((n, n_shifts * keep), -np.inf, np.float32)
        for b0 in range(0, len(blocks), chunk // QUERY_BLOCK):
            q, leaf = blocks[b0:b0 + chunk // QUERY_BLOCK], block_leaf[b0:b0 + chunk // QUERY_BLOCK]
            sim = queries[np.maximum(q, 0)] @ leaf_base[leaf]  # (blocks, QUERY_BLOCK, width)
            cand = np.broadcast_to(table[leaf][:, None, :], sim.shape)
            owner = q % n
            valid = (cand >= 0) & (cand != owner[..., None]) & (q >= 0)[..., None]
            sim = np.where(valid, sim, -np.inf).reshape(-1, width)
            cand, q = cand.reshape(-1, width), q.ravel()
            top = np.argpartition(-sim, keep - 1, axis=1)[:, :keep] if width > keep else \
                np.broadcast_to(np.arange(width), (len(sim), width))
            real = q >= 0
            rows, cols = q[real] % n, (q[real] // n)[:, None] * keep + np.arange(top.shape[1])
            partner[rows[:, None], cols] = np.take_along_axis(cand[real], top[real], 1)
            score[rows[:, None], cols] = np.take_along_axis(sim[real], top[real], 1)
        per_tree.append(_best_distinct(partner, score, k))
    if not per_tree:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    partner, _ = _best_distinct(*(np.concatenate(part, axis=1) for part in zip(*per_tree)), k)
    found = partner >= 0
    return np.nonzero(found)[0].astype(np.int64), partner[found].astype(np.int64)


def _best_distinct(partner: np.ndarray, score: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k best distinct partners (partner int (N, M), -1 for none; score float (N, M)), best first, ties by
    partner index: (partner, score), each (N, <= k), -1 / -inf where a row has fewer. A partner met more than once
    counts at its best score, so the k best of several trees' k best are the k best of them all."""
    score = np.where(partner >= 0, score, -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")  # best first ...
    partner, score = np.take_along_axis(partner, order, 1), np.take_along_axis(score, order, 1)
    order = np.argsort(partner, axis=1, kind="stable")  # ... within each partner's run
    partner, score = np.take_along_axis(partner, order, 1), np.take_along_axis(score, order, 1)
    repeated = np.zeros(partner.shape, bool)
    repeated[:, 1:] = partner[:, 1:] == partner[:, :-1]
    score = np.where(repeated, -np.inf, score)
    order = np.argsort(-score, axis=1, kind="stable")[:, :k]  # best first; ties stay in partner order
    partner, score = np.take_along_axis(partner, order, 1), np.take_along_axis(score, order, 1)
    return np.where(np.isfinite(score), partner, -1), score


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
