"""Twins shifted, rotated, rescaled, cropped or mirrored: grouped with their original? (issue 48)

Does the group stage put an edited copy with its original, with the geometric pair check on, and does it keep
distinct items apart, with the check on and with the defaults (off)? Beside perceptual hashing.

    python -m benchmarks geometric_twins                        # 3 sources x 7 edits: a few minutes on 2 cores
    python -m benchmarks geometric_twins --sources mnist --edits rotate crop

Per source, 2,000 clean items drawn once (seed 0) among its images with distinct bytes: MNIST's test digits and
notMNIST's letters (bundled under data/), Fashion-MNIST's test clothes (../shared/data, not shipped with the repo).
For each edit, 40 of the 2,000 get an edited copy and the group stage runs on the 2,040 with the geometric pair
check on (`group.geometric: true, max_shift: 3`; the defaults leave it off); a copy counts when it
lands in its original's group. False groups are the groups of two or more among the 2,000 clean items alone (a
real near-duplicate in the data counts too: a person should look at them), and of them those whose members carry
different labels; `s` is the group stage's wall time on that run (noisy on a shared machine). The edits (each copy
draws its own):
- `jpeg`: JPEG quality 30-70 (Pillow);
- `rotate`: 5-9 degrees either way about the centre (Pillow, bicubic);
- `resize`: 88-94% or 106-112% (Pillow, bicubic), re-centred: padded with the background or cropped to 28 x 28;
- `shift2`, `shift3`: moved 2 or 3 pixels along one axis or both, the uncovered band filled with the background;
- `crop`: 2-3 pixels cut off each side, resized back (Pillow, bicubic);
- `mirror`: flipped left to right, grouped with `group.mirror` on (a mirrored glyph is another glyph).
The background is the median of the image's border pixels. Beside ours: perceptual hashing (imagehash.phash, 64
bits; a copy counts when within 8 bits of its original; false pairs are the clean pairs within 8 bits), where
imagehash is installed. imagededup's CNN method is left out: it loads MobileNetV3's ImageNet weights through
torchvision from the network at run time.
"""

from __future__ import annotations

import io
import time
from dataclasses import replace

import numpy as np

from benchmarks.harness.data import shared

N_CLEAN, N_COPIES = 2000, 40
PHASH_BITS = 8  # a copy is a perceptual-hash match within this many bits


def background(image: np.ndarray) -> int:
    """The median of the border pixels of a grey (H, W) image: what fills the frame where an edit uncovers it."""
    border = np.r_[image[0], image[-1], image[1:-1, 0], image[1:-1, -1]]
    return int(np.median(border))


def _pil(image: np.ndarray):
    from PIL import Image

    return Image.fromarray(image, mode="L")


