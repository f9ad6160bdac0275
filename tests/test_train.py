"""Train: every prediction is out of bag for the sample and all its copies; open questions never train."""

import os
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from pipeline.plant import PlantSpec, load_source, plant, random_label_copies
from stages.budget import Budget
from stages.cores import usable_cores
from stages.errors import InputError
from stages.labels import conflicting_groups, open_questions
from stages.member import class_weights, dominated, feature_evidence, predict, scoring_seconds, train_member
from stages.neighbours import nearest_neighbour_probs
from stages.train import TrainParams, plan_members, train_ensemble, trains_through_conflicts
from stages.train_models import build_model
from stages.workers import resolve_device, worker_layout

FAST = TrainParams(model="linear", n_models=3, min_steps=30, epochs=1, n_jobs=1)


@pytest.fixture(scope="module")
def case():
    """60 MNIST digits with 6 evil twins; groups taken from the planting truth (copies share a source)."""
    c = plant(*load_source("mnist"), PlantSpec(n_clean=60, n_evil=6, n_benign=3, seed=5))
    _, group = np.unique(c.source, return_inverse=True)
    return c, group


def test_conflicting_groups_are_those_whose_members_disagree():
    group = np.array([0, 0, 1, 1, 2])
    labels = np.array([3, 3, 4, 5, 6])
    assert conflicting_groups(group, labels).tolist() == [False, True, False]


def test_whole_groups_are_in_or_out_and_open_questions_never_train(case):
    c, group = case
    conflicted = conflicting_groups(group, c.labels)[group]
    for train, scored in plan_members(group, c.labels, TrainParams(n_models=9)):
        assert not set(group[train]) & set(group[scored])
        assert not conflicted[train].any()
        assert conflicted[scored].sum() == conflicted.sum()  # every member scores every open question


def test_unlabelled_samples_train_no_member_and_every_member_scores_them(case):
    c, group = case
    labels = c.labels.copy()
    labels[::4] = -1
    members = plan_members(group, labels, TrainParams(n_models=9))
    assert len(members) == 9
    for train, scored in members:
        assert (labels[train] >= 0).all()
        assert set(np.flatnonzero(labels == -1)) <= set(scored)
    result = train_ensemble(c.images, labels, group, FAST)
    assert (result.n_scored[labels == -1] == 3).all() and np.isfinite(result.prob).all()
    assert not result.open_question[labels == -1].any()
    assert len(result.pixel_strangeness) == len(labels)  # only where samples are unlabelled
    assert len(train_ensemble(c.images, c.labels, group, FAST).pixel_strangeness) == 0


def test_pixel_strangeness_is_the_distance_to_the_labelled_pictures_over_theirs_to_each_other():
    from stages.neighbours import pixel_strangeness

    images, labels = load_source("mnist")
    letters, _ = load_source("notmnist")
    images = np.concatenate([images[:60], letters[:5], images[:3]])  # 5 unlabelled letters, 3 copies of digits
    labels = np.r_[labels[:60], [-1] * 8]
    group = np.r_[np.arange(65), 0, 1, 2]
    far = pixel_strangeness(images, labels, group, seed=0)
    assert np.median(far[:60]) == 1.0  # the labelled digits' own distances set the scale
    assert far[60:65].min() > np.quantile(far[:60], 0.9)  # letters lie farther than nine digits in ten
    # a copy of a labelled digit is as far as that digit: its own group is never a neighbour
    assert np.allclose(far[65:], far[:3])


def rolnick(n_distinct: int, alpha: int, seed: int = 0):
    """Rolnick et al.'s NoisyLabelDataset over MNIST digits: each digit, then alpha copies with random labels."""
    images, labels = load_source("mnist")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(labels), n_distinct, replace=False)
    return random_label_copies(images[pick], labels[pick], alpha, rng)


def test_when_conflicts_are_the_rule_members_train_on_them_but_never_score_a_group_they_saw():
    _, given, _, group = rolnick(60, 5)
    assert trains_through_conflicts(group, given, TrainParams())
    members = plan_members(group, given, TrainParams(n_models=9))
    trained = np.zeros(len(given), bool)
    for train, scored in members:
        assert not set(group[train]) & set(group[scored])
        trained[train] = True
    assert trained.all() and len(members) == 9  # every copy, conflicting or not, trains someone
    assert not trains_through_conflicts(group, given, TrainParams(conflict_share=1.0))


