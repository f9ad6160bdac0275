"""Report: every figure and table is written, each PNG is real and readable, one montage tile per flagged sample."""

import csv
import struct
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from pipeline import steps
from pipeline.artifacts import save
from pipeline.paths import PATHS
from pipeline.plant import PlantSpec, load_source, plant
from stages.aggregate import AggregateParams, decide
from stages.decode import Dataset
from stages.errors import InputError
from stages.group import GroupResult
from stages.labels import open_questions
from stages.report import ReportParams, layout_pages, loss_table, montage_runs, scores_figure
from stages.train import TrainResult

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def finished_run(folder, images, labels, group, n_flag_twins):
    """Artifacts as the earlier stages leave them, with the first n_flag_twins twin groups decided."""
    n, k = len(labels), int(labels.max()) + 1
    probs = np.full((n, k), 0.02)
    probs[np.arange(n), labels] = 0.9
    # twin groups: every member looks like its first member's label, so later members with other labels lose
    for g in np.unique(group)[:n_flag_twins]:
        members = np.flatnonzero(group == g)
        probs[members] = probs[members[0]]
    votes = np.zeros((n, k), np.int64)
    votes[np.arange(n), probs.argmax(1)] = 3
    paths = PATHS.under(folder)
    data = Dataset(images, labels)
    save(paths.decoded, data)
    save(paths.groups, replace(grouped(group), dataset=data.fingerprint))  # made from these data, as steps mark it
    oob = TrainResult(
        prob=probs,
        n_scored=np.full(n, 3),
        votes=votes,
        strangeness=np.ones(n),
        class_sim=probs,
        nn_prob=np.zeros((n, k)),
        nn_scored=np.zeros(n, bool),
        open_question=open_questions(group, labels),
        through_conflicts=False,
        loss_curves=np.linspace(2, 0.1, 20)[None].repeat(4, 0),
        member_steps=np.full(4, 300),
        member_seconds=np.ones(4),
        dataset=data.fingerprint,
    )
    save(paths.oob, oob)
    decisions = replace(decide(labels, group, oob, AggregateParams()), dataset=data.fingerprint)
    save(paths.decisions, decisions)
    return decisions


def grouped(group):
    """A group artifact with these group ids (the rest as the group stage leaves singletons)."""
    n = len(group)
    return GroupResult(
        group,
        np.zeros(n, np.float32),
        0.2,
        np.unique(group, return_index=True)[1],
        np.arange(n),
        np.zeros(n, bool),
        np.full(n, ""),
    )


FAST = ReportParams(dpi=50)  # half the pixels: the same drawing code, rendered sooner


def report(folder, params=FAST):
    return steps.report(params, PATHS.under(folder))


@pytest.fixture(scope="module")
def case():
    c = plant(*load_source("mnist"), PlantSpec(n_clean=40, n_evil=6, seed=3))
    _, group = np.unique(c.source, return_inverse=True)
    return c, group


@pytest.fixture(scope="module")
def reported(tmp_path_factory, case):
    """One full report at the default resolution on the planted case: (folder, decisions, paths written)."""
    c, group = case
    folder = tmp_path_factory.mktemp("report")
    decisions = finished_run(folder, c.images, c.labels, group, n_flag_twins=len(group))
    return folder, decisions, report(folder, ReportParams())


def test_every_file_is_written_and_every_png_is_a_real_picture(reported):
    folder, _, written = reported
    assert {p.name for p in written} == {
        "flagged.png",
        "scores.png",
        "confusion.png",
        "confusion.csv",
        "loss.csv",
        "loss.png",
        "classes.csv",
        "outliers.png",
        "map.png",
        "review.html",
    }
    for name in ("flagged.png", "scores.png", "confusion.png", "loss.png", "outliers.png", "map.png"):
        width, height = png_size(folder / "results" / name)
        assert width > 100 and height > 100


def test_the_montage_has_one_tile_per_flagged_sample_beside_its_twins(case):
    c, group = case
    flagged = np.isin(np.arange(len(group)), c.truth)
    pages = layout_pages(montage_runs(flagged, group, max_twins=5), flagged, columns=8, tiles_per_page=48)
    tiles = [t for page in pages for t in page]
    assert sorted(t.index for t in tiles if t.flagged) == sorted(c.truth.tolist())
    assert sum(not t.flagged for t in tiles) == len(c.truth)  # each evil copy's original beside it


def test_a_group_keeps_to_one_row_and_shows_at_most_max_twins_others():
    group = np.array([0] * 9 + [1, 1, 2])  # a blank screen copied nine times, a pair, a singleton
    flagged = np.zeros(12, bool)
    flagged[[4, 10, 11]] = True
    runs = montage_runs(flagged, group, max_twins=3)
    assert runs == [([4, 0, 1, 2], 5), ([10, 9], 0), ([11], 0)]  # flagged first; five copies counted, not shown
    tiles = layout_pages(runs, flagged, columns=5, tiles_per_page=10)[0]
    assert [(t.index, t.row, t.col) for t in tiles] == [
        (4, 0, 0),
        (0, 0, 1),
        (1, 0, 2),
        (2, 0, 3),
        (10, 1, 0),
        (9, 1, 1),  # the pair would not fit beside the big group: it starts the next row
        (11, 1, 2),
    ]
    assert [t.hidden for t in tiles] == [0, 0, 0, 5, 0, 0, 0]


