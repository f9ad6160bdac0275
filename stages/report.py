"""Stage 5, report: the decisions made visible to a person, and plot data for `dvc plots`.

- flagged.png (then flagged-2.png, flagged-3.png, ... when there are more tiles than a page holds): every flagged
  sample beside the other members of its twin group, each tile captioned "#index" and "given -> suggested".
- scores.png: each label's probability of being wrong, singletons and twins apart, the cut of the flags marked.
- confusion.png and confusion.csv: given against suggested label over the whole data set (the estimated noise).
- classes.csv: per given class, its samples, how many were flagged and how many wrong labels the aggregate stage
  estimated in it, drawn by `dvc plots` as bars: noise that flows into one class stands out.
- outliers.png: the outliers, strangest first, then the odd images (blank, noise, saturated).
- map.png: every sample on a 2-D map of the members' features, wrong labels, twins and outliers marked.
- loss.csv and loss.png: the ensemble members' training loss, mean and spread.
- review.html: the review page (stages/review.py), a card per issue to accept, keep, relabel or remove.

Figures are built as matplotlib Figure objects without pyplot, so no backend (let alone a GUI) is ever chosen:
savefig renders PNG with Agg. draw() returns every file's contents; pipeline/steps.py writes them.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from stages.labels import UNLABELLED, class_name
from stages.params import Params, param
from stages.review import review_page
from stages.tables import cell, csv_text

if TYPE_CHECKING:  # the result types draw() reads; the report needs none of their stages' code
    from stages.aggregate import Decisions
    from stages.decode import Dataset
    from stages.group import GroupResult
    from stages.train import TrainResult

FLAG_COLOUR = "#d62728"
OUTLIER_COLOUR = "#ff7f0e"
TWIN_COLOUR = "#7f7f7f"
BAND_COLOUR = "#e8e8e8"
TILE_INCHES = (1.1, 1.45)  # width, height: the image plus a two-line caption
HEADER_INCHES = 0.8
MAX_ANNOTATED_CLASSES = 20  # beyond this a confusion matrix's cells are too small to print counts in


@dataclass(frozen=True)
class ReportParams(Params):
    """How the report's figures and the review page are laid out."""

    tiles_per_page: int = param(
        48, "The most tiles on one page of flagged.png; more make flagged-2.png, flagged-3.png, ...", within="1..1000"
    )
    columns: int = param(8, "Tiles per row of the montage.", within="1..100")
    max_twins: int = param(
        5,
        "The most unflagged copies of a group shown beside its flagged ones (the rest are counted).",
        within="0..100",
    )
    dpi: int = param(100, "Resolution of every PNG (pixels per inch; a tile is 1.1 x 1.45 inches).", within="20..600")
    review_cards: int = param(
        1000, "The most cards on review.html (the rest are in issues.csv, and the page says so).", within="0..100000"
    )


# ---- the montage of flagged samples -------------------------------------------------------------------------------


class Tile(NamedTuple):
    index: int  # the sample shown
    row: int  # position on its page
    col: int
    flagged: bool
    run: int  # which group this tile belongs to (runs are numbered in montage order)
    hidden: int  # on a group's last tile: how many of its members were left out; else 0


def montage_runs(flagged: np.ndarray, group: np.ndarray, max_twins: int) -> list[tuple[list[int], int]]:
    """One run per group holding a flagged sample, in the order of its first flagged index (as in suspects.txt):
    (indices to show: the flagged members, then up to max_twins others; how many others were left out)."""
    order = np.argsort(group, kind="stable")  # stable: members come out in ascending index
    sorted_group = group[order]
    runs, seen = [], set()
    for i in np.flatnonzero(flagged):
        g = int(group[i])
        if g in seen:
            continue
        seen.add(g)
        members = order[np.searchsorted(sorted_group, g) : np.searchsorted(sorted_group, g, side="right")]
        twins = members[~flagged[members]]
        shown = members[flagged[members]].tolist() + twins[:max_twins].tolist()
        runs.append(([int(m) for m in shown], max(0, len(twins) - max_twins)))
    return runs


