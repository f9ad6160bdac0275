"""The group stage's geometric pair check: is image j image i shifted, rotated, rescaled or cropped (and, as an
option, mirrored)? (docs: "Geometric twins").

A pair proposed by the geometric descriptors starts from the edit its best query describes. Gauss-Newton then fits
a warp of i onto j (scale, rotation, an aspect change along the axes as a crop makes, and a shift, each bounded)
with brightness and contrast, on a blurred coarse grid first and at full resolution last. The warped image is
resampled bicubically (as image editors do) and judged as group_pairs judges a shifted copy: a Pearson distance
over the overlap, and whether the residual looks like a copy's noise. Everything works on chunks of pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stages.cores import map_chunks
from stages.group_candidates import box_blur
from stages.group_pairs import _robust_sigma, clipped_model, local_excess

INTERPOLATION = 4.0  # grey levels added to the residual's noise level: two resamplings never agree exactly
MIN_OVERLAP = 0.5  # a warp must keep at least this share of the pixels inside both frames
MAX_ASPECT = 1.1  # largest ratio of the two axes' scales (a crop of 2-3 pixels a side makes up to 1.09)
COARSE, FINE = (3, 2, 4), (1, 1, 1)  # (blur, grid stride, Gauss-Newton steps) of the two stages of the fit
COARSE_GATE = 3.0  # pairs whose coarse fit leaves them further than this many times the limit stop there


@dataclass(frozen=True)
class Bounds:
    """What a warp may do: shift (pixels, each axis), rotation (degrees), scale (largest factor either way)."""

    shift: float
    rotation: float
    scale: float

    def limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the parameters (log scale, radians, log aspect, dy, dx)."""
        hi = np.array(
            [np.log(self.scale), np.deg2rad(self.rotation), 0.5 * np.log(MAX_ASPECT), self.shift, self.shift],
            np.float32,
        )
        return -hi, hi


def grey(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float32)
    return x[..., 0] if x.shape[-1] == 1 else x.mean(axis=-1)