def test_many_flags_are_paged(tmp_path, case):
    c, group = case
    finished_run(tmp_path, c.images, c.labels, group, n_flag_twins=len(group))
    params = ReportParams(tiles_per_page=4, columns=2)
    flagged = np.isin(np.arange(len(group)), c.truth)
    pages = layout_pages(montage_runs(flagged, group, params.max_twins), flagged, params.columns, params.tiles_per_page)
    assert len(pages) > 1 and all(len(page) <= 4 for page in pages)
    assert sorted(t.index for page in pages for t in page if t.flagged) == sorted(c.truth.tolist())
    written = {p.name for p in report(tmp_path, ReportParams(tiles_per_page=4, columns=2, dpi=50))}
    assert {f"flagged-{n}.png" for n in range(2, len(pages) + 1)} | {"flagged.png"} <= written
    report(tmp_path)  # one page is enough now: the old pages must not pass for current ones
    assert sorted(p.name for p in (tmp_path / "results").glob("flagged*.png")) == ["flagged.png"]


def test_nothing_flagged_still_gives_a_first_page(tmp_path):
    images, labels = load_source("mnist")
    decisions = finished_run(tmp_path, images[:30], labels[:30], np.arange(30), n_flag_twins=0)
    assert not decisions.flagged.any()
    assert layout_pages(montage_runs(decisions.flagged, np.arange(30), 5), decisions.flagged, 8, 48) == []
    report(tmp_path)
    width, height = png_size(tmp_path / "results" / "flagged.png")
    assert width > 100 and height > 100


def test_colour_images_are_drawn(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    images[6:] = images[:6]  # six twin pairs ...
    labels = np.array([0, 1, 2, 0, 1, 2, 1, 2, 0, 1, 2, 0])  # ... each with a conflicting label
    report_decisions = finished_run(tmp_path, images, labels, np.arange(12) % 6, n_flag_twins=6)
    assert report_decisions.flagged.sum() == 6
    report(tmp_path)
    assert png_size(tmp_path / "results" / "flagged.png")[0] > 100


def test_confusion_csv_counts_given_against_suggested(reported, case):
    c, _ = case
    folder, decisions, _ = reported
    rows = list(csv.DictReader(open(folder / "results" / "confusion.csv")))
    counts = Counter((int(r["given"]), int(r["suggested"])) for r in rows)
    assert counts == Counter(zip(c.labels.tolist(), decisions.suggested.tolist()))
    assert sum(n for (given, suggested), n in counts.items() if given != suggested) >= len(c.truth)


def test_classes_csv_counts_samples_and_flags_per_given_class(reported, case):
    c, _ = case
    folder, decisions, _ = reported
    rows = list(csv.DictReader(open(folder / "results" / "classes.csv")))
    assert [int(r["class"]) for r in rows] == list(range(10))
    assert [int(r["samples"]) for r in rows] == np.bincount(c.labels, minlength=10).tolist()
    assert [int(r["flagged"]) for r in rows] == np.bincount(c.labels[decisions.flagged], minlength=10).tolist()
    assert [float(r["estimated_wrong"]) for r in rows] == [round(x, 1) for x in decisions.wrong_by_class]


def test_loss_csv_holds_the_ensemble_mean_and_spread_per_point(reported):
    folder, _, _ = reported
    rows = list(csv.DictReader(open(folder / "results" / "loss.csv")))
    assert list(rows[0]) == ["progress", "mean", "low", "high"] and len(rows) == 20
    assert float(rows[0]["progress"]) == 0 and float(rows[-1]["progress"]) == 1
    curves = np.array([[3.0, 1.0], [1.0, 0.5]])
    assert loss_table(curves).tolist() == [[0, 2.0, 1.0, 3.0], [1, 0.75, 0.5, 1.0]]


def test_scores_without_a_cut_or_with_unscored_samples_still_draw():
    wrong = np.array([np.nan, 0.0, 1e-9, 0.5, 1.0])
    fig = scores_figure(wrong, np.array([0, 1, 2, 3, 3]), np.array([""] * 5), cut=1.0)
    assert "1 never scored" in fig.axes[0].get_title()
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "no sample without a twin is flagged" in labels
    cut = scores_figure(wrong, np.array([0, 1, 2, 3, 3]), np.array([""] * 5), cut=0.4)
    assert any(label.startswith("cut 0.4") for label in cut.axes[0].get_legend_handles_labels()[1])


def test_artifacts_from_different_runs_are_refused(tmp_path, case):
    c, group = case
    finished_run(tmp_path, c.images, c.labels, group, n_flag_twins=0)
    save(PATHS.under(tmp_path).groups, grouped(group[:-1]))
    with pytest.raises(InputError, match="twins group"):
        report(tmp_path)
