"""The side-by-side benchmark: its peer methods return index sets, its plans hold out what they should, its table
prints. Tiny cases and a few training steps: seconds, no timing assertions."""

import numpy as np
import pytest

from benchmarks.peer_methods import METHODS, subset_plan
from benchmarks.peers import format_table, plant_case, score, summarize, with_variants
from pipeline.plant import PlantSpec, load_source, plant
from stages.group import GroupParams, group_images
from stages.train import TrainParams

# threading: two workers of one torch thread each, without starting worker processes
FAST = TrainParams(epochs=1, min_steps=5, n_jobs=2, backend="threading")


@pytest.fixture(scope="module")
def case():
    return plant(*load_source("mnist"), PlantSpec(n_clean=50, n_evil=5, seed=3))


@pytest.mark.parametrize("method", list(METHODS))
def test_peer_methods_return_sorted_unique_sample_indices(case, method):
    if method == "cleanlab":
        pytest.importorskip("cleanlab", reason="cleanlab is the bench extra's (pip install -e '.[bench]')")
    flagged = METHODS[method](case.images, case.labels, 10, FAST)
    assert isinstance(flagged, np.ndarray) and flagged.dtype.kind == "i"
    assert np.array_equal(flagged, np.unique(flagged))
    assert flagged.size == 0 or 0 <= flagged.min() <= flagged.max() < len(case.labels)


def test_subset_members_train_on_two_thirds_and_every_sample_is_held_out_three_times():
    plan = subset_plan(30, seed=0)
    assert len(plan) == 9
    held_count = np.zeros(30, int)
    for train, held in plan:
        assert len(train) == 20 and not set(train) & set(held)
        held_count[held] += 1
    assert (held_count == 3).all()


def test_size_family_has_one_evil_twin_in_eleven_and_twenty_classes_past_mnist():
    small, k = plant_case("size", 1100, seed=1)
    assert (len(small.labels), len(small.truth), k) == (1100, 100, 10)
    large, k = plant_case("size", 20_000, seed=1)
    assert (len(large.labels), len(large.truth), k, large.labels.max()) == (20_000, 1818, 20, 19)
    exact, _ = plant_case("exact", None, seed=1)
    assert len(exact.labels) == 165


def test_variants_past_the_bundled_images_are_distinct_images_the_group_stage_keeps_apart():
    images, labels = load_source("mnist")
    images, labels = images[:60], labels[:60]
    more, more_labels = with_variants(images, labels, 150, seed=0)
    assert len(more) == 180 and (more_labels == np.tile(labels, 3)).all()
    assert not any((more[i] == more[i + 60]).all() or (more[i] == more[i + 120]).all() for i in range(60))
    # past a one-pixel shift the group stage would take a variant for a geometric copy (docs/geometric-twins.md)
    shift_only = GroupParams(max_shift=1, max_rotation=0.0, max_scale=0.0)
    assert len(np.unique(group_images(more, shift_only).group)) == 180


def test_table_rows_pool_precision_and_recall_and_show_dashes_when_undefined():
    rows = [
        {
            "method": "hw02",
            "family": "exact",
            "n": 165,
            "seed": s,
            "seconds": 10.0 + s,
            "peak_mb": 300.0 + s,
            **score(line, np.array([1, 2])),
        }
        for s, line in enumerate(["1, 2", "1, 7"])
    ]
    rows.append(
        {
            "method": "cleanlab",
            "family": "no-evil",
            "n": 165,
            "seed": 0,
            "seconds": 5.0,
            "peak_mb": 250.0,
            **score("", np.array([], int)),
        }
    )
    table = format_table(summarize(rows)).splitlines()
    assert table[0] == ("| method | family | N | cases | mean errors | precision | recall | mean wall s | peak MB |")
    assert table[2] == "| hw02 | exact | 165 | 2 | 1.00 | 0.750 | 0.750 | 10.5 | 301 |"
    assert table[3] == "| cleanlab | no-evil | 165 | 1 | 0.00 | - | - | 5.0 | 250 |"


def test_group_noise_prints_one_row_per_perturbation_and_cap(monkeypatch, capsys):
    from benchmarks import group_noise

    monkeypatch.setattr("sys.argv", ["group_noise", "--caps", "24", "--seeds", "1"])
    group_noise.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "of 15 |" in line]
    assert len(rows) == len(group_noise.PERTURBATIONS)
    assert rows[0].startswith("| 8 | 12% | 24 | 15 of 15 | 0 |")  # our own copies: every twin found, nothing merged


def test_auroc_is_the_chance_a_positive_outscores_a_negative():
    from benchmarks.outliers import auroc

    positive = np.array([True, True, False, False])
    assert auroc(np.array([0.9, 0.8, 0.1, 0.2]), positive) == 1.0
    assert auroc(np.array([0.1, 0.2, 0.9, 0.8]), positive) == 0.0
    assert auroc(np.array([0.5, 0.5, 0.5, 0.5]), positive) == 0.5  # ties count half
    assert auroc(np.array([0.9, np.nan, 0.1, 0.2]), positive) == 0.5  # unscored counts as least strange


def test_the_speed_table_divides_each_methods_wall_time_by_the_advices_on_the_same_cases():
    from benchmarks.speed import table

    rows = [
        {"case": "c", "method": m, "wall": w, "cpu": 2 * w, "peak_mb": 100.0, "hit": 1, "missed": 0, "false": f}
        for m, w, f in (("hw02", 6.0, 0), ("subsets", 4.0, 3), ("cleanlab", 5.0, 1))
    ]
    lines = table(rows).splitlines()
    assert lines[2] == "| c | hw02 | 1 | 0.00 | 6.0 | 12.0 | 1.50 | 100 |"
    assert lines[3].split(" | ")[6] == "1.00" and lines[4].split(" | ")[6] == "1.25"


def test_the_best_cut_is_the_top_k_of_a_ranking_with_the_highest_f1():
    from benchmarks.graded_ceiling import best_cut_errors
    from benchmarks.natural_noise import best_cut

    ranking = np.array([4, 7, 1, 9, 2, 3])  # most suspect first; 4 and 1 are wrong, then 3 far down
    assert best_cut(ranking, np.array([1, 4, 3])) == (3, 2)  # F1 0.67 (top 3), against 0.5 (top 1), 0.67 (all 6)
    assert best_cut(ranking, np.array([4])) == (1, 1)
    # the same ranking as scores (low = suspect): the best cut misses 3 and wrongly flags 7
    score = np.argsort(np.r_[4, 7, 1, 9, 2, 3, 0, 5, 6, 8])  # each index's place in that order
    assert best_cut_errors(score.astype(float), np.isin(np.arange(10), [1, 4, 3])) == 2