def layout_pages(
    runs: list[tuple[list[int], int]], flagged: np.ndarray, columns: int, tiles_per_page: int
) -> list[list[Tile]]:
    """Place the runs row by row on pages of at most tiles_per_page tiles.

    A group starts a new row rather than break across two, and a new page rather than break across two, whenever
    it would fit whole there; only groups too big for that wrap."""
    columns = min(columns, tiles_per_page)
    rows_per_page = tiles_per_page // columns
    pages: list[list[Tile]] = []
    page: list[Tile] = []
    row = col = 0
    for r, (indices, hidden) in enumerate(runs):
        n = len(indices)
        if col and col + n > columns and n <= columns:
            row, col = row + 1, 0
        if page and n <= rows_per_page * columns and row + math.ceil((col + n) / columns) > rows_per_page:
            pages.append(page)
            page, row, col = [], 0, 0
        for k, index in enumerate(indices):
            if col == columns:
                row, col = row + 1, 0
            if row == rows_per_page:
                pages.append(page)
                page, row = [], 0
            page.append(Tile(index, row, col, bool(flagged[index]), r, hidden if k == n - 1 else 0))
            col += 1
    if page:
        pages.append(page)
    return pages


def _plain_log_ticks(axis, minor: bool = True) -> None:
    """1, 10, 100 (and 0.2, 0.5, 2) rather than 10^0 and 2x10^-1: read at a glance."""
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda value, _: f"{value:g}")
    axis.set_major_formatter(plain)
    if minor:
        axis.set_minor_formatter(plain)


def _show(ax, image: np.ndarray) -> None:
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def message_figure(text: str, title: str):
    """A small figure that says why there is nothing to draw (so the file still exists for DVC)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 2.4))
    fig.suptitle(title, fontsize=12)
    fig.text(0.5, 0.45, text, ha="center", va="center", fontsize=14, color="#444444")
    return fig


def montage_figure(
    images: np.ndarray,
    given: np.ndarray,
    suggested: np.ndarray,
    tiles: list[Tile],
    columns: int,
    title: str,
    class_names: list[str] | None = None,
    paths: list[str] | None = None,
):
    """One page of the montage: tiles on a grid, each group's tiles on a grey band, flagged ones framed in red."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    rows = max(t.row for t in tiles) + 1
    tile_w, tile_h = TILE_INCHES
    margin = 0.15
    width, height = columns * tile_w + 2 * margin, rows * tile_h + HEADER_INCHES + margin
    fig = Figure(figsize=(width, height))
    fig.suptitle(title, fontsize=10, y=1 - 0.12 / height, va="top")

    def cell(row: int, col: int) -> tuple[float, float]:  # bottom-left corner of a cell, in figure fractions
        return (margin + col * tile_w) / width, (height - HEADER_INCHES - (row + 1) * tile_h) / height

    for run in sorted({(t.run, t.row) for t in tiles}):
        cols = [t.col for t in tiles if (t.run, t.row) == run]
        x0, y0 = cell(run[1], min(cols))
        fig.add_artist(
            Rectangle(
                (x0 + 0.03 / width, y0 + 0.03 / height),
                ((max(cols) - min(cols) + 1) * tile_w - 0.06) / width,
                (tile_h - 0.06) / height,
                transform=fig.transFigure,
                color=BAND_COLOUR,
                zorder=0,
            )
        )
    image_w, image_h = 0.8, 0.8  # inches, centred in the cell's width, captioned above
    for t in tiles:
        x0, y0 = cell(t.row, t.col)
        ax = fig.add_axes(((x0 + (tile_w - image_w) / 2 / width), y0 + 0.2 / height, image_w / width, image_h / height))
        _show(ax, images[t.index])
        colour = FLAG_COLOUR if t.flagged else "black"
        ax.set_title(
            f"{tile_name(t.index, paths)}\n{label_name(given[t.index], class_names, 9)} \u2192 "
            f"{label_name(suggested[t.index], class_names, 9)}",
            fontsize=7,
            color=colour,
            fontweight="bold" if t.flagged else "normal",
            pad=2,
            linespacing=1.1,
        )
        for spine in ax.spines.values():
            spine.set_color(FLAG_COLOUR if t.flagged else TWIN_COLOUR)
            spine.set_linewidth(3 if t.flagged else 1)
        if t.hidden:
            ax.set_xlabel(f"+{t.hidden} more", fontsize=7, labelpad=1, color="#444444")
    return fig


