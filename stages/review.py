"""The review page: results/review.html, one self-contained file (images inline) a person works through to act on
what was found (README, "Acting on the results").

A card per issue, in issues.csv's order (Decisions.issues): the wrong labels, most certain first, then the
outliers, strangest first, then the odd images. Each card shows the image with its twins beside it, the given and
suggested label by name, the reason, the confidence and the file. The page filters cards by kind and class, and per
card a person accepts the suggestion, keeps the label, relabels it as another class or removes the sample; the
choices download as a CSV (a static page cannot write files) that `twins export --choices` applies.
Nothing here needs the report's plotting library: images are encoded as PNG by png_bytes below.
"""

from __future__ import annotations

import base64
import html
import json
import struct
import zlib
from typing import TYPE_CHECKING

import numpy as np

from stages.labels import class_count, class_name

if TYPE_CHECKING:
    from stages.aggregate import Decisions
    from stages.decode import Dataset

KINDS = {"twin": "twin conflict", "wrong_label": "wrong label", "outlier": "outlier", "odd": "odd image"}
CHOICES = ("accept", "keep", "relabel", "remove")  # what a person may decide per card; the CSV's `choice` column
CHOICES_HEADER = ["index", "path", "given", "suggested", "kind", "choice", "new_label"]  # the downloaded CSV
MAX_TWINS = 5  # twins shown beside a card's image


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


def data_uri(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(np.ascontiguousarray(image))).decode()


def card_kind(decisions: Decisions, i: int) -> str:
    if decisions.flagged[i]:
        return "twin" if decisions.reason[i] == "twin" else "wrong_label"
    return "outlier" if decisions.outlier[i] else "odd"


