"""The benchmarks: one entry point lists and runs them, each run leaves its tables as data with command, commit and
machine, BENCHMARKS.md is those files rendered; the harness's cases, peers and scores do what they say. Tiny cases
and a few training steps: seconds, no timing assertions."""

import json

import numpy as np
import pytest

from benchmarks.__main__ import main, run
from benchmarks.harness import catalogue
from benchmarks.harness.cases import planted, size_case, with_variants
from benchmarks.harness.peers import METHODS, subset_plan
from benchmarks.harness.record import RESULTS, Report, configuration, read
from benchmarks.harness.scores import (
    Tally,
    auroc,
    average_precision,
    best_cut,
    best_cut_errors,
    errors_within,
    parse_line,
    tally,
)
from pipeline.plant import PlantSpec, load_source, plant
from stages.group import GroupParams, group_images
from stages.train import TrainParams

# threading: two workers of one torch thread each, without starting worker processes
FAST = TrainParams(epochs=1, min_steps=5, n_jobs=2, backend="threading")


# scores, on arrays small enough to check by hand


def test_a_tally_counts_hits_misses_and_false_flags_and_pools_by_adding():
    one = tally(np.array([1, 2, 9]), np.array([1, 2, 3]))
    assert (one.hit, one.missed, one.false, one.errors) == (2, 1, 1, 2)
    assert tally(np.isin(np.arange(10), [1, 2, 9]), np.isin(np.arange(10), [1, 2, 3])) == one  # masks alike
    pooled = one + tally({4}, [4, 5])
    assert (pooled.precision, pooled.recall, pooled.f1) == (3 / 4, 3 / 5, 2 * 3 / (4 + 5))


def test_scores_with_nothing_flagged_or_nothing_wrong_are_undefined_not_zero():
    assert np.isnan(tally([], [1]).precision) and tally([], [1]).recall == 0
    assert np.isnan(tally([1], []).recall) and np.isnan(Tally().f1)


def test_a_printed_line_parses_to_its_indices():
    assert parse_line("3, 17, 40\n") == {3, 17, 40} and parse_line("\n") == set()


def test_average_precision_means_the_precision_at_each_wrong_label_found():
    ranking = np.array([4, 7, 1, 9])  # 4 and 1 are wrong: found at ranks 1 and 3
    assert average_precision(ranking, np.array([1, 4])) == (1 / 1 + 2 / 3) / 2
    assert average_precision(ranking, np.array([1, 4, 8])) == (1 / 1 + 2 / 3) / 3  # 8 never ranked
    assert np.isnan(average_precision(ranking, np.array([8])))


def test_the_best_cut_is_the_top_k_of_a_ranking_with_the_highest_f1():
    ranking = np.array([4, 7, 1, 9, 2, 3])  # most suspect first; 4 and 1 are wrong, then 3 far down
    assert best_cut(ranking, np.array([1, 4, 3])) == (3, 2)  # F1 0.67 (top 3), against 0.5 (top 1), 0.67 (all 6)
    assert best_cut(ranking, np.array([4])) == (1, 1)
    # the same ranking as scores (low = suspect): the best cut misses 3 and wrongly flags 7
    score = np.argsort(np.r_[4, 7, 1, 9, 2, 3, 0, 5, 6, 8])  # each index's place in that order
    assert best_cut_errors(score.astype(float), np.isin(np.arange(10), [1, 4, 3])) == 2


def test_auroc_is_the_chance_a_positive_outscores_a_negative():
    positive = np.array([True, True, False, False])
    assert auroc(np.array([0.9, 0.8, 0.1, 0.2]), positive) == 1.0
    assert auroc(np.array([0.1, 0.2, 0.9, 0.8]), positive) == 0.0
    assert auroc(np.array([0.5, 0.5, 0.5, 0.5]), positive) == 0.5  # ties count half
    assert auroc(np.array([0.9, np.nan, 0.1, 0.2]), positive) == 0.5  # unscored counts as least strange


def test_errors_on_the_twins_count_only_among_the_twins():
    wrong = np.array([True, False, False, True, False])
    flagged = np.array([False, True, False, True, True])
    twins = np.array([True, True, False, False, False])
    assert errors_within(flagged, wrong, twins) == 2  # 0 missed, 1 wrongly flagged; 4 is outside
    assert errors_within(flagged, wrong, ~twins) == 1


