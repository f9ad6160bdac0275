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
    assert len(np.unique(group_images(more, GroupParams()).group)) == 180


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


def test_confusable_flips_move_the_planted_share_to_the_references_second_choice():
    from benchmarks.external_evidence import plant_flips

    labels = np.arange(500) % 5
    ref = np.full((500, 5), 0.01)
    ref[np.arange(500), labels] = 0.9
    ref[np.arange(500), (labels + 2) % 5] = 0.09  # the likeliest class after the given one
    given, truth = plant_flips(labels, ref, 0.03, seed=1)
    assert truth.sum() == 15 and (given != labels).sum() == 15
    assert (given[truth] == (labels[truth] + 2) % 5).all() and (given[~truth] == labels[~truth]).all()


def test_evil_twins_are_shuffled_exact_copies_under_another_label_that_point_at_their_originals():
    from benchmarks.external_evidence import plant_twins

    labels = np.arange(300) % 3
    ref = np.eye(3)[labels] * 0.8 + np.eye(3)[(labels + 1) % 3] * 0.15 + 0.05 / 3
    v = plant_twins(labels, ref, n=100, twins=10, seed=2)
    assert len(v["labels"]) == 110 and v["truth"].sum() == 10 and not v["truth"][-10:].all()  # shuffled in
    copies, originals = np.flatnonzero(v["truth"]), v["original"][v["truth"]]
    assert (v["original"][~v["truth"]] == -1).all() and not v["truth"][originals].any()
    assert (v["source_index"][copies] == v["source_index"][originals]).all()  # the same picture
    assert (v["labels"][copies] == (v["labels"][originals] + 1) % 3).all()  # its confusable label
    assert len(np.unique(v["source_index"])) == 100


def test_scores_pool_flags_against_the_truth_and_twin_errors_count_missed_twins_and_flagged_originals():
    from benchmarks.external_evidence import score, twin_errors

    truth = np.isin(np.arange(10), [1, 4])
    flagged = np.isin(np.arange(10), [4, 7, 8])
    s = score(flagged, np.array([4, 7, 1, 8, 0, 2, 3, 5, 6, 9]), truth)
    assert (s["right"], s["precision"], s["recall"], s["f1"]) == (1, 1 / 3, 0.5, 0.4)
    assert s["ap"] == (1 + 2 / 3) / 2 and s["best_f1"] == 2 * 2 / (3 + 2)
    assert np.isnan(score(np.zeros(10, bool), np.arange(10), truth)["precision"])
    original = np.array([-1, 7, -1, -1, 8, -1, -1, -1, -1, -1])  # 1 copies row 7, 4 copies row 8
    assert twin_errors(flagged, truth, original) == {"missed": 1, "originals": 2, "twin_errors": 3}


def test_the_evidence_tables_print_dashes_where_a_value_is_missing_and_targets_set_the_bar_from_the_better_peer():
    from benchmarks.external_evidence import PLANTED, SCORES, table, targets

    rows = [
        {"source": "m", "variant": "flips-0.01", "method": "cleanlab", "evidence": "probs", "f1": 0.60},
        {"source": "m", "variant": "flips-0.01", "method": "cleanlab-both", "evidence": "probs", "f1": 0.70},
        {"source": "m", "variant": "flips-0.01", "method": "ours", "evidence": "probs", "f1": 0.74},
        {"source": "m", "variant": "twins", "method": "datalab", "evidence": "features", "twin_errors": 12},
        {"source": "m", "variant": "twins", "method": "ours", "evidence": "features", "twin_errors": 6},
    ]
    lines = table(rows[:1], PLANTED + SCORES).splitlines()
    assert lines[0].startswith("| source | variant | wrong | method | flags |")
    assert lines[2] == "| m | flips-0.01 | - | cleanlab | - | - | - | 0.600 | - | - | - |"
    (probs, twins) = targets(rows)
    assert (probs["peer"], round(probs["bar"], 3), probs["met"]) == ("cleanlab-both", 0.75, "no")
    assert (twins["peer"], twins["bar"], twins["met"]) == ("datalab", 6.0, "yes")


def test_ours_is_skipped_only_while_find_issues_lacks_the_evidence_keyword(monkeypatch):
    from benchmarks import external_evidence

    def without(images, labels, *, params=None):
        raise AssertionError("not called with unknown keywords")

    monkeypatch.setattr("pipeline.api.find_issues", lambda images, labels, *, params=None: without(images, labels))
    assert external_evidence.ours_flags(np.zeros((2, 8, 8)), np.array([0, 1]), features=np.zeros((2, 3))) is None

    def broken(images, labels, *, features=None):
        raise TypeError("a real bug inside")

    monkeypatch.setattr("pipeline.api.find_issues", broken)
    with pytest.raises(TypeError, match="a real bug"):
        external_evidence.ours_flags(np.zeros((2, 8, 8)), np.array([0, 1]), features=np.zeros((2, 3)))


def test_each_peer_row_scores_the_planted_labels_and_the_as_is_rows_only_count_flags():
    pytest.importorskip("cleanlab", reason="cleanlab is the bench extra's (pip install -e '.[bench]')")
    from benchmarks.external_evidence import evaluate, plant_flips

    rng = np.random.default_rng(0)
    labels = np.arange(400) % 4
    features = (rng.normal(size=(400, 16)) + 4 * np.eye(4, 16)[labels]).astype(np.float32)
    prob = np.full((400, 4), 0.02) + 0.92 * np.eye(4)[labels]
    prob[np.arange(400), (labels + 1) % 4] += 0.02
    given, truth = plant_flips(labels, prob, 0.05, seed=0)
    v = {"labels": given, "truth": truth, "pred_probs": prob, "features": features, "original": np.full(400, -1)}
    methods = ["cleanlab", "cleanlab-both", "cleanlab-lr", "cleanlab-lr-both"]
    rows, skipped = evaluate("toy", "flips-0.05", v, methods)
    assert not skipped and [r["method"] for r in rows] == methods
    assert all(r["wrong"] == 20 and r["seconds"] >= 0 and 0 < r["f1"] <= 1 for r in rows)
    assert rows[0]["recall"] == rows[1]["recall"] == 1.0  # the probabilities say every flip outright
    assert rows[3]["seconds"] >= rows[2]["seconds"] * 0.5  # the shared regression's fit is charged to both rows
    as_is, _ = evaluate("toy", "as-is", v | {"truth": np.zeros(400, bool)}, ["cleanlab"])
    assert "precision" not in as_is[0] and as_is[0]["flags"] >= 0