@pytest.mark.slow
def test_through_the_conflicts_the_true_label_wins_far_more_groups_than_the_majority():
    from pipeline.runner import find_suspects

    images, given, truth, group = rolnick(200, 5, seed=3)
    counts = np.zeros((200, 10), int)
    np.add.at(counts, (group, given), 1)
    majority_right = (counts.argmax(1) == truth[::6]).mean()
    decisions = find_suspects(images, given, train_params=TrainParams(n_jobs=1)).decisions
    right = (decisions.suggested[::6] == truth[::6]).mean()
    assert right > majority_right + 0.25, (right, majority_right)


def test_classes_are_balanced_where_one_class_outnumbers_the_median_class_three_times():
    assert dominated(np.array([1] * 88 + [0, 2, 3, 4, 5, 6, 7, 8, 9] * 2))
    assert not dominated(np.arange(100) % 10)
    assert not dominated(np.array([0] * 25 + [1] * 10 + [2] * 10))


def test_members_train_on_about_the_train_fraction_of_clean_groups(case):
    c, group = case
    clean = (~conflicting_groups(group, c.labels)[group]).sum()
    for train, _ in plan_members(group, c.labels, TrainParams(n_models=3)):
        assert abs(len(train) / clean - 2 / 3) < 0.1


def test_one_round_scores_every_sample(case):
    c, group = case
    members = plan_members(group, c.labels, TrainParams(n_models=3))
    scored = np.concatenate([s for _, s in members])
    assert set(scored.tolist()) == set(range(len(c.labels)))


def test_out_of_bag_means_and_votes_are_consistent(case):
    c, group = case
    result = train_ensemble(c.images, c.labels, group, FAST)
    assert result.n_scored.min() >= 1
    assert np.allclose(result.prob.sum(1), 1)
    assert np.array_equal(result.open_question, open_questions(group, c.labels))
    assert (result.votes.sum(1) == result.n_scored).all()
    assert result.loss_curves.shape == (3, 20)


def test_same_seed_same_predictions(case):
    c, group = case
    a = train_ensemble(c.images, c.labels, group, FAST)
    b = train_ensemble(c.images, c.labels, group, FAST)
    assert np.array_equal(a.prob, b.prob)
    other = train_ensemble(c.images, c.labels, group, replace(FAST, seed=1))
    assert not np.array_equal(a.prob, other.prob)


@pytest.mark.parametrize("model", ["linear", "mlp", "cnn", "conv4"])
def test_every_model_kind_trains_on_colour_images_of_any_size(model):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 20, 24, 3), dtype=np.uint8)
    labels = np.arange(30) % 3
    result = train_ensemble(images, labels, np.arange(30), replace(FAST, model=model, min_steps=5))
    assert result.prob.shape == (30, 3) and result.n_scored.min() >= 1


def test_a_deadline_too_close_for_members_trains_none_but_neighbours_score_every_open_question(case):
    c, group = case
    result = train_ensemble(c.images, c.labels, group, replace(FAST, n_models=30), budget=Budget(time.monotonic()))
    assert len(result.member_seconds) == 0 and result.n_scored.max() == 0
    conflicted = conflicting_groups(group, c.labels)[group]
    assert result.nn_scored[conflicted].all() and result.nn_scored[~conflicted].any()
    assert np.allclose(result.nn_prob[result.nn_scored].sum(1), 1)


def test_once_members_start_a_past_deadline_still_scores_every_sample_once_then_stops(case, monkeypatch):
    monkeypatch.setattr("stages.train.MIN_WAVE_SECONDS", float("-inf"))
    c, group = case
    result = train_ensemble(c.images, c.labels, group, replace(FAST, n_models=30), budget=Budget(time.monotonic()))
    assert result.n_scored.min() >= 1
    assert len(result.member_seconds) <= 4  # one round of 3 (plus at most one already under way)


