"""Where two images overlap when one is moved by a few pixels: shared by the group stage's pair checks and the train
stage's nearest neighbours, so that neither stage depends on the other's code."""

from __future__ import annotations


def shifts(max_shift: int) -> list[tuple[int, int]]:
    """Every (dy, dx) offset of at most max_shift pixels each way, (0, 0) included."""
    return [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)]


def overlap_regions(h: int, w: int, dy: int, dx: int):
    """Slices of image a and image b that overlap when b is compared at offset (dy, dx): a[y, x] ~ b[y+dy, x+dx]."""
    a = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
    b = (slice(max(0, dy), h - max(0, -dy)), slice(max(0, dx), w - max(0, -dx)))
    return a, b
