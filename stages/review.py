"""The review page: results/review.html, one self-contained file (images inline) a person works through to act on
what was found (docs: "The review page").

A card per issue, in issues.csv's order (Decisions.issues): the wrong labels, most certain first, then the outliers,
the odd images, then the samples worth a look, likeliest wrong first. Beside each card's image (enlarged) stand the
most typical pictures of its given and its suggested class, as this data set has them (compare_strips), its class
probabilities, its twins with their labels and which the tool trusts, and for an outlier the nearest pictures
(nearest_pictures). A person accepts the suggestion, keeps the label, relabels or removes the sample, by mouse or
keyboard; the choices stay in the browser's storage under the data set's fingerprint and download as a CSV that
`twins export --choices` applies (and the page loads back).

Python computes what each card shows (page_data); review.js draws the cards a page at a time, so that thousands
stay responsive (benchmarks/review_page.py). Every name and path reaches the page as JSON, escaped for a script
element, and is written into the page as text only. Nothing here needs the report's plotting library: grey images
are encoded as PNG by png_bytes below, colour ones as JPEG by Pillow.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stages.labels import UNLABELLED, class_count, class_name

if TYPE_CHECKING:
    from stages.aggregate import Decisions
    from stages.decode import Dataset

KINDS = {
    "twin": "twin conflict",
    "wrong_label": "wrong label",
    "outlier": "outlier",
    "odd": "odd image",
    "look": "worth a look",
}
CHOICES = ("accept", "keep", "relabel", "remove")  # what a person may decide per card; the CSV's `choice` column
CHOICES_HEADER = ["index", "path", "given", "suggested", "kind", "choice", "new_label", "dataset"]  # the download
STRIP = 6  # typical pictures per class in a card's compare strip
NEAREST = 3  # an outlier's nearest trusted pictures
TOP_CLASSES = 3  # the likeliest classes a card lists with their probabilities
LARGE = 168  # a card's picture is shown about this many pixels on its longer side (small ones: whole multiples)
THUMB = 56  # the same for the strips' and the twins' pictures
MAX_SHOWN = 320  # photos are shown at their own size up to this longer side, and stored no larger
JPEG_QUALITY = 90  # colour pictures go inline as JPEG of this quality
CORRELATE_SIDE = 16  # nearest_pictures compares pictures sampled down to at most this many pixels a side


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 (H, W, C) image (C = 1 or 3) as a PNG file: zlib and the PNG chunk layout, nothing else."""
    h, w, c = image.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), image.reshape(h, w * c)], axis=1)  # filter byte 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 0 if c == 1 else 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def bounded(image: np.ndarray, largest: int = MAX_SHOWN) -> np.ndarray:
    """A uint8 (H, W, C) image no larger than `largest` on its longer side: block means by the smallest whole factor
    that fits (a photo keeps its own size up to the bound)."""
    factor = math.ceil(max(image.shape[:2]) / largest)
    if factor <= 1:
        return image
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    blocks = image[:h, :w].reshape(h // factor, factor, w // factor, factor, image.shape[2]).astype(np.float32)
    return blocks.mean((1, 3)).round().astype(np.uint8)


def jpeg_bytes(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """A uint8 (H, W, 3) image as a JPEG file (Pillow, which decode already needs for image files)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def data_uri(image: np.ndarray) -> str:
    """An image as a data URI, bounded first: grey pictures as PNG (exact, and small), colour ones as JPEG, a
    seventh of a photo's PNG (benchmarks/review_page.py). RGBA drops its alpha: the tool reads 1 or 3 channels."""
    image = np.ascontiguousarray(bounded(image[..., :3] if image.shape[2] == 4 else image))
    if image.shape[2] == 3:
        return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(image)).decode()
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def shown_size(height: int, width: int, target: int) -> list[int]:
    """[width, height] in CSS pixels: a small picture enlarged by the largest whole factor that stays within
    `target` (so nearest-neighbour pixels stay square), a larger one at its size up to MAX_SHOWN, then scaled down."""
    side = max(height, width)
    scale = max(1, target // side) if side <= target else min(1.0, MAX_SHOWN / side)
    return [round(width * scale), round(height * scale)]


def card_kind(decisions: Decisions, i: int) -> str:
    if decisions.flagged[i]:
        return "twin" if decisions.reason[i] == "twin" else "wrong_label"
    if decisions.outlier[i]:
        return "outlier"
    return "odd" if decisions.odd[i] else "look"


def trusted(labels: np.ndarray, decisions: Decisions) -> np.ndarray:
    """bool (N,): samples the tool has no doubt about: labelled, scored, not flagged, not worth a look, no outlier,
    not odd. The compare strips and an outlier's nearest pictures are drawn from them."""
    scored = np.isfinite(decisions.class_prob).all(1) if decisions.class_prob.size else np.zeros(len(labels), bool)
    return (
        (labels != UNLABELLED)
        & scored
        & ~decisions.flagged
        & ~decisions.worth_a_look
        & ~decisions.outlier
        & (decisions.odd == "")
    )


def compare_strips(labels: np.ndarray, decisions: Decisions, classes, per_class: int = STRIP) -> dict[int, list[int]]:
    """The most typical pictures of each class in `classes`, as this data set has them: its trusted samples with the
    highest calibrated probability of their own label, at most per_class each (none where the class has none)."""
    pool = np.flatnonzero(trusted(labels, decisions))
    own = decisions.class_prob[pool, labels[pool]] if pool.size else np.zeros(0)
    ranked = pool[np.lexsort((-own, labels[pool]))]  # by class, then likeliest first
    strips = {}
    for k in classes:
        lo, hi = np.searchsorted(labels[ranked], [k, k + 1]) if ranked.size else (0, 0)
        strips[int(k)] = ranked[lo : min(hi, lo + per_class)].tolist()
    return strips


def small_pictures(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """float32 (len(rows), D): the pictures sampled down to at most CORRELATE_SIDE a side, each centred and scaled
    to unit length, so that a dot product is their pixel correlation (0 for a flat picture)."""
    h, w = images.shape[1:3]
    ys = np.linspace(0, h - 1, min(h, CORRELATE_SIDE)).round().astype(int)
    xs = np.linspace(0, w - 1, min(w, CORRELATE_SIDE)).round().astype(int)
    x = images[rows][:, ys][:, :, xs].reshape(len(rows), -1).astype(np.float32)
    x -= x.mean(1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)


def nearest_pictures(
    images: np.ndarray, queries: np.ndarray, pool: np.ndarray, *, k: int = NEAREST, chunk: int = 4096
) -> list[list[int]]:
    """For each of the query samples, the k samples of `pool` whose pictures correlate best with it (pixels, see
    small_pictures), best first: what an outlier resembles most among pictures the tool trusts. A chunk of the pool
    at a time, so memory stays small for any data set."""
    queries, pool = np.asarray(queries, np.int64), np.asarray(pool, np.int64)
    if not queries.size or not pool.size:
        return [[] for _ in queries]
    q = small_pictures(images, queries)
    best = np.full((len(q), k), -np.inf, np.float32)
    best_ids = np.full((len(q), k), -1, np.int64)
    for start in range(0, len(pool), chunk):
        part = pool[start : start + chunk]
        similarity = np.concatenate([best, q @ small_pictures(images, part).T], axis=1)
        ids = np.concatenate([best_ids, np.broadcast_to(part, (len(q), len(part)))], axis=1)
        top = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        best, best_ids = np.take_along_axis(similarity, top, 1), np.take_along_axis(ids, top, 1)
    return [[int(j) for j in row if j >= 0] for row in best_ids]


def likeliest(row: np.ndarray) -> list[list[float]]:
    """[[class, probability], ...]: the TOP_CLASSES likeliest classes of a class_prob row (none where unscored)."""
    if not row.size or not np.isfinite(row).all():
        return []
    top = np.argsort(-row, kind="stable")[:TOP_CLASSES]
    return [[int(k), round(float(row[k]), 4)] for k in top]


def card_record(
    i: int, kind: str, data: Dataset, decisions: Decisions, twins: np.ndarray, near: list[int], *, max_twins: int
) -> dict:
    """What one card shows, as the page's JSON has it (labels as class ids; the page names them): up to max_twins
    twins (report.max_twins), the rest counted."""
    labels = data.labels
    suggested = -1 if kind in ("outlier", "odd") else int(decisions.suggested[i])
    wrong = float(decisions.wrong_prob[i])
    return {
        "index": i,
        "kind": kind,
        "path": data.paths[i] if data.paths else "",
        "given": int(labels[i]),
        "suggested": suggested,
        "wrong": round(wrong, 4) if np.isfinite(wrong) else None,
        "top": likeliest(decisions.class_prob[i]),
        "twins": [[int(j), int(labels[j]), bool(suggested >= 0 and labels[j] == suggested)] for j in twins[:max_twins]],
        "more_twins": max(0, len(twins) - max_twins),
        "near": [[j, int(labels[j])] for j in near],
        "odd": str(decisions.odd[i]),
    }


def page_data(
    data: Dataset, group: np.ndarray, decisions: Decisions, *, max_cards: int = 1000, max_twins: int = 5
) -> dict:
    """Everything the page shows, as JSON-ready values: up to max_cards cards in issues.csv's order, the class names,
    the compare strips, and each picture any card shows once, as a data URI keyed by its sample index."""
    labels = data.labels
    names = [class_name(c, data.class_names) for c in range(class_count(labels, data.class_names))]
    order = decisions.issues()
    shown = np.asarray(order[:max_cards], np.int64)
    kinds = [card_kind(decisions, int(i)) for i in shown]
    by_group = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[by_group], group[shown], "left")
    ends = np.searchsorted(group[by_group], group[shown], "right")
    twins = [np.sort(by_group[a:b][by_group[a:b] != i]) for i, a, b in zip(shown, starts, ends)]
    outliers = [pos for pos, kind in enumerate(kinds) if kind == "outlier"]
    near = dict(
        zip(outliers, nearest_pictures(data.images, shown[outliers], np.flatnonzero(trusted(labels, decisions))))
    )
    cards = [
        card_record(int(i), kind, data, decisions, twins[pos], near.get(pos, []), max_twins=max_twins)
        for pos, (i, kind) in enumerate(zip(shown, kinds))
    ]
    classes = {c["given"] for c in cards} | {c["suggested"] for c in cards}
    strips = compare_strips(labels, decisions, sorted(k for k in classes if k >= 0))
    pictured = {c["index"] for c in cards}
    pictured |= {t[0] for c in cards for t in c["twins"]} | {t[0] for c in cards for t in c["near"]}
    pictured |= {j for strip in strips.values() for j in strip}
    h, w = data.images.shape[1:3]
    return {
        "fingerprint": data.fingerprint,
        "samples": len(labels),
        "issues": len(order),
        "estimate": [round(float(x)) for x in decisions.estimate] if np.isfinite(decisions.estimate).all() else None,
        "header": CHOICES_HEADER,
        "choices": list(CHOICES),
        "kinds": KINDS,
        "classes": names,
        "cards": cards,
        "strips": {str(k): v for k, v in strips.items()},
        "images": {str(j): data_uri(data.images[j]) for j in sorted(pictured)},
        "view": {"large": shown_size(h, w, LARGE), "thumb": shown_size(h, w, THUMB), "pixelated": max(h, w) < LARGE},
    }


def script_json(value) -> str:
    """JSON that a <script> element holds as written: ASCII only (\\r, bidi controls and every other character
    escaped), and no <, > or & that could close the element or open a comment."""
    text = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(page: dict) -> str:
    """The page's HTML around page_data's values, with review.css and review.js inlined: one file, no network."""
    here = Path(__file__).parent
    return PAGE.format(
        css=(here / "review.css").read_text(encoding="utf-8"),
        data=script_json(page),
        js=(here / "review.js").read_text(encoding="utf-8"),
    )


def review_page(
    data: Dataset, group: np.ndarray, decisions: Decisions, *, max_cards: int = 1000, max_twins: int = 5
) -> str:
    """The page's HTML: up to max_cards cards (the rest are in issues.csv, and the page says so), each with up to
    max_twins of its twins."""
    return render_page(page_data(data, group, decisions, max_cards=max_cards, max_twins=max_twins))


# The page's frame. No user data is written into it: names and paths travel in the JSON and review.js sets them as
# text. A script's own text cannot hold "</script" (review.js does not).
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>evil-twins: review</title>
<style>
{css}</style></head><body>
<header>
<p id="summary"></p>
<div id="filters"></div>
<div id="actions">
 <strong id="count"></strong>
 <button type="button" id="download">Download choices (CSV)</button>
 <label class="file">Load choices <input type="file" id="load" accept=".csv,text/csv"></label>
 <button type="button" id="clear">Clear choices</button>
 <span id="status" role="status"></span>
</div>
<p id="keys"></p>
</header>
<noscript>The review page needs JavaScript to draw its cards.</noscript>
<main id="cards"></main>
<nav id="pager"></nav>
<datalist id="class-list"></datalist>
<script type="application/json" id="data">{data}</script>
<script>
{js}</script></body></html>
"""