def test_nearest_neighbours_name_a_copy_by_its_class_but_never_by_its_own_twin(case):
    c, group = case
    images, labels = c.images, c.labels
    refs = np.flatnonzero(~conflicting_groups(group, labels)[group])
    query = refs[:20]
    prob = nearest_neighbour_probs(images, labels, group, query, refs, 10)
    assert (prob.argmax(1) == labels[query]).mean() >= 0.4  # four times chance from ~60 training digits
    # a copy of the query in its own group, with another label, among the references changes nothing
    twin_group = np.r_[group, group[query[0]]]
    with_copy = nearest_neighbour_probs(
        np.r_[images, images[query[:1]]],
        np.r_[labels, (labels[query[0]] + 1) % 10],
        twin_group,
        query[:1],
        np.r_[refs, len(labels)],
        10,
    )
    assert np.allclose(with_copy, prob[:1])


def test_a_member_short_of_time_takes_fewer_steps_and_still_scores(case):
    c, group = case
    train, scored = plan_members(group, c.labels, FAST)[0]
    params = replace(FAST, model="cnn", min_steps=100_000)
    probs, curve, seconds, steps, *_ = train_member(
        c.images, c.labels, train, scored, n_classes=10, params=params, seed=0, threads=1, seconds_allowed=1.0
    )
    assert 10 < steps < 100_000 and probs.shape == (len(scored), 10) and np.isfinite(curve).all()
    assert seconds < 30  # generous: the point is that it stopped, not how fast this machine is


def test_timing_the_scoring_leaves_the_member_in_training_mode_and_its_batchnorm_statistics_untouched(case):
    c, _ = case
    model = build_model("conv4", 1, 28, 28, 10)  # BatchNorm: a forward pass in training mode would move its stats
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert scoring_seconds(model, c.images, np.arange(0)) == 0.0
    assert scoring_seconds(model, c.images, np.arange(len(c.labels))) > 0
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_member_whose_scoring_would_not_fit_gives_up_training_steps_for_it(case, monkeypatch):
    import stages.member

    c, group = case
    train, scored = plan_members(group, c.labels, FAST)[0]
    params = replace(FAST, model="cnn", min_steps=200)
    steps = {}
    for cost in (0.0, 1e6):  # scoring for free, and scoring that takes longer than any deadline
        monkeypatch.setattr(stages.member, "scoring_seconds", lambda *args, cost=cost: cost)
        steps[cost] = train_member(
            c.images, c.labels, train, scored, n_classes=10, params=params, seed=0, threads=1, seconds_allowed=600.0
        ).steps
    assert steps == {0.0: 200, 1e6: 11}  # the fewest a member takes: its probe steps and one more


def test_a_near_deadline_shortens_the_members_needed_to_score_every_sample(case, monkeypatch):
    monkeypatch.setattr("stages.train.MIN_WAVE_SECONDS", 0.0)
    c, group = case
    params = replace(FAST, model="cnn", min_steps=100_000, n_models=9)
    result = train_ensemble(c.images, c.labels, group, params, budget=Budget(time.monotonic() + 3))
    assert result.n_scored.min() >= 1
    assert (result.member_steps < 100_000).all()


def test_balanced_sampling_keeps_a_rare_class_alive():
    images, labels = load_source("mnist")
    keep = np.flatnonzero(labels == 1)[:264].tolist() + np.flatnonzero(labels == 7)[:36].tolist()
    x, y = images[keep], labels[keep]
    params = replace(FAST, model="mlp", n_models=3, min_steps=200, balance_classes=True)
    result = train_ensemble(x, y, np.arange(len(y)), params)
    predicted = result.prob.argmax(1)
    assert (predicted[y == 7] == 7).mean() > 0.8


