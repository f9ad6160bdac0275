"""Parameters are declared once (stages/params.py: param) and checked, documented and written from there:
params.yaml holds every default, so hw02.py (defaults) and `dvc repro` (params.yaml) agree."""

import dataclasses

import pytest
import yaml
from conftest import run_cli

from pipeline.cli import parse_overrides
from pipeline.params import load_params, params_yaml
from pipeline.registry import SECTIONS
from stages.aggregate import AggregateParams
from stages.decode import DecodeParams
from stages.errors import InputError
from stages.params import declared
from stages.train import TrainParams


def test_params_yaml_is_written_from_the_declarations(repo):
    assert (repo / "params.yaml").read_text() == params_yaml(), "run: twins params --yaml > params.yaml"


@pytest.mark.parametrize("section", SECTIONS)
def test_params_yaml_holds_every_default(repo, section):
    document = yaml.safe_load((repo / "params.yaml").read_text())
    assert document[section] == dataclasses.asdict(SECTIONS[section]())


@pytest.mark.parametrize("section", SECTIONS)
def test_every_parameter_has_help_and_every_number_a_finite_range(section):
    for p in declared(SECTIONS[section]):
        assert p.help.strip() and p.help[0].isupper() or p.help.startswith(("...", "true", "shift")), p.name
        numeric = {int, float} & set(getattr(p.type, "__args__", (p.type,)))
        if numeric and bool not in getattr(p.type, "__args__", (p.type,)):
            low, high, _, _ = p.allowed.bounds()
            assert high < float("inf") and low > float("-inf"), f"{section}.{p.name} needs an upper bound"


@pytest.mark.parametrize(
    "section, name, value",
    [
        ("train", "batch_size", 10**20),
        ("train", "epochs", 10**20),
        ("train", "min_steps", 10**20),
        ("train", "learning_rate", 1e300),
        ("report", "columns", 100_000),
    ],
)
def test_a_huge_number_is_refused_by_its_parameter_not_a_traceback_later(section, name, value):
    with pytest.raises(ValueError, match=f"{name} must be in "):
        SECTIONS[section](**{name: value})


def test_overrides_win_and_are_type_checked(repo):
    params = load_params(TrainParams, "train", repo / "params.yaml", {"n_models": 4, "learning_rate": 1})
    assert params.n_models == 4 and params.learning_rate == 1.0
    with pytest.raises(InputError, match="train.n_models = 'many' is not a int"):
        load_params(TrainParams, "train", repo / "params.yaml", {"n_models": "many"})


def test_unknown_and_out_of_range_parameters_are_refused(repo):
    with pytest.raises(InputError, match="unknown parameter train.n_model"):
        load_params(TrainParams, "train", repo / "params.yaml", {"n_model": 4})
    with pytest.raises(InputError, match="model must be one of"):
        load_params(TrainParams, "train", repo / "params.yaml", {"model": "resnet"})


@pytest.mark.parametrize(
    "edit, problem",
    [
        ({"trian": {"seed": 1}}, "unknown section 'trian' (did you mean train?)"),
        ({"train": {"modle": "cnn"}}, "unknown parameter train.modle (did you mean model?)"),
        ({"train": 5}, "train must be a mapping of parameters"),
        ({"train": [1, 2]}, "train must be a mapping of parameters"),
        ({"train": {"backend": "foo"}}, "backend must be one of"),
        ({"train": {"seed": -1}}, "seed must be in 0..4294967295"),
        ({"group": {"seed": 2**40}}, "seed must be in 0..4294967295"),
        ({"train": {"time_budget_s": float("nan")}}, "time_budget_s = nan is not a finite number"),
        ({"train": {"time_budget_s": 0}}, "time_budget_s must be in (0, 1000000]"),
        ({"train": {"learning_rate": float("inf")}}, "learning_rate = inf is not a finite number"),
        ({"group": {"mirror": True}}, "mirror needs geometric: true"),
    ],
)
def test_the_whole_file_is_checked_whichever_stage_reads_it(tmp_path, edit, problem):
    document = {"decode": {"num_classes": 10}, **edit}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(InputError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        load_params(DecodeParams, "decode", tmp_path / "params.yaml")  # decode reads it, train's errors stop it


def unreadable(path, kind, monkeypatch):
    """A params file that cannot be read as text: a folder, bytes that are not UTF-8, or no permission (simulated:
    the tests may run as root, whom file modes do not stop)."""
    if kind == "folder":
        path.mkdir()
    elif kind == "not-utf8":
        path.write_bytes(b"\xff\xfe\x00bad")
    else:
        path.write_text("train: {}\n")

        def refused(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(type(path), "read_text", refused)


@pytest.mark.parametrize(
    "kind, why", [("folder", "Is a directory"), ("not-utf8", "not UTF-8 text"), ("no-permission", "Permission denied")]
)
def test_a_params_file_that_cannot_be_read_as_text_is_named(tmp_path, monkeypatch, kind, why):
    unreadable(tmp_path / "p.yaml", kind, monkeypatch)
    with pytest.raises(InputError) as exc:
        load_params(TrainParams, "train", tmp_path / "p.yaml")
    assert str(exc.value) == f"{tmp_path / 'p.yaml'}: cannot be read ({why})"


@pytest.mark.parametrize(
    "text, name", [("train:\n  1: 3\n", "train.1"), ("train:\n  ~: 3\n", "train.None")], ids=["number", "null"]
)
def test_a_parameter_name_that_is_not_a_string_is_an_unknown_parameter(tmp_path, text, name):
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(InputError, match=f"unknown parameter {name} \\(known: "):
        load_params(TrainParams, "train", tmp_path / "params.yaml")


def test_a_params_file_named_but_missing_is_an_error_and_the_default_one_missing_is_all_defaults(tmp_path, monkeypatch):
    done = run_cli("group", "--params", "nope.yaml", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr == "error: nope.yaml: cannot be read (No such file or directory)\n"
    monkeypatch.chdir(tmp_path)
    assert load_params(TrainParams, "train") == TrainParams()


@pytest.mark.parametrize(
    "args, line",
    [
        (("group", "-S", "seed=[1"), "-S seed=[1: not valid YAML (expected ',' or ']', but got '<stream end>')"),
        (("group", "-S", "seed="), "-S seed=: group.seed must not be empty"),
        (("run", "-S", "train.n_models=-1"), "-S train.n_models=-1: train: n_models must be in 1..1000, got -1"),
        (("run", "-S", "train.n_models=x"), "-S train.n_models=x: train.n_models = 'x' is not a int"),
    ],
    ids=["not-yaml", "empty", "out-of-range", "wrong-type"],
)
def test_a_bad_override_is_one_line_naming_the_override_not_a_params_file(tmp_path, args, line):
    done = run_cli(*args, cwd=tmp_path)  # no params.yaml here
    assert done.returncode == 2 and done.stderr == f"error: {line}\n"


def test_an_empty_override_is_null_as_in_params_yaml_for_a_parameter_that_takes_null(tmp_path):
    (tmp_path / "params.yaml").write_text("aggregate:\n  threshold: 0.5\n")
    values, sources = parse_overrides(("threshold=",))
    assert load_params(AggregateParams, "aggregate", tmp_path / "params.yaml", values, sources).threshold is None