def strangers_figure(
    images: np.ndarray,
    given: np.ndarray,
    decisions: Decisions,
    columns: int,
    most: int,
    class_names: list[str] | None = None,
):
    """The outliers, strangest first, then the odd images: each captioned with its index, given label and outlier
    score (or what is broken about it). None when there are neither."""
    from matplotlib.figure import Figure

    outliers = np.flatnonzero(decisions.outlier)
    shown = (
        outliers[np.argsort(-decisions.outlier_score[outliers], kind="stable")].tolist()
        + np.flatnonzero(decisions.odd != "").tolist()
    )[:most]
    if not shown:
        return None
    columns = min(columns, len(shown))
    rows = math.ceil(len(shown) / columns)
    fig = Figure(figsize=(columns * TILE_INCHES[0], rows * TILE_INCHES[1] + HEADER_INCHES))
    fig.suptitle(
        f"{len(outliers)} outliers (belong to no class), {int((decisions.odd != '').sum())} odd images"
        + (f"; the first {most}" if len(shown) == most else ""),
        fontsize=10,
    )
    for k, index in enumerate(shown):
        ax = fig.add_subplot(rows, columns, k + 1)
        _show(ax, images[index])
        note = decisions.odd[index] or f"score {decisions.outlier_score[index]:.2f}"
        ax.set_title(
            f"#{index} {label_name(given[index], class_names)}\n{note}", fontsize=8, pad=2, color=OUTLIER_COLOUR
        )
    fig.subplots_adjust(top=1 - HEADER_INCHES / fig.get_figheight(), hspace=0.6)
    return fig


def map_figure(
    class_sim: np.ndarray,
    group: np.ndarray,
    decisions: Decisions,
    labels: np.ndarray | None = None,
    class_names: list[str] | None = None,
):
    """Every scored sample on a 2-D map drawn from the members' features: the first two principal components of
    class_sim float (N, K), its features' mean similarity to each class's (train.feature_evidence, averaged over the
    members that scored it; rows of nan where unscored). Wrong labels, samples with twins, outliers and odd images
    are marked, so a person sees where each flag sits."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 6))
    ax = fig.add_subplot()
    scored = np.flatnonzero(np.isfinite(class_sim).all(1))
    if scored.size < 3:
        ax.set_title("too few scored samples for a map")
        return fig
    x = class_sim[scored] - class_sim[scored].mean(0)
    _, _, axes = np.linalg.svd(x, full_matrices=False)
    xy = x @ axes[:2].T
    twins = np.bincount(group)[group[scored]] > 1
    classes = np.unique(labels[scored]) if labels is not None else np.zeros(0, int)
    palette = [
        "#1f77b4",
        "#2ca02c",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#17becf",
        "#bcbd22",
        "#7f7f7f",
        "#aec7e8",
        "#98df8a",
        "#c5b0d5",
        "#c49c94",
        "#f7b6d2",
        "#9edae5",
        "#dbdb8d",
        "#393b79",
        "#637939",
        "#8c6d31",
        "#843c39",
        "#7b4173",
    ]  # no red or orange: those mark flags
    if 0 < len(classes) <= len(palette):
        for k, c in enumerate(classes):
            mine = labels[scored] == c
            ax.scatter(
                xy[mine, 0], xy[mine, 1], s=6, c=palette[k], alpha=0.6, label=f"given {label_name(c, class_names)}"
            )
    else:
        ax.scatter(xy[:, 0], xy[:, 1], s=6, c="#c8c8c8", label="sample")
    marks = [
        (decisions.flagged[scored], dict(s=30, c=FLAG_COLOUR, marker="x", label="wrong label")),
        (twins, dict(s=70, facecolors="none", edgecolors="black", linewidths=0.6, label="has a twin")),
        (decisions.outlier[scored], dict(s=30, c=OUTLIER_COLOUR, marker="^", label="outlier")),
        (decisions.odd[scored] != "", dict(s=30, c="black", marker="s", label="odd image")),
    ]
    for chosen, style in marks:
        if chosen.any():
            ax.scatter(xy[chosen, 0], xy[chosen, 1], **style)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("first component")
    ax.set_ylabel("second component")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, markerscale=1.5, frameon=False)
    fig.subplots_adjust(right=0.72)
    ax.set_title(
        "The samples in the members' feature space (first two principal components of\ntheir similarity to each class)",
        fontsize=10,
    )
    return fig


def label_name(label: int, class_names: list[str] | None, width: int = 12) -> str:
    """A label as its class name where the data name their classes, cut to `width` characters for a caption."""
    name = class_name(label, class_names)
    return shown(name if len(name) <= width else name[: width - 1] + "\u2026")


def tile_name(index: int, paths: list[str] | None) -> str:
    """A tile's first caption line: its file's name where there are files (cut to fit), else #index."""
    if not paths:
        return f"#{index}"
    name = paths[index].replace("\\", "/").rsplit("/", 1)[-1]
    return shown(name if len(name) <= 16 else name[:7] + "\u2026" + name[-8:])


