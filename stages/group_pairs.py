"""The group stage's pair checks: is image j a copy of image i? (docs: "How it works: Pair checks").

shift_distances gives the shape distance, noise_z whether what is left after fitting brightness and contrast
looks like a copy's white noise. Both work on uint8 images (N, H, W, C) in chunks: no N x N array is built.
"""

from __future__ import annotations

import numpy as np

from stages.cores import map_chunks
from stages.shifts import overlap_regions, shifts

# Residual local means are tested over these box sizes (pixels): noise averages out, a stroke does not.
BOXES = (3, 5)


def integral(x: np.ndarray) -> np.ndarray:
    """Summed-area table of x (n, h, w, c), zero-padded in front: t[:, y, x] = x[:, :y, :x].sum((1, 2))."""
    t = np.zeros((x.shape[0], x.shape[1] + 1, x.shape[2] + 1, x.shape[3]), x.dtype)
    np.cumsum(x, axis=1, out=t[:, 1:, 1:])
    np.cumsum(t[:, 1:, 1:], axis=2, out=t[:, 1:, 1:])
    return t


def box_sum(x: np.ndarray, kh: int, kw: int, table: np.ndarray | None = None) -> np.ndarray:
    """Sums over every kh x kw window of x (n, h, w, c), 'valid' windows only (`table`: x's summed-area
    table, if already made). Callers pass values centred near zero, so float32 running sums stay exact."""
    c = integral(x) if table is None else table
    return c[:, kh:, kw:] - c[:, :-kh, kw:] - c[:, kh:, :-kw] + c[:, :-kh, :-kw]