def matrices(p: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """M = R(angle) diag(s / a, s a) of parameters p (n, 5) and its derivatives in log s, angle and log a."""
    sy, sx = np.exp(p[:, 0] - p[:, 2]), np.exp(p[:, 0] + p[:, 2])
    c, s = np.cos(p[:, 1]), np.sin(p[:, 1])

    def m(a, b, d, e):
        return np.stack([np.stack([a, b], -1), np.stack([d, e], -1)], -2)

    rotate = m(c * sy, -s * sx, s * sy, c * sx)
    return rotate, [rotate, m(-s * sy, -c * sx, c * sy, -s * sx), m(-c * sy, -s * sx, -s * sy, c * sx)]


def parameters(m: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The parameters (n, 5) nearest a 2 x 2 matrix m (n, 2, 2) and shift t (n, 2): its rotation and axis scales."""
    angle = np.arctan2(m[:, 1, 0] - m[:, 0, 1], m[:, 0, 0] + m[:, 1, 1])
    sy, sx = np.hypot(m[:, 0, 0], m[:, 1, 0]), np.hypot(m[:, 0, 1], m[:, 1, 1])
    return np.stack([np.log(np.sqrt(sy * sx)), angle, 0.5 * np.log(sx / sy), t[:, 0], t[:, 1]], 1).astype(np.float32)


def inverse(p: np.ndarray) -> np.ndarray:
    """Parameters of the inverse warp (u -> M u + t about the frame's centre, inverted)."""
    m, _ = matrices(p)
    inv = np.linalg.inv(m)
    return parameters(inv, -(inv @ p[:, 3:, None])[..., 0])


def points(p: np.ndarray, uy: np.ndarray, ux: np.ndarray, centre: tuple[float, float]):
    """Where each grid point (uy, ux), relative to the frame's centre, falls in the other image: (py, px), and the
    matrix's derivatives."""
    m, dm = matrices(p)
    py = centre[0] + m[:, 0, 0, None] * uy + m[:, 0, 1, None] * ux + p[:, 3, None]
    px = centre[1] + m[:, 1, 0, None] * uy + m[:, 1, 1, None] * ux + p[:, 4, None]
    return py.astype(np.float32), px.astype(np.float32), dm


def bilinear(planes: np.ndarray, rows: np.ndarray, py: np.ndarray, px: np.ndarray) -> list[np.ndarray]:
    """Bilinear samples of each of the C planes of images `rows` of planes (N, C, H, W) at (py, px) (n, m), clamped."""
    _, c, h, w = planes.shape
    py, px = np.clip(py, 0, h - 1.001), np.clip(px, 0, w - 1.001)
    y0, x0 = py.astype(np.int64), px.astype(np.int64)
    fy, fx = py - y0, px - x0
    base = rows[:, None] * (c * h * w) + y0 * w + x0
    flat = planes.reshape(-1)
    out = []
    for k in range(c):
        at = base + k * h * w
        top = flat[at] + (flat[at + 1] - flat[at]) * fx
        bottom = flat[at + w] + (flat[at + w + 1] - flat[at + w]) * fx
        out.append(top + (bottom - top) * fy)
    return out


def bicubic(x: np.ndarray, rows: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Bicubic (Keys, a = -0.5, as Pillow) samples of images `rows` of x (N, H, W) at (py, px), edges repeated."""
    _, h, w = x.shape
    y0, x0 = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
    wy, wx = _cubic(py - y0), _cubic(px - x0)
    flat = x.reshape(-1)
    out = np.zeros(py.shape, np.float32)
    for i in range(4):
        at_row = rows[:, None] * (h * w) + np.clip(y0 + i - 1, 0, h - 1) * w
        row = sum(wx[j] * flat[at_row + np.clip(x0 + j - 1, 0, w - 1)] for j in range(4))
        out += wy[i] * row
    return out


def _cubic(f: np.ndarray, a: float = -0.5) -> list[np.ndarray]:
    def kernel(d):
        d = np.abs(d)
        return np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a)

    return [kernel(f + 1), kernel(f), kernel(1 - f), kernel(2 - f)]


def fit_warp(
    planes: dict, a: np.ndarray, b: np.ndarray, p: np.ndarray, bounds: Bounds, stage: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Newton on b(u) ~ gain * a(centre + M u + t) + offset over a grid of every stride-th pixel of the images
    blurred over blur x blur boxes, from warp p: (warp, least Pearson distance over that grid before a step).
    planes[blur]: (N, 3, H, W) the blurred images and their two gradients."""
    blur, stride, steps = stage
    _, _, h, w = planes[blur].shape
    lo, hi = bounds.limits()
    centre = ((h - 1) / 2, (w - 1) / 2)
    step = np.array([0.1, 0.1, 0.05, 1.5, 1.5], np.float32)  # largest change per step: no overshoot
    ys, xs = np.arange(stride // 2, h, stride), np.arange(stride // 2, w, stride)
    uy, ux = (v.ravel().astype(np.float32) for v in np.meshgrid(ys - centre[0], xs - centre[1], indexing="ij"))
    target = planes[blur][b, 0][:, ys][:, :, xs].reshape(len(b), -1)
    distance = np.full(len(a), np.inf, np.float32)
    for _ in range(steps):
        py, px, dm = points(p, uy, ux, centre)
        v, vy, vx = bilinear(planes[blur], a, py, px)
        inside = ((py >= 0) & (py <= h - 1) & (px >= 0) & (px <= w - 1)).astype(np.float32)
        count = inside.sum(1) + 1e-6
        dv = v - (inside * v).sum(1, keepdims=True) / count[:, None]
        db = target - (inside * target).sum(1, keepdims=True) / count[:, None]
        vv, bb, vb = (inside * dv * dv).sum(1), (inside * db * db).sum(1), (inside * dv * db).sum(1)
        r = np.where((vv > 1e-6) & (bb > 1e-6), vb / np.sqrt(np.maximum(vv * bb, 1e-12)), 0)
        now = np.where(count >= MIN_OVERLAP * len(uy), np.sqrt(np.maximum(0, 2 - 2 * r)), np.inf)
        distance = np.minimum(distance, now)
        gain = vb / np.maximum(vv, 1e-6)
        residual = inside * (db - gain[:, None] * dv)
        columns = [vy * (d[:, 0, 0, None] * uy + d[:, 0, 1, None] * ux) for d in dm]
        columns = [c + vx * (d[:, 1, 0, None] * uy + d[:, 1, 1, None] * ux) for c, d in zip(columns, dm)]
        jac = np.stack(columns + [vy, vx], axis=1).astype(np.float32) * (gain[:, None, None] * inside[:, None])
        jac -= jac.sum(2, keepdims=True) / count[:, None, None] * inside[:, None]  # the offset takes the mean
        hess = jac @ jac.transpose(0, 2, 1) + 1e-3 * np.eye(5, dtype=np.float32)
        delta = np.linalg.solve(hess, (jac @ residual[:, :, None]))[..., 0]
        p = np.clip(p + np.clip(delta, -step, step), lo, hi)
    return p, distance.astype(np.float32)


def judge(x: np.ndarray, a: np.ndarray, b: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distance, z, sigma) of images a warped by p (bicubic) onto images b, over the pixels whose sample lies at
    least a pixel inside a's frame: the Pearson distance and group_pairs' noise test, the noise level floored by
    INTERPOLATION. Too small an overlap gives (inf, inf, inf)."""
    _, h, w = x.shape
    uy, ux = (v.ravel().astype(np.float32) for v in np.mgrid[0:h, 0:w])
    centre = ((h - 1) / 2, (w - 1) / 2)
    py, px, _ = points(p, uy - centre[0], ux - centre[1], centre)
    inside = (py >= 1) & (py <= h - 2) & (px >= 1) & (px <= w - 2)
    warped = np.clip(bicubic(x, a, py, px), 0, 255)
    target = x[b].reshape(len(b), -1)
    weight = inside.astype(np.float64)
    count = np.maximum(weight.sum(1), 1)
    dw = warped - (weight * warped).sum(1, keepdims=True) / count[:, None]
    dt = target - (weight * target).sum(1, keepdims=True) / count[:, None]
    var_w, var_t = (weight * dw * dw).sum(1), (weight * dt * dt).sum(1)
    ok = (var_w > 1e-6 * count) & (var_t > 1e-6 * count)
    r = np.where(ok, (weight * dw * dt).sum(1) / np.sqrt(np.where(ok, var_w * var_t, 1)), 0)
    distance = np.sqrt(np.maximum(0, 2 - 2 * r)).astype(np.float32)
    z, sigma = _masked_noise_z(warped, target, inside, (h, w))
    small = inside.mean(1) < MIN_OVERLAP
    distance[small], z[small], sigma[small] = np.inf, np.inf, np.inf
    return distance, z, sigma


def _masked_noise_z(p: np.ndarray, q: np.ndarray, valid: np.ndarray, shape: tuple[int, int], iterations: int = 3):
    """group_pairs._noise_z_one_way over the valid pixels only (the residual is 0 elsewhere)."""
    inside = valid & (p > 0) & (p < 255) & (q > 0) & (q < 255)
    few = inside.sum(1) < 3
    inside[few] = valid[few]
    w = inside.astype(np.float32)
    sw = np.maximum(w.sum(1, dtype=np.float64), 1)
    mp, mq = (w * p).sum(1, dtype=np.float64) / sw, (w * q).sum(1, dtype=np.float64) / sw
    dp = p - mp[:, None].astype(np.float32)
    vp = (w * dp * dp).sum(1, dtype=np.float64)
    cov = (w * dp * (q - mq[:, None].astype(np.float32))).sum(1, dtype=np.float64)
    a = np.where(vp > 1e-6, cov / np.maximum(vp, 1e-6), 0.0)
    b = mq - a * mp
    sigma = np.maximum(_robust_sigma(q - (a[:, None] * p + b[:, None]).astype(np.float32), inside), 0.5)
    keep = valid.astype(np.float32)
    for _ in range(iterations):
        mu = (a[:, None] * p + b[:, None]).astype(np.float32)
        mean, free = clipped_model(mu, sigma[:, None])
        free = free * keep
        e = (q - mean) * keep
        fresh = _robust_sigma(q - mu, free > 0.9)
        j1 = free * p
        a11, a12 = (j1 * j1).sum(1, dtype=np.float64), (j1 * free).sum(1, dtype=np.float64)
        a22 = (free * free).sum(1, dtype=np.float64)
        r1, r2 = (j1 * e).sum(1, dtype=np.float64), (free * e).sum(1, dtype=np.float64)
        ridge = 1e-9 * (a11 + a22) + 1e-9
        a11, a22 = a11 + ridge, a22 + ridge
        det = a11 * a22 - a12 * a12
        a, b = a + (a22 * r1 - a12 * r2) / det, b + (a11 * r2 - a12 * r1) / det
        sigma = np.where(fresh > 0, np.maximum(fresh, 0.5), sigma)
    mean, _ = clipped_model((a[:, None] * p + b[:, None]).astype(np.float32), sigma[:, None])
    residual = ((q - mean) * keep).reshape((len(p),) + shape + (1,))
    return local_excess(residual, sigma + INTERPOLATION).astype(np.float64), sigma.astype(np.float64)


def aligned_check(
    images: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    *,
    start: np.ndarray,
    flip: np.ndarray,
    bounds: Bounds,
    limit: float,
    chunk: int = 512,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both directions of each pair (i warped onto j, and back): (distance, z, sigma), each (n, 2) as noise_z's;
    inf where the coarse fit leaves the pair further than COARSE_GATE * limit (most candidates are distinct images,
    and the fine fit and judgement cost most). start: (n, 5) a first guess of the warp of i onto j; flip: (n,)
    compare i mirrored left to right. The fourth array: (n, 5) the fitted warps of i onto j (NaN where gated)."""
    involved, local = np.unique(np.r_[i, j], return_inverse=True)
    i, j = local[: len(i)], local[len(i) :]
    x = grey(images[involved])
    if flip.any():  # mirrored images follow the originals: image k mirrored is k + len(involved)
        x = np.concatenate([x, x[:, :, ::-1]])
        i = np.where(flip, i + len(involved), i)
    planes = {}
    for blur in {COARSE[0], FINE[0]}:
        smooth = box_blur(x, blur)
        gy, gx = np.gradient(smooth, axis=(1, 2))
        planes[blur] = np.ascontiguousarray(np.stack([smooth, gy, gx], axis=1), np.float32)
    out = np.full((3, len(i), 2), np.inf)
    warp = np.full((len(i), 5), np.nan, np.float32)

    def check(part: slice) -> None:
        a, b = i[part], j[part]
        there, coarse = fit_warp(planes, a, b, start[part], bounds, COARSE)
        near = np.flatnonzero(coarse <= COARSE_GATE * limit)
        if near.size == 0:
            return
        there, _ = fit_warp(planes, a[near], b[near], there[near], bounds, FINE)
        rows = np.arange(part.start, part.stop)[near]
        warp[rows] = there
        for side, judged in enumerate((judge(x, a[near], b[near], there), judge(x, b[near], a[near], inverse(there)))):
            for k, values in enumerate(judged):
                out[k, rows, side] = values

    map_chunks(check, len(i), chunk)
    return out[0].astype(np.float32), out[1], out[2], warp
