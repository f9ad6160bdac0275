"""The group stage's blank and broken images (docs: "How it works: Odd images").

Blanks (one grey level plus noise) have no shape to compare and are grouped by level instead; blanks, pure noise and
washed-out images are also reported as odd and kept out of training."""

from __future__ import annotations

import numpy as np

from stages.group_pairs import BOXES, clipped_model, local_excess, normal_cdf

MAX_NOISE_CORRELATION = 0.15  # below this, neighbouring pixels do not correlate as a picture's do: noise
SATURATED_SHARE = 0.98  # an image with at least this share of its pixels at 250 or above is washed out


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
    # most images are plainly not blank: a lower bound, from the boxes that tile the image, clears them cheaply
    scores = tiled_excess(dev, sigma)
    near = np.flatnonzero(scores <= max_z * 1.001 + 1e-3)  # a margin for the two ways of summing
    scores[near] = local_excess(dev[near], sigma[near])
    # thin strokes and fine textures also have large differences, so a low screen score proves nothing yet
    maybe = np.flatnonzero(scores <= max_z)
    for s0 in range(0, len(maybe), 1024):
        part = maybe[s0 : s0 + 1024]
        q = x[part].reshape(len(part), -1).astype(np.float64)
        level, sigma[part] = _clipped_level(q)
        mean, _ = clipped_model(level[:, None], sigma[part][:, None])
        scores[part] = local_excess((q - mean).reshape((len(part),) + x.shape[1:]), sigma[part])
    return scores, sigma


def tiled_excess(residual: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """A lower bound of local_excess(residual, sigma): the same measure over the non-overlapping boxes of the
    largest size that fits, a few of the boxes it looks at, read in one pass."""
    n, h, w, c = residual.shape
    sizes = [k for k in BOXES if k <= min(h, w)]
    if not sizes:
        return local_excess(residual, sigma)
    k = max(sizes)
    tiles = residual[:, : h // k * k, : w // k * k].reshape(n, h // k, k, w // k, k, c).sum(axis=(2, 4))
    return np.abs(tiles).max(axis=(1, 2, 3)) / k / (sigma + 1.0)


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
        tail_hi = np.exp(-0.5 * hi * hi) / np.sqrt(2 * np.pi) / np.maximum(1 - normal_cdf(hi), 1e-12)
        tail_lo = np.exp(-0.5 * lo * lo) / np.sqrt(2 * np.pi) / np.maximum(normal_cdf(lo), 1e-12)
        first = np.where(top, mu + s * tail_hi, np.where(bottom, mu - s * tail_lo, q))
        second = np.where(
            top, mu**2 + s**2 + s * (mu + 255) * tail_hi, np.where(bottom, mu**2 + s**2 - s * mu * tail_lo, q * q)
        )
        level = first.mean(axis=1)
        sigma = np.sqrt(np.maximum(second.mean(axis=1) - level**2, 0.25))
    return level, sigma


def odd_kinds(images: np.ndarray, blank: np.ndarray) -> np.ndarray:
    """What is broken about each image, from its pixels alone: "blank" (given: one grey level plus noise), "noise"
    (neighbouring pixels do not correlate), "saturated" (washed out to white), or "" (a picture)."""
    x = images.astype(np.float32)
    x -= x.mean(axis=(1, 2, 3), keepdims=True)
    pairs = [(x[:, 1:] * x[:, :-1], x[:, 1:] ** 2), (x[:, :, 1:] * x[:, :, :-1], x[:, :, 1:] ** 2)]
    together = sum(p.sum(axis=(1, 2, 3)) for p, _ in pairs)
    spread = sum(q.sum(axis=(1, 2, 3)) for _, q in pairs)
    correlation = np.where(spread > 0, together / np.maximum(spread, 1e-6), 1.0)
    kind = np.full(len(images), "", dtype="<U9")
    kind[(images >= 250).mean(axis=(1, 2, 3)) >= SATURATED_SHARE] = "saturated"
    kind[correlation < MAX_NOISE_CORRELATION] = "noise"
    kind[blank] = "blank"
    return kind