def test_a_member_weighs_each_class_as_the_whole_data_set_does_not_as_its_subset():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    train_idx = np.concatenate([np.arange(0, 50), np.arange(60, 65), np.arange(90, 95)])  # 1s left out
    weights = class_weights(labels, train_idx, 3, balance=False).numpy()
    per_class = np.bincount(labels[train_idx], weights=weights, minlength=3)
    assert per_class / per_class.sum() == pytest.approx([0.6, 0.3, 0.1])
    balanced = class_weights(labels, train_idx, 3, balance=True).numpy()
    assert np.bincount(labels[train_idx], weights=balanced, minlength=3) == pytest.approx([1, 1, 1])


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is a Linux feature")
def test_a_process_pinned_to_one_core_runs_one_worker_of_one_thread():
    import subprocess
    import sys

    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from stages.train import TrainParams; from stages.workers import worker_layout; "
        "print(worker_layout(TrainParams(n_jobs=-1)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert done.stdout.strip() == "(1, 1)", done.stderr
    without_joblib = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['joblib'] = None; " + code],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert without_joblib.stdout.strip() == "(1, 1)", without_joblib.stderr


def test_workers_times_threads_never_exceed_the_cores(monkeypatch):
    monkeypatch.setattr("stages.workers.usable_cores", lambda: 2)
    for n_jobs in (1, 2, 8, -1):
        workers, threads = worker_layout(replace(FAST, n_jobs=n_jobs))
        assert workers * threads <= 2


def test_bad_parameters_are_refused():
    for bad in (dict(model="resnet"), dict(train_fraction=1.0), dict(n_models=0), dict(n_jobs=0)):
        with pytest.raises(ValueError):
            replace(FAST, **bad)


DASK_PARAMS = replace(FAST, n_jobs=2, backend="dask")


@pytest.fixture(scope="module")
def on_loky(case):
    """The ensemble the dask runs must reproduce: the same parameters on joblib's own workers."""
    c, group = case
    return train_ensemble(c.images, c.labels, group, replace(DASK_PARAMS, backend="loky"))


def two_worker_cluster():
    distributed = pytest.importorskip("distributed")
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)


def test_the_dask_backend_gives_the_same_ensemble_on_a_local_cluster(case, on_loky):
    distributed = pytest.importorskip("distributed")
    c, group = case
    with two_worker_cluster() as cluster, distributed.Client(cluster):
        remote = train_ensemble(c.images, c.labels, group, DASK_PARAMS)
    assert np.allclose(on_loky.prob, remote.prob, atol=1e-5)
    assert np.array_equal(on_loky.n_scored, remote.n_scored)


@pytest.mark.slow
def test_the_dask_backend_trains_on_a_scheduler_given_by_address(case, on_loky):
    c, group = case
    with two_worker_cluster() as cluster:  # a cluster this process holds no client of, as one started elsewhere
        remote = train_ensemble(c.images, c.labels, group, replace(DASK_PARAMS, scheduler=cluster.scheduler_address))
        assert cluster.scheduler.transition_counter > 0  # the members ran there
    assert np.allclose(on_loky.prob, remote.prob, atol=1e-5)


def test_a_scheduler_that_does_not_answer_is_one_error_naming_it(case):
    pytest.importorskip("distributed")
    c, group = case
    with pytest.raises(InputError, match="no dask scheduler answers at tcp://127.0.0.1:9"):
        train_ensemble(c.images, c.labels, group, replace(FAST, backend="dask", scheduler="tcp://127.0.0.1:9"))


def test_a_member_draws_its_batches_with_the_class_shares_it_is_told(case, monkeypatch):
    import stages.member

    drawn = []
    original = stages.member.class_weights

    def recording(labels, train_idx, n_classes, balance):
        weights = original(labels, train_idx, n_classes, balance)
        drawn.append(np.bincount(labels[train_idx], weights=weights.numpy(), minlength=n_classes))
        return weights

    monkeypatch.setattr(stages.member, "class_weights", recording)
    c, group = case
    train, scored = plan_members(group, c.labels, FAST)[0]
    for balance in (True, False):
        train_member(
            c.images,
            c.labels,
            train,
            scored,
            n_classes=10,
            params=replace(FAST, balance_classes=balance),
            seed=0,
            threads=1,
        )
    balanced, natural = drawn[0] / drawn[0].sum(), drawn[1] / drawn[1].sum()
    present = np.bincount(c.labels[train], minlength=10) > 0
    assert balanced[present] == pytest.approx(np.full(present.sum(), 1 / present.sum()))
    assert natural == pytest.approx(np.bincount(c.labels, minlength=10) / len(c.labels))


