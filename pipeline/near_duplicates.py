"""Building blocks of the group stage: exact hashing, candidate pairs, verification, bounded clustering.

Everything works on uint8 images (N, H, W, C) of any size and is chunked, so no N x N array is ever built.
A copy may differ from its original by pixel noise, a brightness/contrast change (with clipping to 0..255)
and a shift of up to `max_shift` pixels (with edge padding), so:
- the shape distance is the Pearson distance sqrt(2 - 2 r) over the overlap, minimised over shifts;
- candidates come from a random-projection forest over small box-averaged descriptors, queried with every
  shifted version of each image (a one-pixel shift moves an 8 x 8 descriptor further than the gap between
  distinct digits, so shift-invariance has to come from the queries);
- a pair close in shape must also leave a residual that looks like a copy's white pixel noise: two distinct
  glyphs that differ by one bar (notMNIST's E and F) are close in Pearson distance but leave a localised
  residual, and two renderings of one glyph leave a strong one along every stroke.
"""
from __future__ import annotations

import numpy as np

# Residual local means are tested over these box sizes (pixels): noise averages out, a stroke does not.
BOXES = (3, 5)


def shifts(max_shift: int) -> list[tuple[int, int]]:
    return [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)]


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


def _integral(x: np.ndarray) -> np.ndarray:
    """Summed-area table of x (n, h, w, c), zero-padded in front: t[:, y, x] = x[:, :y, :x].sum((1, 2))."""
    t = np.zeros((x.shape[0], x.shape[1] + 1, x.shape[2] + 1, x.shape[3]), x.dtype)
    np.cumsum(x, axis=1, out=t[:, 1:, 1:])
    np.cumsum(t[:, 1:, 1:], axis=2, out=t[:, 1:, 1:])
    return t


def _box_sum(x: np.ndarray, kh: int, kw: int, table: np.ndarray | None = None) -> np.ndarray:
    """Sums over every kh x kw window of x (n, h, w, c), 'valid' windows only (`table`: x's summed-area
    table, if already made). Callers pass values centred near zero, so float32 running sums stay exact."""
    c = _integral(x) if table is None else table
    return c[:, kh:, kw:] - c[:, :-kh, kw:] - c[:, kh:, :-kw] + c[:, :-kh, :-kw]