def shown(text: str) -> str:
    """A name as matplotlib draws it, literally: `$` escaped (a pair of them starts mathtext, which raises on most
    names, `x$^$.png`, after the whole run); a character no font draws (a control character such as a carriage
    return, a line or paragraph separator, a byte of a file name that is not UTF-8, held as a surrogate escape)
    drawn as U+FFFD."""
    import unicodedata

    drawn = "".join("\ufffd" if unicodedata.category(c) in UNDRAWN else c for c in text)
    return drawn.replace("$", r"\$")


UNDRAWN = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")  # Unicode categories: controls, format, surrogates, unassigned


def montage_title(n_flagged: int, n_groups: int, page: int, n_pages: int) -> str:
    pages = f" (page {page} of {n_pages})" if n_pages > 1 else ""
    return (
        f"{n_flagged} flagged sample{'s' * (n_flagged != 1)} in {n_groups} group{'s' * (n_groups != 1)}, "
        f"beside their twins{pages}\ncaption: file (or #index), given \u2192 suggested label; red frame: flagged"
    )


# ---- scores, confusion, loss --------------------------------------------------------------------------------------


def scores_figure(wrong_prob: np.ndarray, group: np.ndarray, reason: np.ndarray, cut: float):
    """Histogram of each sample's probability of a wrong label (log counts), stacked by kind of sample: singletons
    and agreeing twin groups (the cut applies to both) and conflicting groups (decided by the twin rule, whose
    probability is that another label of the group wins), with the cut of the flags without a twin."""
    from matplotlib.figure import Figure

    scored = ~np.isnan(wrong_prob)
    if not scored.any():
        return message_figure("no sample was scored", "Probability that the label is wrong")
    size = np.bincount(group)[group]
    conflicted = np.isin(group, np.unique(group[reason == "twin"]))
    kinds = [
        ("singletons", size == 1),
        ("twin groups, labels agree", (size > 1) & ~conflicted),
        ("conflicting twin groups (twin rule)", conflicted),
    ]
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    ax.hist(
        [wrong_prob[scored & mask] for _, mask in kinds],
        bins=np.linspace(0, 1, 41),
        stacked=True,
        log=True,
        color=["#1f77b4", "#ff7f0e", "#9467bd"],
        label=[f"{name} ({int((scored & mask).sum())})" for name, mask in kinds],
    )
    if cut < 1:
        label = f"cut {cut:.2g}: the likeliest wrong labels without a twin, from here up, are flagged"
        ax.axvline(cut, color=FLAG_COLOUR, linestyle="--", linewidth=1.5, label=label)
    else:
        ax.plot([], [], " ", label="no sample without a twin is flagged")
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability that the given label is wrong")
    ax.set_ylabel("samples")
    _plain_log_ticks(ax.yaxis, minor=False)
    unscored = int((~scored).sum())
    ax.set_title(
        f"How likely each of {int(scored.sum())} labels is wrong" + (f"; {unscored} never scored" if unscored else ""),
        fontsize=11,
    )
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def confusion_matrix(given: np.ndarray, suggested: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = given label, column = suggested label."""
    return np.bincount(given * n_classes + suggested, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def confusion_figure(matrix: np.ndarray, class_names: list[str] | None = None):
    """The matrix on a log colour scale (the diagonal dwarfs the noise), off-diagonal counts in red."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    k = len(matrix)
    side = min(12.0, max(5.0, 0.5 * k + 2))
    fig = Figure(figsize=(side + 1, side))
    ax = fig.add_subplot()
    shown = np.ma.masked_equal(matrix, 0)
    image = ax.imshow(shown, cmap="Blues", norm=LogNorm(vmin=1, vmax=max(2, int(matrix.max()))))
    fig.colorbar(image, ax=ax, label="samples (log scale)", shrink=0.8)
    if k <= MAX_ANNOTATED_CLASSES:
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                off = i != j
                ax.text(
                    j,
                    i,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=8 if k > 10 else 9,
                    color=FLAG_COLOUR if off else ("white" if count > matrix.max() ** 0.6 else "black"),
                    fontweight="bold" if off else "normal",
                )
    ticks = np.arange(k) if k <= MAX_ANNOTATED_CLASSES else np.arange(0, k, max(1, k // 20))
    ax.set_xticks(ticks, [label_name(t, class_names) for t in ticks], rotation=90 if class_names else 0)
    ax.set_yticks(ticks, [label_name(t, class_names) for t in ticks])
    ax.set_xlabel("suggested label")
    ax.set_ylabel("given label")
    total, differ = int(matrix.sum()), int(matrix.sum() - np.trace(matrix))
    ax.set_title(
        f"Given label against the label the evidence favours, all {total} samples: they differ on "
        f"{differ}\n(the members' disagreement, not the flags: only strong evidence flags)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def confusion_csv(given: np.ndarray, suggested: np.ndarray, class_names: list[str] | None = None) -> str:
    """One row per sample, the long format DVC's confusion template counts itself."""
    rows = ([cell(class_name(g, class_names)), cell(class_name(s, class_names))] for g, s in zip(given, suggested))
    return csv_text([["given", "suggested"], *rows])


def class_csv(
    given: np.ndarray, flagged: np.ndarray, wrong_by_class: np.ndarray, class_names: list[str] | None = None
) -> str:
    """One row per given class: class, samples, flagged, estimated_wrong (empty where not estimated)."""
    n_classes = max(int(given.max()) + 1 if len(given) else 0, len(class_names or []))
    rows = [
        [
            cell(class_name(c, class_names)),
            int((given == c).sum()),
            int((flagged & (given == c)).sum()),
            round(float(wrong_by_class[c]), 1) if c < len(wrong_by_class) else "",
        ]
        for c in range(n_classes)
    ]
    return csv_text([["class", "samples", "flagged", "estimated_wrong"], *rows])


def loss_table(loss_curves: np.ndarray) -> np.ndarray:
    """(points, 4): progress (0 = first step, 1 = last), mean, low and high (min and max over the members)."""
    points = loss_curves.shape[1]
    progress = np.linspace(0, 1, points) if points > 1 else np.zeros(points)
    if len(loss_curves) == 0:
        return np.zeros((0, 4))
    return np.column_stack([progress, loss_curves.mean(0), loss_curves.min(0), loss_curves.max(0)])


def loss_csv(table: np.ndarray) -> str:
    lines = ["progress,mean,low,high"] + [f"{p:.4g},{m:.6g},{lo:.6g},{hi:.6g}" for p, m, lo, hi in table]
    return "\n".join(lines) + "\n"


def loss_figure(loss_curves: np.ndarray, member_seconds: np.ndarray | None = None):
    """Every member's curve faintly, the mean boldly, the min-max band between."""
    from matplotlib.figure import Figure

    if len(loss_curves) == 0:
        return message_figure("no ensemble member was trained", "Training loss")
    table = loss_table(loss_curves)
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    if len(loss_curves) <= 50:
        for curve in loss_curves:
            ax.plot(table[:, 0], curve, color="#1f77b4", alpha=0.25, linewidth=0.8)
    ax.fill_between(table[:, 0], table[:, 2], table[:, 3], color="#1f77b4", alpha=0.15, label="min to max")
    ax.plot(table[:, 0], table[:, 1], color="#1f77b4", linewidth=2.2, label="mean")
    if (loss_curves > 0).all():
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)
    ax.set_xlabel("share of each member's training (first step to last)")
    ax.set_ylabel("training loss (cross-entropy)")
    timing = ""
    if member_seconds is not None and len(member_seconds):
        timing = f", {np.median(member_seconds):.3g} s each (median)"
    ax.set_title(
        f"Training loss of {len(loss_curves)} ensemble member{'s' * (len(loss_curves) != 1)}{timing}", fontsize=11
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---- file edges ---------------------------------------------------------------------------------------------------


def png_bytes(fig, dpi: int) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def page_name(page: int) -> str:
    """flagged.png for the first page (the name DVC declares), flagged-2.png, flagged-3.png, ... after."""
    return "flagged.png" if page == 1 else f"flagged-{page}.png"


def draw(
    data: Dataset, groups: GroupResult, oob: TrainResult, decisions: Decisions, params: ReportParams
) -> dict[str, bytes | str]:
    """Every figure (PNG bytes) and table (CSV text) of the report, by file name."""
    images, names, group, given = data.images, data.class_names, groups.group, data.labels
    flagged, suggested = decisions.flagged, decisions.suggested
    files: dict[str, bytes | str] = {}
    runs = montage_runs(flagged, group, params.max_twins)
    pages = layout_pages(runs, flagged, params.columns, params.tiles_per_page)
    for number, tiles in enumerate(pages, start=1):
        title = montage_title(int(flagged.sum()), len(runs), number, len(pages))
        files[page_name(number)] = png_bytes(
            montage_figure(images, given, suggested, tiles, params.columns, title, names, data.paths), params.dpi
        )
    if not pages:
        files[page_name(1)] = png_bytes(message_figure("nothing flagged", "Flagged samples"), params.dpi)
    files["scores.png"] = png_bytes(
        scores_figure(decisions.wrong_prob, group, decisions.reason, decisions.cut),
        params.dpi,
    )
    labelled = given != UNLABELLED  # the confusion is of given labels: unlabelled samples have none
    n_classes = max(int(max(given.max(), suggested.max())) + 1, len(names or []))
    files["confusion.png"] = png_bytes(
        confusion_figure(confusion_matrix(given[labelled], suggested[labelled], n_classes), names), params.dpi
    )
    files["confusion.csv"] = confusion_csv(given[labelled], suggested[labelled], names)
    files["classes.csv"] = class_csv(given, flagged, decisions.wrong_by_class, names)
    strangers = strangers_figure(images, given, decisions, params.columns, params.tiles_per_page, names)
    files["outliers.png"] = png_bytes(
        strangers if strangers is not None else message_figure("no outliers and no odd images", "Outliers"), params.dpi
    )
    files["map.png"] = png_bytes(map_figure(oob.class_sim, group, decisions, given, names), params.dpi)
    files["loss.csv"] = loss_csv(loss_table(oob.loss_curves))
    files["loss.png"] = png_bytes(loss_figure(oob.loss_curves), params.dpi)
    files["review.html"] = review_page(
        data, group, decisions, max_cards=params.review_cards, max_twins=params.max_twins
    )
    return files