def test_no_member_scores_what_it_trained_on_random_labels_stay_at_chance():
    # labels drawn at random: a member that had seen a sample would recall its label, one that had not can only guess
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (90, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 3, 90)
    params = TrainParams(model="linear", n_models=3, min_steps=400, epochs=1, n_jobs=1, learning_rate=0.05)
    result = train_ensemble(images, labels, np.arange(90), params)
    assert (result.prob.argmax(1) == labels).mean() < 0.6  # chance is 1/3; recall would be near 1


def test_auto_picks_a_gpu_where_there_is_one_and_the_cpu_elsewhere():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device must be one of"):
        TrainParams(device="gpu")


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="this machine has a cuda:7")
def test_a_gpu_asked_for_by_name_must_be_there():
    with pytest.raises(InputError, match="cuda:7: no such CUDA GPU here"):
        resolve_device("cuda:7")


def test_one_process_drives_a_gpu_with_the_cores_for_its_data():
    assert worker_layout(TrainParams(n_jobs=-1), "cuda") == (1, usable_cores())
    assert worker_layout(TrainParams(n_jobs=1), "cpu") == (1, usable_cores())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine (CI has none)")
def test_on_a_gpu_members_learn_what_they_learn_on_the_cpu(case):
    c, group = case
    on_gpu = train_ensemble(c.images, c.labels, group, replace(FAST, device="cuda"))
    on_cpu = train_ensemble(c.images, c.labels, group, replace(FAST, device="cpu"))
    assert np.abs(on_gpu.prob - on_cpu.prob).max() < 0.05  # float order differs, the learning does not


def test_odd_images_are_scored_but_train_nobody():
    group = np.arange(30)
    labels = np.arange(30) % 3
    keep_out = np.zeros(30, bool)
    keep_out[[4, 17]] = True
    members = plan_members(group, labels, TrainParams(n_models=6), keep_out)
    assert all(not np.isin([4, 17], train).any() for train, _ in members)
    assert all(any(i in scored for _, scored in members) for i in (4, 17))


def test_odd_images_are_no_nearest_neighbour_references_either():
    from conftest import pictures

    from stages.neighbours import neighbour_evidence

    images = pictures(31, 12, 12, seed=3)[..., None]
    images[30] = images[0]  # a picture identical to sample 0, labelled 2, in a group of its own ...
    labels = np.r_[np.arange(30) % 2, 2]
    group = np.r_[0, np.arange(30)]  # ... while sample 0 shares its group with sample 1, whose label differs
    keep_out = np.zeros(31, bool)
    keep_out[30] = True  # ... and it is odd: no reference
    seen, _ = neighbour_evidence(images, labels, group, 3, 0)
    unseen, _ = neighbour_evidence(images, labels, group, 3, 0, keep_out)
    assert seen[0].argmax() == 2 and unseen[0, 2] < seen[0, 2]


def test_a_member_measures_how_far_each_scored_image_lies_from_what_it_learnt_and_from_each_class():
    # Features are the standardised pixels themselves (a body that only flattens): class 0 is bright on the top
    # row, class 1 on the bottom row, and the stranger on the left column, which neither class resembles.
    top, bottom, left = [[9, 9], [0, 0]], [[0, 0], [9, 9]], [[9, 0], [9, 0]]
    images = np.array([top] * 12 + [bottom] * 12 + [top, bottom, left], np.uint8)[..., None] * 20
    labels = np.array([0] * 12 + [1] * 12 + [0, 1, 0])
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    scored = np.array([24, 25, 26])
    _, asked = predict(model, images, scored)
    strangeness, class_sim = feature_evidence(model, images, labels, np.arange(24), asked, n_classes=2, seed=0)
    assert class_sim.shape == (3, 2)
    assert class_sim[0, 0] > 0.99 and class_sim[1, 1] > 0.99  # each known image sits on its class
    assert np.abs(class_sim[2]).max() < 0.01  # the stranger is like neither class
    assert strangeness[2] > 1 > 100 * strangeness[:2].max()  # its nearest training images are far, theirs are not
