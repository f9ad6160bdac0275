"""Hostile and careless input, round 4 (issue 47): every artifact and choices file bound to the data it describes,
outputs that never land in or on the data, names that are data everywhere, runs killed from outside, parameters
that cannot blow up. Each test is one probe, numbered by the issue's case it holds (README, "Reliability";
docs/reliability.md lists the families)."""

import time

import pytest
from conftest import run_cli

from pipeline.params import load_params, yaml_value
from stages.errors import InputError
from stages.train import TrainParams

# -- 8. parameters ---------------------------------------------------------------------------------------------------

BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def test_8_a_billion_laughs_params_file_is_refused_before_it_expands(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  seed: 1\n" + BILLION_LAUGHS.replace("a:", "x:", 1))
    start = time.monotonic()
    with pytest.raises(InputError) as exc:
        load_params(TrainParams, "train", params)
    assert time.monotonic() - start < 5
    assert str(exc.value) == f"{params}: not valid YAML (anchors and aliases (& and *) are not allowed, line 3)"


@pytest.mark.parametrize(
    "text", ["[" * 100_000 + "]" * 100_000, "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 3000))]
)
def test_8_yaml_nested_thousands_deep_is_one_line_not_a_recursion_error(text):
    with pytest.raises(InputError, match=r"^-S x: not valid YAML \(nested more than 20 levels deep, line \d+\)$"):
        yaml_value(text, "-S x")


def test_8_a_second_train_section_is_refused_not_silently_replacing_the_first(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  n_models: 4\ngroup:\n  seed: 1\ntrain:\n  seed: 2\n")
    with pytest.raises(InputError) as exc:
        load_params(TrainParams, "train", params)
    assert str(exc.value) == f"{params}: not valid YAML (key 'train' appears twice in one mapping, line 5)"


def test_8_an_alias_or_a_repeated_key_in_a_set_value_is_one_line(tmp_path):
    for value, problem in (("{a: &x 1, b: *x}", "anchors and aliases"), ("{a: 1, a: 2}", "key 'a' appears twice")):
        done = run_cli("train", "-S", f"n_models={value}", "--decoded", str(tmp_path / "none.npz"))
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(f"error: -S n_models={value}: not valid YAML ({problem}")


def test_8_plain_yaml_still_reads_as_before():
    assert yaml_value("train: {seed: 3, augment: [1, 2]}\n", "x") == {"train": {"seed": 3, "augment": [1, 2]}}
    assert yaml_value("", "x") is None and yaml_value("1e-3", "x") == "1e-3"
