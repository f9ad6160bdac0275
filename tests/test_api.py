"""The Python API: arrays in, per-sample results out; the README's example runs as written."""

import re

import numpy as np
import pytest
from conftest import REPO

from pipeline.api import find_issues
from stages.errors import InputError


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python API") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs_and_finds_the_evil_twins():
    namespace = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    result, truth = namespace["result"], namespace["case"].truth
    found = set(result.ranked().tolist())
    assert len(found ^ set(truth.tolist())) <= 4  # a few of 15 groups may go the wrong way on 150 digits
    assert result.outlier.shape == result.outlier_score.shape == result.odd.shape == result.flagged.shape
    assert not (result.flagged & result.outlier).any() and (result.odd == "").all()  # digits, none broken


def test_overrides_are_checked_like_params_yaml():
    images = np.zeros((4, 5, 5), np.uint8)
    with pytest.raises(InputError, match="unknown section 'trian'"):
        find_issues(images, [0, 1, 0, 1], params={"trian": {}})
    with pytest.raises(InputError, match="n_models must be in 1..1000"):
        find_issues(images, [0, 1, 0, 1], params={"train": {"n_models": 0}})
    with pytest.raises(InputError, match="holds 3 labels"):
        find_issues(images, [0, 1, 0])


def test_a_path_works_as_decode_takes_it_and_results_carry_paths_and_probabilities(tmp_path):
    from tests.test_folder import a_folder_of_digits

    a_folder_of_digits(tmp_path / "digits", n=60)
    result = find_issues(tmp_path / "digits", params={"train": {"model": "linear", "n_models": 3, "min_steps": 30}})
    assert len(result.paths) == 60 and result.paths[0].endswith(".png") and result.prob.shape == (60, 10)
    frame = result.to_frame()
    assert len(frame) == 60 and frame["given"].iloc[0] in (
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
    )
    with pytest.raises(InputError, match="labels' path"):
        find_issues(REPO / "data" / "sample" / "images-idx3-ubyte.gz")
