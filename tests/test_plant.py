"""The planting tool: counts, truth, determinism, and perturbations within their bounds."""

import numpy as np
import pytest
from conftest import run_cli

from pipeline.plant import PERTURBED, PlantSpec, load_source, perturb, plant
from stages.decode_idx import read_images, read_labels


@pytest.fixture(scope="module")
def mnist():
    return load_source("mnist")


def test_counts_and_roles(mnist):
    case = plant(*mnist, PlantSpec(n_clean=100, n_evil=6, n_two_evil=2, n_benign=3, n_orphans=4, seed=1))
    roles = dict(zip(*np.unique(case.role, return_counts=True)))
    assert roles == {"clean": 100 - 11, "original": 11, "evil": 6 + 4, "benign": 3, "orphan": 4}
    assert len(case.labels) == len(case.images) == 100 + 6 + 4 + 3 + 4


def test_truth_is_exactly_the_wrong_labels(mnist):
    images, labels = mnist
    case = plant(images, labels, PlantSpec(n_clean=100, n_evil=6, n_two_evil=2, n_benign=3, n_orphans=4, seed=2))
    wrong = np.flatnonzero(case.labels != labels[case.source])
    assert case.truth.tolist() == wrong.tolist()
    assert set(case.role[case.truth]) == {"evil", "orphan"}


def test_evil_copies_share_their_original_image_and_two_evil_groups_share_one_wrong_label(mnist):
    case = plant(*mnist, PlantSpec(n_clean=50, n_evil=0, n_two_evil=3, seed=3))
    for src in np.unique(case.source[case.role == "evil"]):
        members = np.flatnonzero(case.source == src)
        assert len(members) == 3
        assert len(set(case.labels[members][case.role[members] == "evil"].tolist())) == 1
        assert all(np.array_equal(case.images[m], case.images[members[0]]) for m in members)


def test_same_seed_same_case_other_seed_other_case(mnist):
    spec = PlantSpec(n_clean=60, n_evil=5, noise_sigma=8, brightness=0.12, shift=1, seed=7)
    a, b = plant(*mnist, spec), plant(*mnist, spec)
    c = plant(*mnist, PlantSpec(n_clean=60, n_evil=5, seed=8))
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.source, c.source)


def test_noise_stays_within_its_sigma():
    rng = np.random.default_rng(0)
    image = np.full((28, 28, 1), 128, np.uint8)
    diffs = [perturb(image, rng, noise_sigma=8, brightness=0, shift=0).astype(float) - 128 for _ in range(50)]
    assert 2 < np.std(diffs) <= 8.5


def test_brightness_change_stays_within_12_percent():
    rng = np.random.default_rng(0)
    image = np.full((28, 28, 1), 100, np.uint8)
    for _ in range(50):
        out = perturb(image, rng, noise_sigma=0, brightness=0.12, shift=0).astype(float)
        assert abs(out.mean() - 100) <= 0.12 * 100 + 0.12 * 255 + 1


def test_shift_moves_the_image_by_one_pixel_at_most(mnist):
    rng = np.random.default_rng(0)
    image = mnist[0][0]
    for _ in range(20):
        out = perturb(image, rng, noise_sigma=0, brightness=0, shift=1)
        matches = [
            np.array_equal(np.roll(image, (dy, dx), axis=(0, 1)), out)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if (dy, dx) != (0, 0)
        ]
        assert any(matches)  # MNIST borders are blank, so a roll equals the edge-filled shift


def test_perturbed_copies_differ_from_their_originals(mnist):
    case = plant(*mnist, PlantSpec(n_clean=40, n_evil=5, seed=0, **PERTURBED))
    for i in np.flatnonzero(case.role == "evil"):
        original = np.flatnonzero((case.source == case.source[i]) & (case.role == "original"))[0]
        assert not np.array_equal(case.images[i], case.images[original])


def test_impossible_specs_are_refused(mnist):
    with pytest.raises(ValueError):
        PlantSpec(n_clean=5, n_evil=6)
    with pytest.raises(ValueError):
        plant(mnist[0][:10], mnist[1][:10], PlantSpec(n_clean=20, n_evil=0))


def test_cli_writes_a_case_with_its_truth(tmp_path):
    result = run_cli(
        "plant", "--n-clean", "30", "--n-evil", "3", "--n-orphans", "1", "--seed", "4", "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    images, labels = read_images(tmp_path / "images-idx3-ubyte.gz"), read_labels(tmp_path / "labels-idx1-ubyte.gz")
    assert len(images) == len(labels) == 34
    assert len((tmp_path / "truth.txt").read_text().strip().split(", ")) == 4


@pytest.mark.parametrize(
    "args, line",
    [
        (
            ["--n-clean", "0", "--n-evil", "0"],
            "plant: a case needs at least one sample: n_clean + n_orphans must be at least 1",
        ),
        (["--seed", "-1"], "Invalid value for '--seed': -1 is not in the range x>=0."),
        (["--n-benign", "-1"], "Invalid value for '--n-benign': -1 is not in the range x>=0."),
    ],
    ids=["no-sample", "negative-seed", "negative-count"],
)
def test_cli_names_the_option_and_the_rule_it_breaks(tmp_path, args, line):
    done = run_cli("plant", *args, "--out", str(tmp_path / "case"))
    assert done.returncode == 2 and done.stderr == f"error: {line}\n" and not (tmp_path / "case").exists()


def test_bundled_sample_matches_the_planting_tool(repo):
    """data/sample/ is exactly `twins plant --n-clean 150 --n-evil 15 --seed 0`."""
    case = plant(*load_source("mnist"), PlantSpec(n_clean=150, n_evil=15, seed=0))
    sample = repo / "data" / "sample"
    assert np.array_equal(read_images(sample / "images-idx3-ubyte.gz"), case.images)
    assert (sample / "truth.txt").read_text().strip() == ", ".join(map(str, case.truth))
