"""Artifacts between stages: a damaged, incomplete or mismatched one is one line naming the file and the command
that rewrites it, and exit code 2, whatever the damage."""

import io
import shutil

import numpy as np
import pytest
from conftest import run_cli

from pipeline import steps
from pipeline.paths import PATHS
from pipeline.plant import PlantSpec, load_source, plant, write_case
from stages import decode, group, train

DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "random bytes": lambda data: bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
    "a bare .npy renamed": lambda data: npy_bytes(np.zeros(3)),
    "an array missing": lambda data: without(data, "prob"),
    "an array of the wrong shape": lambda data: replaced(data, "n_scored", np.zeros((2, 2), np.int64)),
    "an array of the wrong length": lambda data: replaced(data, "n_scored", np.zeros(7, np.int64)),
}


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def rewritten(data: bytes, change) -> bytes:
    with np.load(io.BytesIO(data)) as npz:
        arrays = {key: npz[key] for key in npz.files}
    change(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def without(data, name):
    return rewritten(data, lambda arrays: arrays.pop(name))


def replaced(data, name, value):
    return rewritten(data, lambda arrays: arrays.__setitem__(name, value))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("artifacts")
    write_case(plant(*load_source("mnist"), PlantSpec(n_clean=40, n_evil=4, seed=1)), folder / "case")
    paths = PATHS.under(folder)
    steps.decode(
        decode.DecodeParams(str(folder / "case/images-idx3-ubyte.gz"), str(folder / "case/labels-idx1-ubyte.gz")), paths
    )
    steps.group(group.GroupParams(), paths)
    steps.train(train.TrainParams(model="linear", n_models=3, min_steps=10, n_jobs=1), paths)
    return folder


def aggregate(folder, oob):
    """`twins aggregate` on the artifacts in folder, with this train artifact; results and metrics beside them."""
    paths = PATHS.under(folder)
    return run_cli(
        "aggregate",
        "--decoded",
        paths.decoded,
        "--groups",
        str(groups_in(folder)),
        "--oob",
        str(oob),
        "--decisions",
        paths.decisions,
        "--results",
        str(folder / "results"),
        "--metrics",
        str(folder / "m.json"),
    )


def groups_in(folder):
    return PATHS.under(folder).groups


def test_sound_artifacts_aggregate(artifacts):
    done = aggregate(artifacts, PATHS.under(artifacts).oob)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_train_artifact_names_itself_and_the_command_that_rewrites_it(tmp_path, artifacts, damage):
    bad = tmp_path / "oob.npz"
    bad.write_bytes(DAMAGE[damage](open(PATHS.under(artifacts).oob, "rb").read()))
    done = aggregate(artifacts, bad)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "twins train" in lines[0], done.stderr
    assert not (tmp_path / "results").exists()


def test_a_group_artifact_of_another_data_set_is_refused(tmp_path, artifacts):
    shutil.copytree(artifacts, tmp_path / "copy")
    groups = groups_in(tmp_path / "copy")
    with open(groups, "rb") as f:
        damaged = replaced(f.read(), "group", np.zeros(5, np.int64))
    with open(groups, "wb") as f:
        f.write(damaged)
    done = aggregate(tmp_path / "copy", PATHS.under(tmp_path / "copy").oob)
    assert done.returncode == 2 and "twins group" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_results_are_created_with_the_mode_the_umask_allows(tmp_path, artifacts):
    import os

    old = os.umask(0o022)
    try:
        done = aggregate(artifacts, PATHS.under(artifacts).oob)
    finally:
        os.umask(old)
    assert done.returncode == 0
    for path in (artifacts / "results" / "samples.csv", artifacts / "m.json"):
        assert path.stat().st_mode & 0o777 == 0o644