# cases and peers


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
    small, k = size_case(1100, seed=1)
    assert (len(small.labels), len(small.truth), k) == (1100, 100, 10)
    large, k = size_case(20_000, seed=1)
    assert (len(large.labels), len(large.truth), k, large.labels.max()) == (20_000, 1818, 20, 19)
    assert len(planted("exact", 1).labels) == 165


def test_variants_past_the_bundled_images_are_distinct_images_the_group_stage_keeps_apart():
    images, labels = load_source("mnist")
    images, labels = images[:60], labels[:60]
    more, more_labels = with_variants(images, labels, 150, seed=0)
    assert len(more) == 180 and (more_labels == np.tile(labels, 3)).all()
    assert not any((more[i] == more[i + 60]).all() or (more[i] == more[i + 120]).all() for i in range(60))
    assert len(np.unique(group_images(more, GroupParams()).group)) == 180


def test_confusable_flips_move_each_label_to_the_references_second_choice():
    from benchmarks.harness.cases import confusable

    labels = np.array([0, 1, 2, 2])
    ref = np.array([[0.7, 0.2, 0.1], [0.5, 0.1, 0.4], [0.1, 0.3, 0.6], [0.45, 0.1, 0.45]], np.float32)
    assert confusable(labels, ref).tolist() == [1, 0, 1, 0]  # the given label never counts, however likely


# tables of two benchmarks, from rows made by hand


def test_peers_rows_pool_precision_and_recall_and_leave_them_undefined_when_nothing_was_flagged_or_wrong():
    from benchmarks.peers import summarize

    def row(method, family, seed, seconds, *tally):
        hit, missed, false = tally
        return dict(method=method, family=family, n=165, seed=seed, seconds=seconds, peak_mb=300.0 + seed, hit=hit) | {
            "missed": missed,
            "false": false,
        }

    rows = [row("hw02", "exact", 0, 10.0, 2, 0, 0), row("hw02", "exact", 1, 11.0, 1, 1, 1)]
    rows.append(row("cleanlab", "no-evil", 0, 5.0, 0, 0, 0))
    hw02, cleanlab = summarize(rows)
    assert hw02 == {
        "method": "hw02",
        "family": "exact",
        "N": 165,
        "cases": 2,
        "mean errors": 1.0,
        "precision": 0.75,
        "recall": 0.75,
        "mean wall s": 10.5,
        "peak MB": 301.0,
    }
    assert np.isnan(cleanlab["precision"]) and np.isnan(cleanlab["recall"])


def test_the_speed_table_divides_each_methods_wall_time_by_the_advices_on_the_same_cases():
    from benchmarks.harness.runs import CommandRun
    from benchmarks.speed import summarize

    rows = [
        {"case": "c", "method": m, "run": CommandRun("", "", w, 2 * w, 100.0), "score": Tally(1, 0, f)}
        for m, w, f in (("hw02", 6.0, 0), ("subsets", 4.0, 3), ("cleanlab", 5.0, 1))
    ]
    hw02, subsets, cleanlab = summarize(rows)
    assert (hw02["wall s"], hw02["CPU s"], hw02["wall / advice's"], hw02["mean errors"]) == (6.0, 12.0, 1.5, 0)
    assert (subsets["wall / advice's"], cleanlab["wall / advice's"], cleanlab["mean errors"]) == (1.0, 1.25, 1)


# the entry point, results files and BENCHMARKS.md


def test_every_benchmark_says_what_it_measures_and_how_to_run_it():
    for name in catalogue.names():
        module = catalogue.load(name)
        assert callable(module.options) and callable(module.run), name
        summary, _, rest = module.__doc__.partition("\n\n")
        assert "\n" not in summary and len(summary) <= 100, f"{name}: the docstring's first line is its summary"
        assert len(catalogue.intro(module)) >= 60, f"{name}: a paragraph on what it measures"
        assert f"    python -m benchmarks {name}" in rest, f"{name}: an example command"


