"""params.yaml mirrors the stages' defaults, so hw02.py (defaults) and `dvc repro` (params.yaml) agree."""
import dataclasses

import pytest
import yaml

from pipeline.errors import InputError
from pipeline.params import load_params
from stages.aggregate import AggregateParams
from stages.decode import DecodeParams
from stages.group import GroupParams
from stages.report import ReportParams
from stages.train import TrainParams

SECTIONS = {"decode": DecodeParams, "group": GroupParams, "train": TrainParams, "aggregate": AggregateParams,
            "report": ReportParams}


@pytest.mark.parametrize("section", SECTIONS)
def test_params_yaml_holds_every_default(repo, section):
    document = yaml.safe_load((repo / "params.yaml").read_text())
    assert document[section] == dataclasses.asdict(SECTIONS[section]())


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
