"""The group stage's candidate pairs: exact copies by their bytes, near copies proposed by a random-projection
forest over small shifted descriptors (docs: "How it works: Candidates")."""

from __future__ import annotations

import numpy as np

from stages.cores import map_chunks
from stages.shifts import shifts

QUERY_BLOCK = 16  # a leaf's queries are compared with its images this many at a time, in one matrix product


def unique_images(images: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """(first, inverse): first[u] is the first sample holding unique image u (u numbered by first appearance),
    inverse[n] the unique image of sample n. Exact copies are told apart by their bytes alone: each image is
    hashed to 64 bits and images of one hash are checked byte for byte (sorting the images' bytes themselves
    takes several times the memory of the data)."""
    rows = np.ascontiguousarray(images.reshape(len(images), -1))
    _, first, inverse = np.unique(row_hashes(rows, chunk), return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    same = map_chunks(lambda part: bool((rows[part] == rows[first[inverse[part]]]).all()), len(rows), chunk)
    if not all(same):  # two different images with one hash: sort the bytes after all
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

    def hashed(part: slice) -> None:
        words = np.zeros((part.stop - part.start, width), np.uint8)
        words[:, : rows.shape[1]] = rows[part]
        mixed = words.view(np.uint64) * odd  # wraps modulo 2**64, as a hash should
        key[part] = np.bitwise_xor.reduce(mixed ^ (mixed >> np.uint64(29)), axis=1)

    map_chunks(hashed, len(rows), chunk)
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
    # the box sums are needed at every shift's sampling points only: a matrix product with a box of ones along
    # each axis (a box reaching past the border repeats the edge pixels), the sampling rows and columns of each
    # vertical and horizontal shift side by side, so that each shift's grid is one block of the result
    dys, dxs = sorted({dy for dy, _ in offsets}), sorted({dx for _, dx in offsets})
    box_rows = _box_matrix(np.concatenate([np.clip(rows - dy, 0, h - 1) for dy in dys]), kh, h)
    box_cols = _box_matrix(np.concatenate([np.clip(cols - dx, 0, w - 1) for dx in dxs]), kw, w)
    gh, gw = len(rows), len(cols)
    out = np.empty((len(offsets), n, gh * gw), np.float32)

    def describe(part: slice) -> None:
        x = images[part].astype(np.float32)
        x = x[..., 0] if x.shape[-1] == 1 else x.mean(axis=-1)
        m = len(x)
        across = (x.reshape(m * h, w) @ box_cols.T).reshape(m, h, len(box_cols))
        boxed = (box_rows @ across) / (kh * kw)  # (m, shifts down x rows, shifts across x columns)
        for s, (dy, dx) in enumerate(offsets):
            y0, x0 = dys.index(dy) * gh, dxs.index(dx) * gw
            d = np.ascontiguousarray(boxed[:, y0 : y0 + gh, x0 : x0 + gw]).reshape(m, gh * gw)
            d -= d.mean(axis=1, keepdims=True)
            norm = np.linalg.norm(d, axis=1, keepdims=True)
            np.divide(d, np.maximum(norm, 1e-6), out=out[s, part])
            out[s, part][norm[:, 0] <= 1e-6] = 0

    map_chunks(describe, n, chunk)
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
    key = node + (v - v.min()) / (span * 1.000001 if span > 0 else 1.0)
    order = np.argsort(key)  # a quick sort, much faster than a stable one, and the same order unless keys tie
    sorted_key = key[order]
    if np.any(sorted_key[1:] == sorted_key[:-1]):
        order = np.argsort(key, kind="stable")
    sorted_node = node[order]
    sizes = np.bincount(node, minlength=n_nodes)
    starts = np.cumsum(sizes) - sizes
    half = sizes // 2
    right = (np.arange(len(node)) - starts[sorted_node]) >= half[sorted_node]
    full = np.flatnonzero(sizes)  # nodes with members
    below = values[order[starts[full] + np.maximum(half[full] - 1, 0)]]
    above = values[order[np.minimum(starts[full] + half[full], len(node) - 1)]]
    threshold = np.full(n_nodes, np.inf, np.float32)
    threshold[full] = (below + above) / 2
    child = np.empty_like(node)
    child[order] = 2 * sorted_node + right
    return child, threshold


def forest_neighbours(
    descriptors: np.ndarray, k: int, *, n_trees: int, leaf_size: int, seed: int, chunk: int = 8192, base: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate k nearest neighbours (i, j), i != j, under the best-shift descriptor similarity.

    Each tree splits the unshifted descriptors (descriptors[base]; the middle one by default) at the median of a
    random projection, level by level, until leaves hold about `leaf_size` images; every shifted descriptor is
    routed down the same splits and meets the images of its leaf. Cost per tree: N log N for the splits plus
    S * N * leaf_size dot products."""
    n_shifts, n, dim = descriptors.shape
    base = descriptors[n_shifts // 2 if base < 0 else base]
    queries = descriptors.reshape(n_shifts * n, dim)
    depth = int(np.ceil(np.log2(max(n, 1) / leaf_size))) if n > leaf_size else 0
    rng = np.random.default_rng(seed)
    directions = [rng.standard_normal((dim, max(depth, 1))).astype(np.float32) for _ in range(n_trees)]

    def grow(tree: slice) -> tuple[np.ndarray, list[np.ndarray]]:
        """(leaf of each image, each level's split thresholds) of one tree: the splits see the images only."""
        node = np.zeros(n, np.int64)
        base_proj = base @ directions[tree.start]
        thresholds = []
        for level in range(depth):
            node, threshold = _split(node, base_proj[:, level], 2**level)
            thresholds.append(threshold)
        return node, thresholds

    keep = min(2, max(n - 1, 1))  # best matches kept per query and tree, before the per-image top k
    per_tree = []  # each tree's k best partners per image: the k best over all trees are among them
    grown = map_chunks(grow, n_trees, 1, threads=n_trees)  # all at once: 3 trees on 2 cores take 1.5 trees' time, not 2
    for tree, (node, thresholds) in enumerate(grown):
        query_node = _route(queries, directions[tree], thresholds, chunk)
        table = _leaf_table(node, 2**depth)
        blocks, block_leaf = _query_blocks(query_node, 2**depth)  # one small matrix product per block
        del query_node
        partner, score = _leaf_matches(queries, base, table, blocks, block_leaf, keep=keep, chunk=chunk)
        # (image, shift * keep + rank): each image's matches over all its shifted queries
        partner = partner.reshape(n_shifts, n, keep).transpose(1, 0, 2).reshape(n, n_shifts * keep)
        score = score.reshape(n_shifts, n, keep).transpose(1, 0, 2).reshape(n, n_shifts * keep)
        per_tree.append(_best_distinct(partner, score, k))
    if not per_tree:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    partner, _ = _best_distinct(*(np.concatenate(part, axis=1) for part in zip(*per_tree)), k)
    found = partner >= 0
    return np.nonzero(found)[0].astype(np.int64), partner[found].astype(np.int64)


def _leaf_matches(queries, base, table, blocks, block_leaf, *, keep: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """(partner int32 (Q, keep), score float32 (Q, keep)): each query's best matches among the images of its leaf
    in one tree (table: _leaf_table's; blocks, block_leaf: _query_blocks'), never the image itself; -1 / -inf
    where none."""
    n, width = len(base), table.shape[1]
    partner = np.full((len(queries), keep), -1, np.int32)
    score = np.full((len(queries), keep), -np.inf, np.float32)

    def match(part: slice) -> None:
        q, leaf = blocks[part], block_leaf[part]
        members = table[leaf][:, None, :]  # (blocks, 1, width)
        sim = queries[np.maximum(q, 0)] @ base[members[:, 0]].transpose(0, 2, 1)  # (blocks, QUERY_BLOCK, width)
        sim[(members < 0) | (members == (q % n)[..., None])] = -np.inf  # padding, and the image itself
        sim = sim.reshape(-1, width)
        top = (
            np.argpartition(-sim, keep - 1, axis=1)[:, :keep]
            if width > keep
            else np.broadcast_to(np.arange(width), (len(sim), width))
        )
        q = q.ravel()
        real = np.flatnonzero(q >= 0)  # rows of real queries, not padding
        top = top[real]
        partner[q[real], : top.shape[1]] = table[leaf[real // QUERY_BLOCK][:, None], top]  # one block each
        score[q[real], : top.shape[1]] = np.take_along_axis(sim[real], top, 1)

    map_chunks(match, len(blocks), chunk // QUERY_BLOCK)
    return partner, score


def _route(queries: np.ndarray, directions: np.ndarray, thresholds: list[np.ndarray], chunk: int) -> np.ndarray:
    """int32 (Q,): the leaf each query reaches down one tree's splits (directions (D, depth), a threshold array per
    level)."""
    query_node = np.zeros(len(queries), np.int32)

    def route(part: slice) -> None:
        proj, at = (queries[part] @ directions).T.copy(), np.zeros(part.stop - part.start, np.int32)
        for level, threshold in enumerate(thresholds):
            at = 2 * at + (proj[level] > threshold[at])
        query_node[part] = at

    map_chunks(route, len(queries), chunk, threads=1)  # steps too small for threads to gain
    return query_node


def _leaf_table(node: np.ndarray, n_leaves: int) -> np.ndarray:
    """int64 (n_leaves, widest leaf): the images of every leaf (node: each image's leaf), padded with -1."""
    leaves = np.arange(n_leaves)
    order = _by_leaf(node, n_leaves)
    starts = np.searchsorted(node[order], leaves)
    ends = np.searchsorted(node[order], leaves, side="right")
    table = np.full((n_leaves, int((ends - starts).max())), -1, np.int64)
    for c in range(table.shape[1]):
        has = starts + c < ends
        table[has, c] = order[starts[has] + c]
    return table


def _query_blocks(query_node: np.ndarray, n_leaves: int) -> tuple[np.ndarray, np.ndarray]:
    """(blocks int64 (B, QUERY_BLOCK), block_leaf int (B,)): the queries of each leaf in blocks of QUERY_BLOCK,
    padded with -1, and the leaf of each block."""
    by_leaf = _by_leaf(query_node, n_leaves)
    per_leaf = np.bincount(query_node, minlength=n_leaves)
    first_block = np.r_[0, np.cumsum(-(-per_leaf // QUERY_BLOCK))]
    leaf_of = query_node[by_leaf]
    rank = np.arange(len(by_leaf)) - np.r_[0, np.cumsum(per_leaf)][leaf_of]
    blocks = np.full((first_block[-1], QUERY_BLOCK), -1, np.int64)
    blocks[first_block[leaf_of] + rank // QUERY_BLOCK, rank % QUERY_BLOCK] = by_leaf
    return blocks, np.repeat(np.arange(n_leaves), np.diff(first_block))


def _by_leaf(leaf: np.ndarray, n_leaves: int) -> np.ndarray:
    """The positions sorted by their leaf, stably (a radix sort where leaf numbers fit 16 bits)."""
    return np.argsort(leaf.astype(np.uint16) if n_leaves <= 2**16 else leaf, kind="stable")


def _float_order(bits: np.ndarray) -> np.ndarray:
    """float32 bit patterns (as int64) to integers in the floats' order, and back: it is its own inverse."""
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


def _best_distinct(partner: np.ndarray, score: np.ndarray, k: int, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k best distinct partners (partner int (N, M), -1 for none; score float32 (N, M)), best first, ties
    by partner index: (partner, score), each (N, <= k), -1 / -inf where a row has fewer. A partner met more than once
    counts at its best score, so the k best of several trees' k best are the k best of them all. Each pair is one
    int64 sort key (partner, then score, or the other way round), so two sorts of plain numbers do it."""
    if len(partner) > chunk:
        parts = map_chunks(lambda rows: _best_distinct(partner[rows], score[rows], k), len(partner), chunk)
        return np.concatenate([p for p, _ in parts]), np.concatenate([s for _, s in parts])
    none = (partner < 0) | ~np.isfinite(score)
    bits = (-score.astype(np.float32) + np.float32(0)).view(np.int32).astype(np.int64)  # + 0: -0.0 becomes 0.0
    worse = _float_order(bits)  # the float order of -score, as integers
    who = partner.astype(np.int64)
    by_partner = np.sort(np.where(none, np.iinfo(np.int64).max, (who << 32) | (worse + 2**31)), axis=1)
    repeated = np.zeros(partner.shape, bool)  # a partner's later entries: its worse scores
    repeated[:, 1:] = (by_partner[:, 1:] >> 32) == (by_partner[:, :-1] >> 32)
    who, worse = by_partner >> 32, (by_partner & 0xFFFFFFFF) - 2**31
    gone = repeated | (by_partner == np.iinfo(np.int64).max)
    best = np.sort(np.where(gone, np.iinfo(np.int64).max, (worse << 32) | who), axis=1)[:, :k]
    found = best != np.iinfo(np.int64).max
    worse = best >> 32
    bits = _float_order(worse).astype(np.int32)
    return np.where(found, best & 0xFFFFFFFF, -1), np.where(found, -bits.view(np.float32), -np.inf).astype(np.float32)


def exhaustive_neighbours(
    descriptors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """The k best matches of each query image among all images, by best-shift descriptor similarity, searched
    exhaustively (no forest, so no misses): (query index repeated, match index), best first per query. Each
    chunk of images keeps its own k best per query; the best of those are the answer."""
    n_shifts, n, _ = descriptors.shape
    base = descriptors[n_shifts // 2]
    k = min(k, n - 1)
    shifted = descriptors[:, queries]  # (S, Q, D)

    def search(part: slice) -> tuple[np.ndarray, np.ndarray]:
        block = base[part].T.copy()
        sim = shifted[0] @ block
        for s in range(1, n_shifts):
            np.maximum(sim, shifted[s] @ block, out=sim)
        inside = np.flatnonzero((queries >= part.start) & (queries < part.stop))
        sim[inside, queries[inside] - part.start] = -np.inf  # never itself
        top = (
            np.argpartition(-sim, k - 1, axis=1)[:, :k]
            if sim.shape[1] > k
            else np.broadcast_to(np.arange(sim.shape[1]), sim.shape)
        )
        return np.take_along_axis(sim, top, 1), top + part.start

    found_sim, found_idx = zip(*map_chunks(search, n, chunk, threads=1))  # the matrix products use every core
    sim, idx = np.concatenate(found_sim, axis=1), np.concatenate(found_idx, axis=1)
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if sim.shape[1] > k else np.argsort(-sim, axis=1)
    best_sim, best_idx = np.take_along_axis(sim, top, 1), np.take_along_axis(idx, top, 1)
    order = np.argsort(-best_sim, axis=1, kind="stable")
    return np.repeat(queries, k), np.take_along_axis(best_idx, order, 1).ravel()


def geometric_queries(
    max_shift: int, max_rotation: float, max_scale: float, mirror: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The edits each image's descriptor is queried with in the two geometric families, (dy, dx, degrees, scale,
    flip) rows, the identity first (it is the base the forest splits). Around the frame's centre: shifts of
    max_shift - 0.5 pixels in 8 directions (a shift pushes part of a frame-filling picture out, which moves
    its centroid less than the picture) and the crop's scales. Around the centroid (shifts cancel there): one-pixel
    shifts, rotations of 0.7 max_rotation either way and scalings of about 0.45 and 0.9 of max_scale either way,
    and with mirror the mirrored descriptor. The steps leave at most half a step for the pair check to align."""
    identity = [(0.0, 0.0, 0.0, 1.0, 1.0)]
    frame, centred = list(identity), list(identity)
    if max_shift >= 2:
        ring = max_shift - 0.5
        frame += [(dy, dx, 0.0, 1.0, 1.0) for dy in (-ring, 0, ring) for dx in (-ring, 0, ring) if dy or dx]
    if max_shift >= 1:
        centred += [(dy, dx, 0.0, 1.0, 1.0) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    if max_rotation > 0:
        centred += [(0.0, 0.0, sign * 0.7 * max_rotation, 1.0, 1.0) for sign in (-1, 1)]
    if max_scale > 0:
        steps = [(1 + max_scale) ** e for e in (-0.9, -0.45, 0.45, 0.9)]
        frame += [(0.0, 0.0, 0.0, s, 1.0) for s in (steps[0], steps[-1])]
        centred += [(0.0, 0.0, 0.0, s, 1.0) for s in steps]
    if mirror:
        centred += [(0.0, 0.0, 0.0, 1.0, -1.0)]
    return np.array(frame), np.array(centred)


def centroids(x: np.ndarray) -> np.ndarray:
    """(N, 2) float32 intensity centroid (row, column) of grey float32 images (N, H, W), each pixel weighted by its
    distance from the background level (the median of the border pixels); the frame's centre for flat images."""
    n, h, w = x.shape
    border = np.concatenate([x[:, 0], x[:, -1], x[:, 1:-1, 0], x[:, 1:-1, -1]], axis=1)
    weight = np.abs(x - np.median(border, axis=1)[:, None, None])
    total = weight.sum(axis=(1, 2))
    flat = total <= 1e-3
    total[flat] = 1.0
    cy = weight.sum(axis=2) @ np.arange(h, dtype=np.float32) / total
    cx = weight.sum(axis=1) @ np.arange(w, dtype=np.float32) / total
    cy[flat], cx[flat] = (h - 1) / 2, (w - 1) / 2
    return np.stack([cy, cx], axis=1).astype(np.float32)


def centred(x: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Grey images (N, H, W) moved (bilinear, edge pixels repeated) so that each one's `centre` lands on the frame's
    centre: one interpolation along each axis."""
    n, h, w = x.shape
    out = x
    for axis, length in ((1, h), (2, w)):
        at = np.arange(length, dtype=np.float32)[None] + centre[:, axis - 1, None] - (length - 1) / 2  # (N, length)
        at = np.clip(at, 0, length - 1)
        low = np.minimum(at.astype(np.int64), length - 2) if length > 1 else np.zeros_like(at, np.int64)
        frac = (at - low)[:, :, None] if axis == 1 else (at - low)[:, None, :]
        if axis == 1:
            take = lambda k: np.take_along_axis(out, np.minimum(k, length - 1)[:, :, None], axis=1)  # noqa: E731
        else:
            take = lambda k: np.take_along_axis(out, np.minimum(k, length - 1)[:, None, :], axis=2)  # noqa: E731
        out = take(low) * (1 - frac) + take(low + 1) * frac
    return out.astype(np.float32)


def transformed_descriptors(
    x: np.ndarray, queries: np.ndarray, grid: int, margin: int, box: int, chunk: int = 8192
) -> np.ndarray:
    """(Q, N, G*G) float32 unit vectors, as shifted_descriptors, of grey images x (N, H, W) each sampled (bilinear,
    after a box x box blur) on the grid moved, rotated, scaled and flipped about the frame's centre by each query
    (dy, dx, degrees, scale, flip). The grid spans the frame less `margin` pixels a side. The sampling points are
    the same for every image, so each query is a fixed gather."""
    n, h, w = x.shape
    gh, gw = min(grid, h), min(grid, w)
    inner_h, inner_w = max(h - 2 * margin, 1), max(w - 2 * margin, 1)
    vy = (np.arange(gh) + 0.5) * inner_h / gh - inner_h / 2
    vx = (np.arange(gw) + 0.5) * inner_w / gw - inner_w / 2
    vy, vx = (v.ravel() for v in np.meshgrid(vy, vx, indexing="ij"))
    taps, weights = [], []
    for dy, dx, degrees, scale, flip in queries:
        t = np.deg2rad(degrees)
        py = (h - 1) / 2 + dy + scale * (np.cos(t) * vy + np.sin(t) * vx * flip)
        px = (w - 1) / 2 + dx + scale * (np.cos(t) * vx * flip - np.sin(t) * vy)
        py, px = np.clip(py, 0, h - 1), np.clip(px, 0, w - 1)
        y0, x0 = np.minimum(py.astype(np.int64), max(h - 2, 0)), np.minimum(px.astype(np.int64), max(w - 2, 0))
        fy, fx = py - y0, px - x0
        y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
        taps.append(np.stack([y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1]))
        weights.append(np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx]).astype(np.float32))
    out = np.empty((len(queries), n, gh * gw), np.float32)

    def describe(part: slice) -> None:
        flat = box_blur(x[part], box).reshape(part.stop - part.start, h * w)
        for q, (tap, weight) in enumerate(zip(taps, weights)):
            d = sum(flat[:, tap[k]] * weight[k] for k in range(4))
            d -= d.mean(axis=1, keepdims=True)
            norm = np.linalg.norm(d, axis=1, keepdims=True)
            out[q, part] = np.where(norm > 1e-6, d / np.maximum(norm, 1e-6), 0)

    map_chunks(describe, n, chunk)
    return out


def box_blur(x: np.ndarray, k: int) -> np.ndarray:
    """Means over k x k boxes (edge pixels repeated) of grey images (N, H, W), the same size."""
    if k <= 1:
        return x.astype(np.float32)
    lo = k // 2
    padded = np.pad(x.astype(np.float32), ((0, 0), (lo, k - 1 - lo), (lo, k - 1 - lo)), mode="edge")
    table = np.zeros((len(x), padded.shape[1] + 1, padded.shape[2] + 1), np.float32)
    np.cumsum(padded, axis=1, out=table[:, 1:, 1:])
    np.cumsum(table[:, 1:, 1:], axis=2, out=table[:, 1:, 1:])
    return (table[:, k:, k:] - table[:, :-k, k:] - table[:, k:, :-k] + table[:, :-k, :-k]) / (k * k)


def geometric_pairs(
    x: np.ndarray, families: list[tuple[np.ndarray, np.ndarray]], grid: int, margin: int, k: int, forest: dict
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs whose second image may be an edited copy of the first, and the edit that brings them
    together: (i, j, start, flip, similarity). x: grey images (N, H, W); families: (centre of each image (N, 2),
    or None for the frame's centre; queries (geometric_queries)), each searched by its own forest (forest:
    forest_neighbours' n_trees, leaf_size, seed) for each image's k best partners over its queries. start (n, 5):
    the warp of i onto j its best query describes (group_align's parameters); flip (n,): that query was mirrored;
    similarity (n,): its descriptors' cosine."""
    n, h, w = x.shape
    box = max(1, round((h - 2 * margin) / min(grid, h)))
    described, found = [], []
    frame = np.broadcast_to(np.array([(h - 1) / 2, (w - 1) / 2], np.float32), (n, 2))
    families = [(frame if centre is None else centre, queries, centre is not None) for centre, queries in families]
    for centre, queries, moved in families:
        at = centred(x, centre) if moved else x
        descriptors = transformed_descriptors(at, queries, grid, margin, box)
        found.append(forest_neighbours(descriptors, k, base=0, **forest))
        described.append(descriptors)
    i = np.concatenate([f[0] for f in found])
    j = np.concatenate([f[1] for f in found])
    pairs = np.unique(np.minimum(i, j) * n + np.maximum(i, j))
    i, j = pairs // n, pairs % n
    best = np.full(len(i), -np.inf, np.float32)
    start, flip = np.zeros((len(i), 5), np.float32), np.zeros(len(i), bool)
    for (centre, queries, _), descriptors in zip(families, described):
        for side, (q, b) in enumerate(((i, j), (j, i))):  # q's queries against b's base
            sim = np.einsum("snd,nd->sn", descriptors[:, q], descriptors[0, b])
            top = sim.argmax(axis=0)
            better = sim[top, np.arange(len(q))] > best
            best[better] = sim[top, np.arange(len(q))][better]
            query, ci, cj = queries[top[better]], centre[i[better]].copy(), centre[j[better]]
            ci[query[:, 4] < 0, 1] = w - 1 - ci[query[:, 4] < 0, 1]  # i mirrored: so is its centre
            start[better] = _start(query, ci, cj, side, (h, w))
            flip[better] = query[:, 4] < 0
    return i, j, start, flip, best


def _start(query: np.ndarray, ci: np.ndarray, cj: np.ndarray, side: int, shape: tuple[int, int]) -> np.ndarray:
    """The warp of i onto j (group_align's parameters: log scale, angle, log aspect, dy, dx) that a query
    (dy, dx, degrees, scale, flip) describes, made by i (side 0) or by j (side 1) about centres ci and cj."""
    c0 = (np.array(shape, np.float32) - 1) / 2
    angle, scale = np.deg2rad(query[:, 2]), query[:, 3]
    cos, sin = np.cos(angle), np.sin(angle)
    m = scale[:, None, None] * np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)
    shift = query[:, :2]
    if side == 0:  # i's query met j: i(ci + shift + m g) ~ j(cj + g)
        t = ci + shift - c0 - (m @ (cj - c0)[..., None])[..., 0]
    else:  # j's query met i: j(cj + shift + m g) ~ i(ci + g), so u_i = ci + m^-1 (u_j - cj - shift)
        m = np.linalg.inv(m)
        t = ci - c0 - (m @ (cj + shift - c0)[..., None])[..., 0]
    log_scale = np.log(np.sqrt(np.abs(np.linalg.det(m))))
    return np.stack(
        [log_scale, np.arctan2(m[:, 1, 0] - m[:, 0, 1], m[:, 0, 0] + m[:, 1, 1]), 0 * log_scale, t[:, 0], t[:, 1]], 1
    ).astype(np.float32)