def test_python_m_benchmarks_lists_each_benchmark_on_one_line(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in catalogue.names():
        [line] = [line for line in out.splitlines() if line.startswith(name + " ")]
        assert catalogue.summary(catalogue.load(name)) in line


def test_an_unknown_benchmark_or_missing_data_is_one_line_and_exit_code_2(capsys, monkeypatch, tmp_path):
    assert main(["no_such_benchmark"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    monkeypatch.setattr("benchmarks.harness.data.SHARED", tmp_path)
    assert main(["few_labels", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fashion-t10k-images-idx3-ubyte.gz" in err and str(tmp_path) in err
    assert not list(tmp_path.glob("*.json"))  # nothing half-written


def test_a_benchmark_run_the_old_way_says_how_it_runs_now_instead_of_doing_nothing(tmp_path):
    from conftest import run_script

    done = run_script("-m", "benchmarks.same_answers", "save", str(tmp_path / "after"))
    assert done.returncode == 2 and "python -m benchmarks same_answers" in done.stderr
    assert not (tmp_path / "after").exists()


def test_a_run_writes_its_table_as_rows_of_named_values_with_command_commit_and_machine(tmp_path, capsys):
    path = run("group_noise", ["--caps", "24", "--seeds", "1", "--results", str(tmp_path)])
    assert path == tmp_path / "group_noise--caps-24.json"  # --caps names a configuration, --seeds does not
    results = json.loads(path.read_text())
    assert results["command"] == f"python -m benchmarks group_noise --caps 24 --seeds 1 --results {tmp_path}"
    assert results["commit"] and results["date"] and "cores" in results["machine"]
    [table] = results["tables"]
    assert len(table["rows"]) == 7  # one row per perturbation and cap
    assert table["rows"][0] == {  # our own copies' perturbations: every twin found, nothing merged
        "noise sigma up to": 8.0,
        "brightness up to": 0.12,
        "max_noise_sigma": 24.0,
        "grouped": 15,
        "twins": 15,
        "merged": 0,
    }
    assert "| 8 | 12% | 24 | 15 | 15 | 0 |" in capsys.readouterr().out  # printed as it came
    assert "|8|12%|15|15|0|" in catalogue.render(tmp_path)  # across max_noise_sigma: a row per perturbation


def test_options_that_count_cases_or_name_paths_leave_the_configuration_as_it_is(tmp_path):
    from benchmarks.__main__ import parser_for

    def named(name, *argv):
        parser = parser_for(name)
        return configuration(parser, parser.parse_args(list(argv)))

    assert named("accuracy", "--seeds", "2") == ""
    assert (
        named("accuracy", "--families", "exact", "orphans", "--first-seed", "120")
        == "families-exact-orphans--first-seed-120"
    )
    assert named("natural_noise", "--as-is", "--montage", str(tmp_path / "m")) == "as-is"
    assert named("natural_noise", "--train", "epochs=10") == "train-epochs-10"
    assert named("real_scale", "hw02", "--perturbed") == "hw02--perturbed"
    assert named("same_answers", "compare", str(tmp_path), str(tmp_path)) == "compare"


def test_a_run_without_a_table_writes_no_results_file(tmp_path):
    report = Report("same_answers", ["save", "x"], folder=tmp_path)
    assert report.write() is None and not list(tmp_path.iterdir())


def test_a_table_takes_rows_of_its_own_columns_only_and_prints_undefined_values_as_dashes(tmp_path, capsys):
    report = Report("accuracy", [], folder=tmp_path)
    table = report.table({"family": "", "precision": ".3f", "same": ""})
    table.add({"family": "exact", "precision": np.float64("nan"), "same": np.bool_(True)})
    with pytest.raises(ValueError, match="a row of"):
        table.add({"family": "exact"})
    assert "| exact | - | yes |" in capsys.readouterr().out
    [written] = read(report.write().parent)
    assert written["tables"][0]["rows"] == [{"family": "exact", "precision": None, "same": True}]


def test_a_long_table_shows_across_a_column_with_a_dash_where_a_cell_is_missing(tmp_path):
    from benchmarks.harness.record import Table

    columns = {"family": "", "method": "", "errors": ".1f", "seconds": ".0f"}
    rows = [("exact", "hw02", 0.25, 12), ("exact", "cleanlab", 3.0, 9), ("orphans", "hw02", 1.5, 13)]
    table = Table(columns, rows=[dict(zip(columns, r)) for r in rows], wide=(["family"], "method", ["errors"]))
    assert table.markdown(compact=True) == [
        "|family|hw02|cleanlab|",
        "|--|--:|--:|",
        "|exact|0.2|3.0|",
        "|orphans|1.5|-|",
    ]
    table.wide = (["family"], "method", ["errors", "seconds"])
    assert table.markdown()[0] == "| family | hw02: errors | hw02: seconds | cleanlab: errors | cleanlab: seconds |"


def test_benchmarks_md_is_the_rendered_results_under_20_kb():
    text = (catalogue.DOCUMENT).read_text(encoding="utf-8")
    assert text == catalogue.render(), "BENCHMARKS.md is made by `python -m benchmarks render`, not edited by hand"
    assert len(text.encode()) < 20_000


def test_each_results_file_names_a_benchmark_that_exists_and_is_the_file_its_run_would_write():
    for path in RESULTS.glob("*.json"):
        results = json.loads(path.read_text(encoding="utf-8"))
        assert results["benchmark"] in catalogue.names(), f"{path.name}: no benchmark {results['benchmark']}"
        assert path.stem == results["benchmark"] + (f"--{results['configuration']}" if results["configuration"] else "")
        assert results["command"].startswith(f"python -m benchmarks {results['benchmark']}")
        for table in results["tables"]:
            assert all(list(row) == list(table["columns"]) for row in table["rows"]), path.name


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


def test_the_evidence_tables_show_methods_across_with_dashes_and_targets_set_the_bar_from_the_better_peer(tmp_path):
    from benchmarks.external_evidence import tables, targets

    rows = [
        {"source": "m", "variant": "flips-0.01", "method": "cleanlab", "evidence": "probs", "f1": 0.60},
        {"source": "m", "variant": "flips-0.01", "method": "cleanlab-both", "evidence": "probs", "f1": 0.70},
        {"source": "m", "variant": "flips-0.01", "method": "ours", "evidence": "probs", "f1": 0.74},
        {"source": "m", "variant": "twins", "method": "datalab", "evidence": "features", "twin_errors": 12},
        {"source": "m", "variant": "twins", "method": "ours", "evidence": "features", "twin_errors": 6},
    ]
    (probs, twins) = targets(rows)
    assert (probs["peer"], round(probs["bar"], 3), probs["met"]) == ("cleanlab-both", 0.75, False)
    assert (twins["peer"], twins["bar"], twins["met"]) == ("datalab", 6.0, True)
    assert targets(rows[:2])[0]["met"] is None  # no row of ours: no verdict
    report = Report("external_evidence", [], folder=tmp_path)
    tables(report, rows, [])
    flips, twin_table, goals = (t.markdown(compact=True) for t in report.tables)
    assert flips[2:4] == [
        "|source|variant|wrong|cleanlab: F1|cleanlab: AP|cleanlab-both: F1|cleanlab-both: AP|ours: F1|ours: AP|",
        "|--|--|--:|--:|--:|--:|--:|--:|--:|",
    ]
    assert flips[4] == "|m|flips-0.01|-|0.600|-|0.700|-|0.740|-|"  # a value a row lacks is a dash
    assert twin_table[2:] == ["|source|evidence|datalab|ours|", "|--|--|--:|--:|", "|m|features|12|6|"]
    assert goals[4:] == ["|m|flips-0.01|0.750|0.740|no|-|-|-|", "|m|twins|-|-|-|6.000|6.000|yes|"]
    assert report.notes == ["issue 45's targets met: 1 of 2"]
    [written] = read(report.write().parent)  # every column stays in the results file
    assert written["tables"][0]["rows"][0]["precision"] is None and "best-cut F1" in written["tables"][0]["columns"]


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


def test_the_reliability_table_bins_wrong_prob_and_its_ece_is_the_bins_weighted_gaps(tmp_path):
    from benchmarks.natural_noise import reliability

    report = Report("natural_noise", [], folder=tmp_path)
    p = np.r_[np.full(100, 0.3), np.full(100, 0.005)]
    moved = np.r_[np.arange(100) < 30, np.zeros(100, bool)]  # 30% of the 0.3s moved, none of the 0.005s
    reliability([(p, moved), (np.array([np.nan]), np.array([True]))], report)  # nan: not scored, left out
    [table] = report.tables
    assert [(r["samples"], r["share moved"]) for r in table.rows] == [(100, 0.0), (100, 0.3)]
    assert report.notes[-1] == "expected calibration error of ours' wrong_prob: 0.0025 over 200 samples"