def jpeg(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    _pil(image).save(buffer, format="JPEG", quality=int(rng.integers(30, 71)))
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L"))


def rotate(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    angle = rng.uniform(5, 9) * rng.choice([-1, 1])
    return np.asarray(_pil(image).rotate(angle, resample=Image.BICUBIC, fillcolor=background(image)))


def resize(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    h, w = image.shape
    factor = rng.uniform(0.88, 0.94) if rng.random() < 0.5 else rng.uniform(1.06, 1.12)
    nh, nw = round(h * factor), round(w * factor)
    scaled = np.asarray(_pil(image).resize((nw, nh), resample=Image.BICUBIC))
    out = np.full((max(h, nh), max(w, nw)), background(image), np.uint8)
    y0, x0 = (len(out) - nh) // 2, (out.shape[1] - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = scaled
    y0, x0 = (len(out) - h) // 2, (out.shape[1] - w) // 2
    return out[y0 : y0 + h, x0 : x0 + w]


def shift(image: np.ndarray, rng: np.random.Generator, pixels: int) -> np.ndarray:
    dy, dx = 0, 0
    while max(abs(dy), abs(dx)) != pixels:
        dy, dx = rng.integers(-pixels, pixels + 1, size=2)
    h, w = image.shape
    padded = np.pad(image, pixels, constant_values=background(image))
    return padded[pixels - dy : pixels - dy + h, pixels - dx : pixels - dx + w]


def crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    h, w = image.shape
    top, bottom, left, right = rng.integers(2, 4, size=4)
    return np.asarray(_pil(image[top : h - bottom, left : w - right]).resize((w, h), resample=Image.BICUBIC))


EDITS = {
    "jpeg": jpeg,
    "rotate": rotate,
    "resize": resize,
    "shift2": lambda image, rng: shift(image, rng, 2),
    "shift3": lambda image, rng: shift(image, rng, 3),
    "crop": crop,
    "mirror": lambda image, rng: image[:, ::-1],
}


def edited(images: np.ndarray, edit: str, seed: int) -> np.ndarray:
    """An edited copy of each grey uint8 (N, H, W, 1) image, (N, H, W, 1)."""
    rng = np.random.default_rng(seed)
    return np.stack([EDITS[edit](np.ascontiguousarray(x[..., 0]), rng) for x in images])[..., None]


def load(source: str) -> tuple[np.ndarray, np.ndarray]:
    """All images of a source, uint8 (N, 28, 28, 1), and their labels."""
    from pipeline.plant import load_source

    return shared("fashion") if source == "fashion" else load_source(source)


def clean_items(images: np.ndarray, n: int = N_CLEAN, seed: int = 0) -> np.ndarray:
    """Indices of n images drawn at random among those whose bytes no other image repeats (exact copies are
    another matter)."""
    from stages.group_candidates import unique_images

    first, inverse = unique_images(images)
    single = first[np.bincount(inverse) == 1]
    return np.sort(np.random.default_rng(seed).choice(single, n, replace=False))


def false_groups(group: np.ndarray, labels: np.ndarray) -> tuple[int, int, int]:
    """(groups of two or more, pairs inside them, groups whose members carry different labels)."""
    from stages.labels import conflicting_groups

    sizes = np.bincount(group)
    mixed = int(conflicting_groups(group, labels).sum())
    return int((sizes > 1).sum()), int((sizes * (sizes - 1) // 2).sum()), mixed


def ours(clean: np.ndarray, labels: np.ndarray, copies: dict[str, np.ndarray], originals: np.ndarray, params) -> dict:
    from stages.group import group_images

    start = time.perf_counter()
    out = {"false": false_groups(group_images(clean, params).group, labels), "clean_s": time.perf_counter() - start}
    if hasattr(params, "mirror"):
        out["false_mirror"] = false_groups(group_images(clean, replace(params, mirror=True)).group, labels)
    for edit, edit_copies in copies.items():
        run_params = replace(params, mirror=True) if edit == "mirror" and hasattr(params, "mirror") else params
        start = time.perf_counter()
        group = group_images(np.concatenate([clean, edit_copies]), run_params).group
        out[edit] = int((group[N_CLEAN:] == group[originals]).sum()), time.perf_counter() - start
    return out


def phash(clean: np.ndarray, copies: dict[str, np.ndarray], originals: np.ndarray) -> dict | None:
    try:
        import imagehash
    except ImportError:
        return None

    def bits(images: np.ndarray) -> np.ndarray:
        return np.stack([imagehash.phash(_pil(np.ascontiguousarray(x[..., 0]))).hash.ravel() for x in images])

    base = bits(clean)
    near = (base[:, None, :] != base[None, :, :]).sum(axis=2) <= PHASH_BITS
    out = {"false": (None, int((near.sum() - len(base)) // 2))}
    for edit, edit_copies in copies.items():
        out[edit] = int(((bits(edit_copies) != base[originals]).sum(axis=1) <= PHASH_BITS).sum()), None
    return out


RECALL = {"source": "", "edit": "", "ours": "d", "ours s": ".2f", "phash": "d"}
CLEAN = {"source": "", "check": "", "groups": "d", "mixed labels": "d", "pairs": "d", "phash pairs": "d"}


def options(parser) -> None:
    parser.add_argument("--sources", nargs="+", default=["mnist", "notmnist", "fashion"])
    parser.add_argument("--edits", nargs="+", default=list(EDITS), choices=list(EDITS))


def run(args, report) -> None:
    from stages.group import GroupParams, group_images

    recall = report.table(
        RECALL,
        f"Edited copies grouped with their original (of {N_COPIES}), the geometric check on; phash within "
        f"{PHASH_BITS} bits",
        wide=(["edit"], "source", ["ours", "phash"]),
    )
    clean_rows = []
    for source in args.sources:
        images, labels = load(source)
        pick = clean_items(images)
        clean, labels = images[pick], labels[pick]
        originals = np.sort(np.random.default_rng(1).choice(N_CLEAN, N_COPIES, replace=False))
        copies = {edit: edited(clean[originals], edit, seed=k) for k, edit in enumerate(args.edits)}
        got = ours(clean, labels, copies, originals, GroupParams(geometric=True, max_shift=3))
        peer = phash(clean, copies, originals)
        for edit in args.edits:
            recall.add(dict(zip(RECALL, [source, edit, *got[edit], None if peer is None else peer[edit][0]])))
        peer_pairs = None if peer is None else peer["false"][1]
        checks = {
            "defaults (geometric off)": false_groups(group_images(clean, GroupParams()).group, labels),
            "geometric on": got["false"],
            "geometric and mirror on": got["false_mirror"],
        }
        for check, (groups, pairs, mixed) in checks.items():
            clean_rows.append([source, check, groups, mixed, pairs, peer_pairs])
    table = report.table(CLEAN, f"Groups among {N_CLEAN} clean items of each source (a real near-duplicate counts)")
    for row in clean_rows:
        table.add(dict(zip(CLEAN, row)))