def _local_excess(residual: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Largest |mean of the residual over a k x k box| in units of its white-noise standard error sigma / k
    (sigma floored by one grey level for rounding), over the box sizes that fit."""
    _, h, w, _ = residual.shape
    sizes = [k for k in BOXES if k <= min(h, w)] or [1]
    table = _integral(residual)
    worst = [np.abs(_box_sum(residual, k, k, table)).max(axis=(1, 2, 3)) / k for k in sizes]
    return np.max(worst, axis=0) / (sigma + 1.0)


def blank_scores(images: np.ndarray, max_z: float) -> tuple[np.ndarray, np.ndarray]:
    """(z, sigma): how far each image is from 'one grey level plus white noise' (z, in the units of
    noise_z: a constant image scores 0, a glyph tens) and the noise level that takes (grey levels). A cheap
    screen, noise read from neighbouring-pixel differences, clears most images; the few it cannot clear are
    scored against a constant under the clipped-noise model of noise_z."""
    x = images.astype(np.float32)
    dev = x - x.mean(axis=(1, 2, 3), keepdims=True)
    # the difference of two neighbouring noisy pixels has variance 2 sigma^2
    squares = [(np.diff(x, axis=a) ** 2).sum(axis=(1, 2, 3)) for a in (1, 2) if x.shape[a] > 1]
    count = sum(x[0].size - x[0].size // x.shape[a] for a in (1, 2) if x.shape[a] > 1)
    sigma = np.sqrt(sum(squares) / max(count, 1) / 2) if squares else np.zeros(len(x), np.float32)
    scores = _local_excess(dev, sigma)
    # thin strokes and fine textures also have large differences, so a low screen score proves nothing yet
    maybe = np.flatnonzero(scores <= max_z)
    for s0 in range(0, len(maybe), 1024):
        part = maybe[s0:s0 + 1024]
        q = x[part].reshape(len(part), -1).astype(np.float64)
        level, sigma[part] = _clipped_level(q)
        mean, _ = _clipped_model(level[:, None], sigma[part][:, None])
        scores[part] = _local_excess((q - mean).reshape((len(part),) + x.shape[1:]), sigma[part])
    return scores, sigma


def _clipped_level(q: np.ndarray, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Level and noise (grey levels) of each row seen as clip(level + noise, 0, 255), by EM: pixels stuck at
    0 or 255 count with the moments a Gaussian has beyond the clip. A blank copy pushed towards white is
    mostly 255 with a few dips; those dips alone would understate its noise."""
    level = q.mean(axis=1)
    sigma = np.maximum(q.std(axis=1), 0.5)
    top, bottom = q >= 255, q <= 0
    for _ in range(iterations):
        mu, s = level[:, None], sigma[:, None]
        hi, lo = (255 - mu) / s, (0 - mu) / s
        tail_hi = np.exp(-0.5 * hi * hi) / np.sqrt(2 * np.pi) / np.maximum(1 - _normal_cdf(hi), 1e-12)
        tail_lo = np.exp(-0.5 * lo * lo) / np.sqrt(2 * np.pi) / np.maximum(_normal_cdf(lo), 1e-12)
        first = np.where(top, mu + s * tail_hi, np.where(bottom, mu - s * tail_lo, q))
        second = np.where(top, mu ** 2 + s ** 2 + s * (mu + 255) * tail_hi,
                          np.where(bottom, mu ** 2 + s ** 2 - s * mu * tail_lo, q * q))
        level = first.mean(axis=1)
        sigma = np.sqrt(np.maximum(second.mean(axis=1) - level ** 2, 0.25))
    return level, sigma


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
    boxed = _box_sum(padded, kh, kw)[..., 0] / (kh * kw)
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


def overlap_regions(h: int, w: int, dy: int, dx: int):
    """Slices of image a and image b that overlap when b is compared at offset (dy, dx): a[y, x] ~ b[y+dy, x+dx]."""
    a = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
    b = (slice(max(0, dy), h - max(0, -dy)), slice(max(0, dx), w - max(0, -dx)))
    return a, b


def shift_distances(images: np.ndarray, i: np.ndarray, j: np.ndarray, max_shift: int,
                    chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Pearson distance sqrt(2 - 2 r) between images i and j, minimised over shifts: (distance, shift index).
    r is computed over the overlap only, so it ignores brightness and contrast; flat overlaps give r = 0.
    Each channel is centred on its own mean: otherwise the fixed offsets between the channels of colour
    images (a blue sky) would correlate every pair of images and squeeze all distances together."""
    involved, local = np.unique(np.r_[i, j], return_inverse=True)
    i, j = local[:len(i)], local[len(i):]
    n_img, h, w, c = len(involved), *images.shape[1:]
    x = images[involved].astype(np.float32)
    x -= x.mean(axis=(1, 2), keepdims=True)  # centred: float32 dot products stay accurate
    offsets = shifts(max_shift)
    # per image and offset: sums per channel and sum of squares over the part of the image that takes part,
    # read off summed-area tables made a chunk of images at a time (float64 tables of all would be large)
    sums = np.zeros((2, len(offsets), n_img, c))  # [image a's side / image b's side, offset, image, channel]
    squares = np.zeros((2, len(offsets), n_img))
    area = np.zeros(len(offsets), np.int64)
    for s0 in range(0, n_img, chunk):
        part = x[s0:s0 + chunk].astype(np.float64)
        t1, t2 = _integral(part), _integral(part ** 2).sum(axis=3)
        for o, (dy, dx) in enumerate(offsets):
            for side, region in enumerate(overlap_regions(h, w, dy, dx)):
                (y0, y1, _), (x0, x1, _) = region[0].indices(h), region[1].indices(w)
                sums[side, o, s0:s0 + chunk] = t1[:, y1, x1] - t1[:, y0, x1] - t1[:, y1, x0] + t1[:, y0, x0]
                squares[side, o, s0:s0 + chunk] = t2[:, y1, x1] - t2[:, y0, x1] - t2[:, y1, x0] + t2[:, y0, x0]
                area[o] = (y1 - y0) * (x1 - x0)
    best = np.full(len(i), np.sqrt(2.0), np.float32)
    arg = np.full(len(i), len(offsets) // 2, np.int64)
    for s0 in range(0, len(i), chunk):
        ii, jj = i[s0:s0 + chunk], j[s0:s0 + chunk]
        xa, xb = x[ii], x[jj]
        for o, (dy, dx) in enumerate(offsets):
            ra, rb = overlap_regions(h, w, dy, dx)
            # float32 is exact enough: the images are centred, so the sums carry no large common offset
            dot = np.einsum("nhwc,nhwc->n", xa[:, ra[0], ra[1]], xb[:, rb[0], rb[1]]).astype(np.float64)
            (sa, sb), (qa, qb), m = sums[:, o], squares[:, o], area[o]
            if m == 0:  # images no wider than the shift: no overlap
                continue
            va = qa[ii] - (sa[ii] ** 2).sum(axis=1) / m
            vb = qb[jj] - (sb[jj] ** 2).sum(axis=1) / m
            cov = dot - (sa[ii] * sb[jj]).sum(axis=1) / m
            ok = (va > 1e-6 * m * c) & (vb > 1e-6 * m * c)
            r = np.where(ok, cov / np.sqrt(np.where(ok, va * vb, 1.0)), 0.0)
            d = np.sqrt(np.maximum(0.0, 2 - 2 * r)).astype(np.float32)
            better = d < best[s0:s0 + chunk]
            best[s0:s0 + chunk] = np.where(better, d, best[s0:s0 + chunk])
            arg[s0:s0 + chunk] = np.where(better, o, arg[s0:s0 + chunk])
    return best, arg


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (error below 1.5e-7): numpy has no erf and scipy is not a dependency.
    z = np.abs(x) * np.float32(1 / np.sqrt(2.0))
    t = 1 / (1 + np.float32(0.3275911) * z)
    poly = ((((np.float32(1.061405429) * t - np.float32(1.453152027)) * t + np.float32(1.421413741)) * t
             - np.float32(0.284496736)) * t + np.float32(0.254829592)) * t
    return 0.5 + np.copysign(0.5 - 0.5 * poly * np.exp(-z * z), x)


def _clipped_model(mu: np.ndarray, sigma: np.ndarray, top: float = 255.0) -> tuple[np.ndarray, np.ndarray]:
    """For Gaussian noise: E[clip(mu + noise, 0, top)] (pixels near 0 or 255 are pushed inwards on average)
    and its derivative in mu, the chance that the pixel is not clipped."""
    lo, hi = mu / sigma, (mu - top) / sigma
    cdf_lo, cdf_hi = _normal_cdf(lo), _normal_cdf(hi)
    pdf_lo, pdf_hi = np.exp(-0.5 * lo * lo), np.exp(-0.5 * hi * hi)
    mean = mu * cdf_lo - (mu - top) * cdf_hi + sigma * np.float32(1 / np.sqrt(2 * np.pi)) * (pdf_lo - pdf_hi)
    return mean, cdf_lo - cdf_hi


def _masked_median(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median of each row over its masked entries (NaN for rows with none)."""
    ordered = np.sort(np.where(mask, x, np.inf), axis=1)
    count = mask.sum(axis=1)
    lo = np.take_along_axis(ordered, np.maximum(count - 1, 0)[:, None] // 2, axis=1)[:, 0]
    hi = np.take_along_axis(ordered, np.minimum(count // 2, x.shape[1] - 1)[:, None], axis=1)[:, 0]
    return np.where(count > 0, (lo + hi) / 2, np.nan)


def _robust_sigma(r: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """1.4826 x median absolute deviation of each row over its masked entries (0 where there are none)."""
    centre = _masked_median(r, mask)
    sigma = 1.4826 * _masked_median(np.abs(r - centre[:, None]), mask)
    return np.where(np.isfinite(sigma), sigma, 0.0).astype(np.float32)


def _noise_z_one_way(p: np.ndarray, q: np.ndarray, shape: tuple[int, ...],
                     iterations: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Model q = clip(a p + b + white noise, 0, 255) (rows are pairs, float32); return the residual's local
    excess and the noise level sigma (grey levels). Least squares on unclipped pixels starts it; Gauss-Newton
    on the clipped model finishes it, so saturated pixels (brightness pushed past 0 or 255) neither bias a
    and b nor show up as structure."""
    inside = (p > 0) & (p < 255) & (q > 0) & (q < 255)
    inside[inside.sum(axis=1) < 3] = True
    w = inside.astype(np.float32)
    sw = w.sum(axis=1, dtype=np.float64)
    mp, mq = (w * p).sum(axis=1, dtype=np.float64) / sw, (w * q).sum(axis=1, dtype=np.float64) / sw
    dp = p - mp[:, None].astype(np.float32)
    vp = (w * dp * dp).sum(axis=1, dtype=np.float64)
    cov = (w * dp * (q - mq[:, None].astype(np.float32))).sum(axis=1, dtype=np.float64)
    a = np.where(vp > 1e-6, cov / np.maximum(vp, 1e-6), 0.0)
    b = mq - a * mp
    sigma = np.maximum(_robust_sigma(q - (a[:, None] * p + b[:, None]).astype(np.float32), inside), 0.5)
    for _ in range(iterations):
        mu = (a[:, None] * p + b[:, None]).astype(np.float32)
        mean, free = _clipped_model(mu, sigma[:, None])
        e = q - mean
        fresh = _robust_sigma(q - mu, free > 0.9)  # noise level from pixels that are rarely clipped
        j1 = free * p
        a11, a12 = (j1 * j1).sum(1, dtype=np.float64), (j1 * free).sum(1, dtype=np.float64)
        a22 = (free * free).sum(1, dtype=np.float64)
        r1, r2 = (j1 * e).sum(1, dtype=np.float64), (free * e).sum(1, dtype=np.float64)
        ridge = 1e-9 * (a11 + a22) + 1e-9  # a blank p leaves only b to fit
        a11, a22 = a11 + ridge, a22 + ridge
        det = a11 * a22 - a12 * a12
        a = a + (a22 * r1 - a12 * r2) / det
        b = b + (a11 * r2 - a12 * r1) / det
        sigma = np.where(fresh > 0, np.maximum(fresh, 0.5), sigma)
    mean, _ = _clipped_model((a[:, None] * p + b[:, None]).astype(np.float32), sigma[:, None])
    return _local_excess((q - mean).reshape((len(p),) + shape), sigma), sigma


def noise_z(images: np.ndarray, i: np.ndarray, j: np.ndarray, shift_index: np.ndarray, max_shift: int,
            chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """How unlike a copy's white noise the difference between images i and j is, at their best shift.
    Brightness and contrast are fitted both ways, column 0 taking image i as the original and column 1
    image j; a copy fits well one way (original -> copy), the other way its noise sits in the regressor.
    Returns (z, sigma), each (n, 2): z is the residual's largest local mean in standard errors (white noise
    stays near 3.5, a missing bar scores tens), sigma its noise level in grey levels (a copy's noise; two
    different renderings of a glyph leave tens of grey levels along every stroke)."""
    _, h, w, c = images.shape
    z, sigma = np.zeros((len(i), 2)), np.zeros((len(i), 2))
    for o, (dy, dx) in enumerate(shifts(max_shift)):
        sel = np.flatnonzero(shift_index == o)
        ra, rb = overlap_regions(h, w, dy, dx)
        for s0 in range(0, len(sel), chunk):
            part = sel[s0:s0 + chunk]
            pa = images[i[part]][:, ra[0], ra[1]].astype(np.float32)
            if pa.size == 0:  # no overlap at this shift: nothing to explain, nothing to accept
                z[part], sigma[part] = np.inf, np.inf
                continue
            pb = images[j[part]][:, rb[0], rb[1]].astype(np.float32)
            shape = pa.shape[1:]
            pa, pb = pa.reshape(len(part), -1), pb.reshape(len(part), -1)
            z[part, 0], sigma[part, 0] = _noise_z_one_way(pa, pb, shape)
            z[part, 1], sigma[part, 1] = _noise_z_one_way(pb, pa, shape)
    return z, sigma


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of the pairs (a, b): each image's smallest member index."""
    label = np.arange(n)
    while True:  # min-label propagation; converges in a few rounds on these short chains
        low = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]
        if np.array_equal(new, label):
            return label
        label = new


def bounded_clusters(images: np.ndarray, a: np.ndarray, b: np.ndarray, d: np.ndarray, radius: float,
                     max_shift: int) -> np.ndarray:
    """Cluster id of each image, joining images along accepted pairs (a, b) at distance d.

    Two copies of one original can be 2 * max_shift pixels and about twice the threshold apart, so a cluster
    is accepted when every member lies within `radius` of its representative at shifts up to 2 * max_shift.
    A connected component that fails (a chain A~B~C~D through distinct images) is rebuilt closest pair
    first, each merge checked the same way against the larger side's first image."""
    n = len(images)
    cluster = _components(n, a, b)
    centre = representatives(cluster, a, b, d)
    member = np.flatnonzero(centre != np.arange(n))
    far, _ = shift_distances(images, member, centre[member], 2 * max_shift)
    broken = np.unique(cluster[member[far > radius]])
    if broken.size == 0:
        return cluster
    # distances between all members of each broken component, looked up during the rebuild; a component too
    # large for a table (never seen in practice) has its distances computed merge by merge instead
    inside = np.isin(cluster, broken)
    position = np.zeros(n, np.int64)
    table: dict[int, np.ndarray] = {}
    pairs = []
    for comp in broken.tolist():
        nodes = np.flatnonzero(cluster == comp)
        if len(nodes) <= 400:
            position[nodes] = np.arange(len(nodes))
            table[comp] = np.zeros((len(nodes), len(nodes)), np.float32)
            p, q = np.triu_indices(len(nodes), 1)
            pairs.append((comp, p, q, nodes))
    if pairs:
        gaps, _ = shift_distances(images, np.concatenate([nodes[p] for _, p, _, nodes in pairs]),
                                  np.concatenate([nodes[q] for _, _, q, nodes in pairs]), 2 * max_shift)
        start = 0
        for comp, p, q, _ in pairs:
            table[comp][p, q] = table[comp][q, p] = gaps[start:start + len(p)]
            start += len(p)

    def gap(comp: int, joining: list[int], big: int) -> float:
        if comp in table:
            return float(table[comp][position[joining], position[big]].max())
        far, _ = shift_distances(images, np.array(joining), np.full(len(joining), big), 2 * max_shift)
        return float(far.max())

    parent = np.arange(n)
    members: dict[int, list[int]] = {}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    redo = np.isin(cluster[a], broken)
    for k in np.flatnonzero(redo)[np.argsort(d[redo], kind="stable")]:
        ra, rb = find(int(a[k])), find(int(b[k]))
        if ra == rb:
            continue
        big, small = (ra, rb) if len(members.get(ra, [ra])) >= len(members.get(rb, [rb])) else (rb, ra)
        joining = members.get(small, [small])
        if gap(int(cluster[big]), joining, big) <= radius:
            parent[small] = big
            members[big] = members.get(big, [big]) + joining
            members.pop(small, None)
    rebuilt = np.array([find(x) for x in range(n)])
    cluster[inside] = rebuilt[inside]
    return cluster


def representatives(cluster: np.ndarray, a: np.ndarray, b: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The representative of each image's cluster: the member with most accepted pairs inside its cluster,
    then the smallest total distance over them, then the lowest index (an original has its copies as
    neighbours; two copies of it are further apart)."""
    n = len(cluster)
    inside = cluster[a] == cluster[b]
    ends = np.r_[a[inside], b[inside]]
    degree = np.bincount(ends, minlength=n)
    total = np.bincount(ends, weights=np.r_[d[inside], d[inside]], minlength=n)
    order = np.lexsort((np.arange(n), total, -degree, cluster))
    first = np.r_[True, cluster[order][1:] != cluster[order][:-1]]
    best = dict(zip(cluster[order][first].tolist(), order[first].tolist()))
    return np.array([best[c] for c in cluster.tolist()], dtype=np.int64)
