"""Report: every figure and table is written, each PNG is real and readable, one montage tile per flagged sample."""
import csv
import struct

import numpy as np
import pytest

from pipeline.artifacts import save_arrays
from pipeline.plant import PlantSpec, load_source, plant
from stages.aggregate import AggregateParams, decide, write_results
from stages.report import ReportParams, layout_pages, montage_runs, run

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
    save_arrays(folder / "decoded.npz", images=images, labels=labels)
    save_arrays(folder / "groups.npz", group=group)
    save_arrays(folder / "oob.npz", prob_sum=probs * 3, n_scored=np.full(n, 3), votes=votes,
                loss_curves=np.linspace(2, 0.1, 20)[None].repeat(4, 0).astype(np.float32),
                member_seconds=np.ones(4))
    decisions = decide(labels, group, probs * 3, np.full(n, 3), votes, AggregateParams())
    write_results(decisions, labels, group, {}, folder / "results", folder / "metrics.json")
    return decisions


def report(folder, params=ReportParams()):
    return run(params, str(folder / "decoded.npz"), str(folder / "groups.npz"), str(folder / "oob.npz"),
               str(folder / "results" / "samples.csv"), str(folder / "metrics.json"), str(folder / "results"))


@pytest.fixture(scope="module")
def case():
    c = plant(*load_source("mnist"), PlantSpec(n_clean=40, n_evil=6, seed=3))
    _, group = np.unique(c.source, return_inverse=True)
    return c, group


def test_every_file_is_written_and_every_png_is_a_real_picture(tmp_path, case):
    c, group = case
    finished_run(tmp_path, c.images, c.labels, group, n_flag_twins=len(group))
    written = {p.name for p in report(tmp_path)}
    assert {"flagged.png", "scores.png", "confusion.png", "confusion.csv", "loss.csv", "loss.png"} <= written
    for name in ("flagged.png", "scores.png", "confusion.png", "loss.png"):
        width, height = png_size(tmp_path / "results" / name)
        assert width > 100 and height > 100


def test_the_montage_has_one_tile_per_flagged_sample_beside_its_twins(case):
    c, group = case
    flagged = np.isin(np.arange(len(group)), c.truth)
    pages = layout_pages(montage_runs(flagged, group, max_twins=5), flagged, columns=8, tiles_per_page=48)
    tiles = [t for page in pages for t in page]
    assert sorted(t.index for t in tiles if t.flagged) == sorted(c.truth.tolist())
    assert sum(not t.flagged for t in tiles) == len(c.truth)  # each evil copy's original beside it


def test_many_flags_are_paged(tmp_path, case):
    c, group = case
    finished_run(tmp_path, c.images, c.labels, group, n_flag_twins=len(group))
    written = {p.name for p in report(tmp_path, ReportParams(tiles_per_page=4, columns=2))}
    assert {"flagged.png", "flagged-2.png", "flagged-3.png"} <= written


def test_nothing_flagged_still_gives_a_first_page(tmp_path):
    images, labels = load_source("mnist")
    finished_run(tmp_path, images[:30], labels[:30], np.arange(30), n_flag_twins=0)
    report(tmp_path)
    assert png_size(tmp_path / "results" / "flagged.png")[0] > 100


def test_colour_images_are_drawn(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    images[6:] = images[:6]  # six twin pairs ...
    labels = np.array([0, 1, 2, 0, 1, 2, 1, 2, 0, 1, 2, 0])  # ... each with a conflicting label
    report_decisions = finished_run(tmp_path, images, labels, np.arange(12) % 6, n_flag_twins=6)
    assert report_decisions.flagged.sum() == 6
    report(tmp_path)
    assert png_size(tmp_path / "results" / "flagged.png")[0] > 100


def test_confusion_csv_counts_given_against_suggested(tmp_path, case):
    c, group = case
    decisions = finished_run(tmp_path, c.images, c.labels, group, n_flag_twins=len(group))
    report(tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "results" / "confusion.csv")))
    assert len(rows) == len(c.labels)
    pairs = {(int(r["given"]), int(r["suggested"])) for r in rows}
    assert pairs == set(zip(c.labels.tolist(), decisions.suggested.tolist()))
