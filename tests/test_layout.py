"""The layout keeps its promises: stages/ never imports pipeline/, dvc.yaml names each stage's function and every
module it runs, and the paths in dvc.yaml are the ones the `twins` commands use."""

import dataclasses
import importlib
import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
import yaml

from pipeline.paths import PATHS

ROOT = Path(__file__).resolve().parent.parent
DVC_YAML = (ROOT / "dvc.yaml").read_text()
STAGES = yaml.safe_load(DVC_YAML)["stages"]


def test_the_import_contract_holds():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_names_the_function_that_computes_it(stage):
    comment = re.search(rf"^  {stage}:  # stages/(\w+)\.py: (\w+)", DVC_YAML, re.M)
    assert comment, f"dvc.yaml's {stage} stage names no function"
    module, function = comment.groups()
    assert module == stage and callable(getattr(importlib.import_module(f"stages.{module}"), function))


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_depends_on_every_module_its_code_imports(stage):
    graph = grimp.build_graph("stages", exclude_type_checking_imports=True)
    needed = {f"stages.{stage}"} | graph.find_upstream_modules(f"stages.{stage}")
    code = [dep for dep in STAGES[stage]["deps"] if dep.startswith("stages/") and dep.endswith(".py")]
    assert {dep[:-3].replace("/", ".") for dep in code} == needed
    data = [dep for dep in STAGES[stage]["deps"] if dep.startswith("stages/") and not dep.endswith(".py")]
    assert all((ROOT / dep).is_file() for dep in data)  # files a stage reads, such as the review page's script


def test_dvc_yaml_uses_the_paths_the_commands_use():
    assert yaml.safe_load(DVC_YAML)["vars"][0]["paths"] == dataclasses.asdict(PATHS)


def test_dvc_yaml_declares_the_registry_s_stages_in_its_order_with_their_files():
    from pipeline.registry import STAGES as REGISTRY

    assert list(STAGES) == [stage.name for stage in REGISTRY]
    for stage in REGISTRY:
        declared = STAGES[stage.name]
        deps = {d for d in declared["deps"] if d.startswith("${paths.")}
        outs = {
            next(iter(o)) if isinstance(o, dict) else o for key in ("outs", "metrics") for o in declared.get(key, [])
        }
        assert deps == {f"${{paths.{name}}}" for name in stage.reads}, stage.name
        assert declared["params"] == [stage.name]
        for name in stage.writes:  # a folder's files are declared one by one
            assert any(o == f"${{paths.{name}}}" or o.startswith(f"${{paths.{name}}}/") for o in outs), (
                stage.name,
                name,
            )


LONGEST, MOST_POSITIONAL = 60, 6  # a function's lines and positional parameters (docs: "Contributing: Layout")


def test_functions_are_short_and_take_few_positional_parameters():
    import ast

    found = []
    for path in sorted([*ROOT.glob("stages/*.py"), *ROOT.glob("pipeline/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                positional = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST or len(positional) > MOST_POSITIONAL:
                    found.append(f"{path.name}:{node.lineno} {node.name}: {lines} lines, {len(positional)} positional")
    assert not found, found