def corner_sums(x: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The summed-area table of x (n, h, w, c) read at rows ys and columns xs only (sorted, from 0): t[:, a, b] =
    x[:, :ys[a], :xs[b]].sum((1, 2)), (n, len(ys), len(xs), c). One pass over x, where a full table takes two."""
    bands = np.stack([x[:, y0:y1].sum(axis=1) for y0, y1 in zip(ys[:-1], ys[1:])], axis=1)
    down = np.concatenate([np.zeros_like(bands[:, :1]), np.cumsum(bands, axis=1)], axis=1)  # (n, len(ys), w, c)
    across = np.stack([down[:, :, x0:x1].sum(axis=2) for x0, x1 in zip(xs[:-1], xs[1:])], axis=2)
    return np.concatenate([np.zeros_like(across[:, :, :1]), np.cumsum(across, axis=2)], axis=2)


def local_excess(residual: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Largest |mean of the residual over a k x k box| in units of its white-noise standard error sigma / k
    (sigma floored by one grey level for rounding), over the box sizes that fit."""
    _, h, w, _ = residual.shape
    sizes = [k for k in BOXES if k <= min(h, w)] or [1]
    table = integral(residual)
    worst = [np.abs(box_sum(residual, k, k, table)).max(axis=(1, 2, 3)) / k for k in sizes]
    return np.max(worst, axis=0) / (sigma + 1.0)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (error below 1.5e-7): numpy has no erf and scipy is not a dependency.
    z = np.abs(x) * np.float32(1 / np.sqrt(2.0))
    t = 1 / (1 + np.float32(0.3275911) * z)
    poly = (
        (
            ((np.float32(1.061405429) * t - np.float32(1.453152027)) * t + np.float32(1.421413741)) * t
            - np.float32(0.284496736)
        )
        * t
        + np.float32(0.254829592)
    ) * t
    return 0.5 + np.copysign(0.5 - 0.5 * poly * np.exp(-z * z), x)


def clipped_model(mu: np.ndarray, sigma: np.ndarray, top: float = 255.0) -> tuple[np.ndarray, np.ndarray]:
    """For Gaussian noise: E[clip(mu + noise, 0, top)] (pixels near 0 or 255 are pushed inwards on average)
    and its derivative in mu, the chance that the pixel is not clipped."""
    lo, hi = mu / sigma, (mu - top) / sigma
    cdf_lo, cdf_hi = normal_cdf(lo), normal_cdf(hi)
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


def shift_distances(
    images: np.ndarray, i: np.ndarray, j: np.ndarray, max_shift: int, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Pearson distance sqrt(2 - 2 r) between images i and j, minimised over shifts: (distance, shift index).
    r is computed over the overlap only, so it ignores brightness and contrast; flat overlaps give r = 0.
    Each channel is centred on its own mean: otherwise the fixed offsets between the channels of colour
    images (a blue sky) would correlate every pair of images and squeeze all distances together."""
    involved, local = np.unique(np.r_[i, j], return_inverse=True)
    i, j = local[: len(i)], local[len(i) :]
    h, w, c = images.shape[1:]
    offsets = shifts(max_shift)
    mean, sums, squares, area = _overlap_sums(images, involved, offsets, chunk)

    def centred(x: np.ndarray, local: np.ndarray) -> np.ndarray:
        """Images x of the involved images `local`, centred: float32 dot products of centred images stay accurate."""
        return x.astype(np.float32, copy=False) - mean[local]

    best = np.full(len(i), np.sqrt(2.0), np.float32)
    arg = np.full(len(i), len(offsets) // 2, np.int64)

    def compare(part: slice) -> None:
        ii, jj = i[part], j[part]
        xa, xb = centred(images[involved[ii]], ii), centred(images[involved[jj]], jj)
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
            better = d < best[part]
            best[part] = np.where(better, d, best[part])
            arg[part] = np.where(better, o, arg[part])

    map_chunks(compare, len(i), chunk)
    return best, arg


def _overlap_sums(
    images: np.ndarray, involved: np.ndarray, offsets: list, chunk: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean float32 (n, 1, 1, C): each involved image's channel means; sums (2, O, n, C) and squares (2, O, n): per
    side of a pair (image a's, image b's), offset and image, the centred image's sums per channel and of squares
    over the part that overlaps; area (O,): the overlap's pixels)."""
    n_img, h, w, c = len(involved), *images.shape[1:]
    mean = np.zeros((n_img, 1, 1, c), np.float32)  # each involved image's channel means

    # per image and offset: sums per channel and sum of squares over the part of the image that takes part, read
    # off summed-area tables at the overlaps' corners, made a chunk of images at a time (float copies of them all
    # would be large). corners[o][side]: the overlap's (top, bottom, left, right) positions among ys and xs.
    spans = [[(r[0].indices(h)[:2], r[1].indices(w)[:2]) for r in overlap_regions(h, w, dy, dx)] for dy, dx in offsets]
    ys = np.unique([y for o in spans for (y_span, _) in o for y in y_span])
    xs = np.unique([x for o in spans for (_, x_span) in o for x in x_span])
    corners = [
        [tuple(np.searchsorted(ys, y_span).tolist() + np.searchsorted(xs, x_span).tolist()) for y_span, x_span in o]
        for o in spans
    ]
    area = np.array([(y1 - y0) * (x1 - x0) for ((y0, y1), (x0, x1)), _ in spans], np.int64)
    sums = np.zeros((2, len(offsets), n_img, c))  # [image a's side / image b's side, offset, image, channel]
    squares = np.zeros((2, len(offsets), n_img))

    def measure(part: slice) -> None:
        x = images[involved[part]].astype(np.float32)
        mean[part] = x.mean(axis=(1, 2), keepdims=True)
        centred_part = (x - mean[part]).astype(np.float64)
        t1, t2 = corner_sums(centred_part, ys, xs), corner_sums(centred_part**2, ys, xs).sum(axis=3)
        for o, sides in enumerate(corners):
            for side, (a0, a1, b0, b1) in enumerate(sides):
                sums[side, o, part] = t1[:, a1, b1] - t1[:, a0, b1] - t1[:, a1, b0] + t1[:, a0, b0]
                squares[side, o, part] = t2[:, a1, b1] - t2[:, a0, b1] - t2[:, a1, b0] + t2[:, a0, b0]

    map_chunks(measure, n_img, max(1, chunk // 4))  # float64 copies: a quarter of the chunk keeps them in cache
    return mean, sums, squares, area


def _noise_z_one_way(
    p: np.ndarray, q: np.ndarray, shape: tuple[int, ...], iterations: int = 3
) -> tuple[np.ndarray, np.ndarray]:
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
        mean, free = clipped_model(mu, sigma[:, None])
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
    mean, _ = clipped_model((a[:, None] * p + b[:, None]).astype(np.float32), sigma[:, None])
    return local_excess((q - mean).reshape((len(p),) + shape), sigma), sigma


def noise_z(
    images: np.ndarray, i: np.ndarray, j: np.ndarray, shift_index: np.ndarray, max_shift: int, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """How unlike a copy's white noise the difference between images i and j is, at their best shift.
    Brightness and contrast are fitted both ways, column 0 taking image i as the original and column 1
    image j; a copy fits well one way (original -> copy), the other way its noise sits in the regressor.
    Returns (z, sigma), each (n, 2): z is the residual's largest local mean in standard errors (white noise
    stays near 3.5, a missing bar scores tens), sigma its noise level in grey levels (a copy's noise; two
    different renderings of a glyph leave tens of grey levels along every stroke)."""
    _, h, w, c = images.shape
    z, sigma = np.zeros((len(i), 2)), np.zeros((len(i), 2))
    offsets = shifts(max_shift)
    by_shift = [np.flatnonzero(shift_index == o) for o in range(len(offsets))]
    tasks = [(o, sel[s0 : s0 + chunk]) for o, sel in enumerate(by_shift) for s0 in range(0, len(sel), chunk)]

    def explain(task: slice) -> None:
        for o, part in tasks[task]:
            ra, rb = overlap_regions(h, w, *offsets[o])
            pa = images[i[part]][:, ra[0], ra[1]].astype(np.float32)
            if pa.size == 0:  # no overlap at this shift: nothing to explain, nothing to accept
                z[part], sigma[part] = np.inf, np.inf
                continue
            pb = images[j[part]][:, rb[0], rb[1]].astype(np.float32)
            shape = pa.shape[1:]
            pa, pb = pa.reshape(len(part), -1), pb.reshape(len(part), -1)
            z[part, 0], sigma[part, 0] = _noise_z_one_way(pa, pb, shape)
            z[part, 1], sigma[part, 1] = _noise_z_one_way(pb, pa, shape)

    map_chunks(explain, len(tasks), 1)
    return z, sigma