def review_page(data: Dataset, group: np.ndarray, decisions: Decisions, *, max_cards: int = 1000) -> str:
    """The page's HTML: up to max_cards cards (the rest are in issues.csv, and the page says so)."""
    names = [class_name(c, data.class_names) for c in range(class_count(data.labels, data.class_names))]
    order = decisions.issues()
    shown = order[:max_cards]
    members: dict[int, list[int]] = {}
    for i in shown:
        members.setdefault(int(group[i]), np.flatnonzero(group == group[i]).tolist())
    cards = []
    for i in shown:
        kind = card_kind(decisions, i)
        given = html.escape(class_name(data.labels[i], data.class_names))
        apart = kind in ("outlier", "odd")
        suggested = "" if apart else names[int(decisions.suggested[i])]
        twins = [j for j in members[int(group[i])] if j != i][:MAX_TWINS]
        path = data.paths[i] if data.paths else ""
        wrong_prob = decisions.wrong_prob[i]
        reason = {
            "twin": "its twins' evidence favours another label",
            "wrong_label": "every member that scored it predicted another class",
            "outlier": "unlike every class",
            "odd": f"broken image ({decisions.odd[i]})",
        }[kind]
        figures = "".join(
            f'<figure class="twin"><img src="{data_uri(data.images[j])}" alt="twin {j}">'
            f"<figcaption>#{j} {html.escape(class_name(data.labels[j], data.class_names))}</figcaption></figure>"
            for j in twins
        )
        options = "".join(
            f'<option value="{html.escape(n)}"{" selected" if n == suggested else ""}>{html.escape(n)}</option>'
            for n in names
        )
        buttons = "".join(
            f'<label><input type="radio" name="choice-{i}" value="{choice}"'
            f"{' disabled' if choice == 'accept' and apart else ''}> {choice}</label>"
            for choice in CHOICES
        )
        cards.append(f'''
<article class="card" id="card-{i}" data-index="{i}" data-kind="{kind}" data-given="{given}"
 data-suggested="{html.escape(suggested)}" data-path="{html.escape(path)}">
 <div class="pictures"><figure><img src="{data_uri(data.images[i])}" alt="sample {i}">
 <figcaption>#{i}</figcaption></figure>{figures}</div>
 <p class="labels"><span class="given">{given}</span>{
            " &rarr; <b class='suggested'>" + html.escape(suggested) + "</b>" if suggested else ""
        }</p>
 <p class="why"><span class="kind {kind}">{KINDS[kind]}</span> {reason}{
            "" if np.isnan(wrong_prob) or apart else f", probability wrong {wrong_prob:.3f}"
        }</p>
 {f'<p class="path">{html.escape(path)}</p>' if path else ""}
 <form class="choice">{buttons} <select name="new_label" aria-label="new label">{options}</select></form>
</article>''')
    more = (
        f"<p class='more'>{len(order) - len(shown)} more issues are listed in issues.csv only.</p>"
        if len(order) > len(shown)
        else ""
    )
    kind_boxes = "".join(
        f'<label><input type="checkbox" class="kind-filter" value="{k}" checked> {v} '
        f"({sum(card_kind(decisions, i) == k for i in shown)})</label>"
        for k, v in KINDS.items()
    )
    class_options = "".join(f'<option value="{html.escape(n)}">{html.escape(n)}</option>' for n in names)
    meta = json.dumps({"header": CHOICES_HEADER})
    return PAGE.format(
        n=len(data.labels),
        issues=len(order),
        cards="".join(cards) or "<p>Nothing to review.</p>",
        more=more,
        kinds=kind_boxes,
        classes=class_options,
        meta=meta,
    )


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>evil-twins: review</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1em; background: #fafafa; }}
header {{ position: sticky; top: 0; background: #fafafa; padding: .5em 0; border-bottom: 1px solid #ddd; z-index: 1; }}
header label {{ margin-right: 1em; }}
main {{ display: flex; flex-wrap: wrap; gap: .8em; margin-top: .8em; }}
.card {{ background: white; border: 1px solid #ccc; border-radius: 6px; padding: .6em; width: 23em; }}
.card.decided {{ border-color: #2a7; box-shadow: 0 0 0 2px #2a7 inset; }}
.pictures {{ display: flex; gap: .4em; flex-wrap: wrap; }}
figure {{ margin: 0; text-align: center; font-size: 75%; }}
img {{ width: 84px; height: 84px; image-rendering: pixelated; border: 2px solid #d62728; }}
.twin img {{ width: 56px; height: 56px; border-color: #999; }}
.labels {{ font-size: 120%; margin: .3em 0; }} .path {{ font-size: 75%; color: #555; word-break: break-all; }}
.kind {{ padding: 0 .3em; border-radius: 3px; color: white; background: #d62728; }}
.kind.outlier {{ background: #ff7f0e; }} .kind.odd {{ background: #7f7f7f; }}
.choice label {{ margin-right: .4em; }}
</style></head><body>
<header>
<strong>{issues} issues among {n} samples</strong>, most certain first.
{kinds}
<label>class <select id="class-filter"><option value="">all</option>{classes}</select></label>
<button id="download">Download choices (CSV)</button> <span id="decided">0 decided</span>
</header>
<main>{cards}</main>
{more}
<script type="application/json" id="meta">{meta}</script>
<script>
const meta = JSON.parse(document.getElementById("meta").textContent);
const cards = [...document.querySelectorAll(".card")];
function filter() {{
  const kinds = new Set([...document.querySelectorAll(".kind-filter:checked")].map(b => b.value));
  const cls = document.getElementById("class-filter").value;
  for (const card of cards) {{
    const show = kinds.has(card.dataset.kind) &&
      (!cls || card.dataset.given === cls || card.dataset.suggested === cls);
    card.hidden = !show;
  }}
}}
function chosen(card) {{
  const radio = card.querySelector("input[type=radio]:checked");
  if (!radio) return null;
  const label = card.querySelector("select").value;
  const newLabel = radio.value === "accept" ? card.dataset.suggested :
    radio.value === "relabel" ? label : radio.value === "keep" ? card.dataset.given : "";
  return [card.dataset.index, card.dataset.path, card.dataset.given, card.dataset.suggested,
          card.dataset.kind, radio.value, newLabel];
}}
function quote(field) {{
  const text = String(field);
  return /[",\\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}}
function update() {{
  let count = 0;
  for (const card of cards) {{ const done = chosen(card) !== null; card.classList.toggle("decided", done);
    count += done; }}
  document.getElementById("decided").textContent = count + " decided";
}}
document.querySelectorAll(".kind-filter, #class-filter").forEach(e => e.addEventListener("change", filter));
document.querySelector("main").addEventListener("change", update);
document.getElementById("download").addEventListener("click", () => {{
  const rows = [meta.header, ...cards.map(chosen).filter(r => r !== null)];
  const text = rows.map(r => r.map(quote).join(",")).join("\\n") + "\\n";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], {{type: "text/csv"}}));
  link.download = "review-choices.csv";
  document.body.appendChild(link); link.click(); link.remove();
}});
</script></body></html>
"""
