"""The DVC pipeline and the `twins` command, run as a user runs them, in a temporary copy of the repo."""

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO

from pipeline.cli import main

FAST_TRAIN = {"model": "linear", "n_models": 3, "min_steps": 30}
COPIED = [
    "pipeline",
    "stages",
    "dvc.yaml",
    "params.yaml",
    ".dvc/config",
    ".dvc/plots.html",
    ".dvcignore",
    ".gitignore",
    "hw02.py",
    "data/sample",
    "evidence",  # the external stage's folder, a dependency in dvc.yaml
]


def sh(*args, cwd, check=True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"], PYTHONPATH=str(REPO))
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(f"{args} failed:\n{done.stdout}\n{done.stderr}")
    return done


def dvc(*args, cwd) -> str:
    return sh(sys.executable, "-m", "dvc", *args, cwd=cwd).stdout


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([\w-]+)'", output))


def set_params(folder: Path, section: str, **values) -> None:
    path = folder / "params.yaml"
    document = yaml.safe_load(path.read_text())
    document[section].update(values)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def make_copy(tmp_path: Path, **train) -> Path:
    folder = tmp_path / "repo"
    for name in COPIED:
        source, target = REPO / name, folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    set_params(folder, "train", **train)
    sh("git", "init", "-q", cwd=folder)
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy", "--allow-empty", cwd=folder)
    sh("git", "add", "-A", cwd=folder)
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy", cwd=folder)
    return folder


@pytest.fixture(scope="module")
def fast_repo(tmp_path_factory):
    """A copy with quick models, reproduced once."""
    folder = make_copy(tmp_path_factory.mktemp("fast"), **FAST_TRAIN)
    first = dvc("repro", cwd=folder)
    assert {"decode", "group", "train", "aggregate"} <= stages_run(first)
    return folder


@pytest.mark.slow
def test_a_second_repro_runs_nothing(fast_repo):
    assert stages_run(dvc("repro", cwd=fast_repo)) == set()


@pytest.mark.slow
def test_plots_show_renders_the_report_and_metrics_time_every_stage(fast_repo):
    dvc("plots", "show", "-o", "plots_html", cwd=fast_repo)
    page = (fast_repo / "plots_html" / "index.html").read_text()
    for image in ["flagged", "scores", "confusion", "loss"]:
        assert f"static/workspace_results_{image}.png" in page
    assert "confusion_csv" in page and "loss_csv" in page and "classes_csv" in page  # the tables, drawn as vega plots
    shown = json.loads(dvc("metrics", "show", "--json", cwd=fast_repo))[""]["data"]
    assert set(shown["metrics.json"]["data"]["seconds"]) == {"aggregate"}
    for stage in ("decode", "group", "train"):  # kept out of the artifacts, which stay the same bytes
        assert shown[f"metrics/{stage}.json"]["data"]["seconds"] > 0


@pytest.mark.slow
def test_plots_show_draws_every_chart_offline(fast_repo, tmp_path):
    """The page's vega charts come from .dvc/plots.html's inlined libraries, not a CDN: in a browser with no
    network each chart is drawn."""
    from conftest import browser

    dvc("plots", "show", "-o", "plots_offline", cwd=fast_repo)
    page = fast_repo / "plots_offline" / "index.html"
    assert "cdn.jsdelivr" not in page.read_text() and "<script src=" not in page.read_text()
    driver = browser(tmp_path)
    try:
        driver.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
        driver.get(page.as_uri())
        give_up = time.monotonic() + 30
        while True:  # vega-embed draws asynchronously
            charts = driver.execute_script(
                "return [...document.querySelectorAll('div[id$=_csv]')]"
                ".map(d => [d.id, !!d.querySelector('svg, canvas')])"
            )
            if all(drawn for _, drawn in charts) or time.monotonic() > give_up:
                break
            time.sleep(0.2)
    finally:
        driver.quit()
    assert len(charts) == 3 and all(drawn for _, drawn in charts), charts


@pytest.mark.slow
def test_plots_diff_finds_a_committed_revisions_plots(fast_repo):
    """Plots are cached outputs, so a revision's come back through its dvc.lock (a table DVC did not track could not:
    `dvc plots diff` failed on results/classes.csv)."""
    sh("git", "add", "-A", cwd=fast_repo)
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "reproduced", cwd=fast_repo)
    shown = json.loads(dvc("plots", "diff", "HEAD", "--json", cwd=fast_repo))
    assert not shown.get("errors"), shown["errors"]
    revisions = {
        plot: {rev for entry in entries for rev in entry["revisions"]} for plot, entries in shown["data"].items()
    }
    assert len(revisions) == 9 and all(found == {"HEAD", "workspace"} for found in revisions.values()), revisions


def test_a_stage_rerun_on_the_same_input_writes_the_same_bytes(tmp_path):
    from pipeline import steps
    from pipeline.paths import PATHS
    from pipeline.plant import PlantSpec, load_source, plant, write_case
    from stages import aggregate, decode, group, train

    write_case(plant(*load_source("mnist"), PlantSpec(n_clean=30, n_evil=3, seed=2)), tmp_path / "case")
    files = []
    for attempt in (1, 2):
        paths = PATHS.under(tmp_path / str(attempt))
        steps.decode(
            decode.DecodeParams(
                str(tmp_path / "case/images-idx3-ubyte.gz"), str(tmp_path / "case/labels-idx1-ubyte.gz")
            ),
            paths,
        )
        steps.group(group.GroupParams(), paths)
        steps.train(train.TrainParams(model="linear", n_models=3, min_steps=10, n_jobs=1), paths)
        steps.aggregate(aggregate.AggregateParams(), paths)
        files.append(
            [
                open(name, "rb").read()
                for name in (paths.decoded, paths.groups, paths.groups_summary, paths.oob, paths.decisions)
            ]
        )
    assert files[0] == files[1]


@pytest.mark.slow
def test_an_aggregate_parameter_reruns_only_aggregate_and_what_follows(fast_repo):
    set_params(fast_repo, "aggregate", min_posterior=0.9)
    ran = stages_run(dvc("repro", cwd=fast_repo))
    assert "aggregate" in ran and not ran & {"decode", "group", "train"}
    assert "aggregate.min_posterior" in dvc("params", "diff", cwd=fast_repo)


@pytest.mark.slow
def test_the_export_stage_writes_the_cleaned_copy_and_reruns_alone_on_its_parameters(fast_repo):
    dvc("repro", cwd=fast_repo)
    with open(fast_repo / "export" / "changes.csv", newline="") as f:
        relabelled = [row for row in csv.DictReader(f) if row["action"] == "relabel"]
    flagged = (fast_repo / "results" / "suspects.txt").read_text().strip()
    assert (fast_repo / "export" / "labels-idx1-ubyte.gz").exists()
    assert {row["index"] for row in relabelled} <= set(flagged.split(", ")) and relabelled
    set_params(fast_repo, "export", relabel=False)
    assert stages_run(dvc("repro", cwd=fast_repo)) == {"export"}
    with open(fast_repo / "export" / "changes.csv", newline="") as f:
        assert not [row for row in csv.DictReader(f) if row["action"] == "relabel"]


@pytest.mark.slow
def test_a_train_parameter_reruns_train_and_what_follows(fast_repo):
    set_params(fast_repo, "train", seed=1)
    ran = stages_run(dvc("repro", cwd=fast_repo))
    assert {"train", "aggregate"} <= ran and not ran & {"decode", "group"}


@pytest.mark.slow
def test_new_input_data_reruns_everything(fast_repo):
    from pipeline.plant import PlantSpec, load_source, plant, write_case

    write_case(plant(*load_source("mnist"), PlantSpec(n_clean=60, n_evil=4, seed=9)), fast_repo / "data" / "other")
    set_params(fast_repo, "decode", images="data/other/images-idx3-ubyte.gz", labels="data/other/labels-idx1-ubyte.gz")
    assert {"decode", "group", "train", "aggregate"} <= stages_run(dvc("repro", cwd=fast_repo))


@pytest.mark.slow
def test_experiments_run_and_compare_with_the_committed_workspace(fast_repo):
    shown = dvc("metrics", "show", cwd=fast_repo)
    assert "flagged" in shown and "conflicting_groups" in shown
    sh("git", "add", "-A", cwd=fast_repo)  # .gitignore keeps the artifacts out, dvc.lock and metrics in
    sh("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "repro", cwd=fast_repo)
    ran = stages_run(dvc("exp", "run", "-n", "cautious", "-S", "aggregate.twinless=cautious", cwd=fast_repo))
    assert "aggregate" in ran and ran <= {"aggregate", "report", "export"}  # those only where decisions changed
    table = dvc("exp", "show", "--csv", "--no-pager", cwd=fast_repo)
    rows = {row.split(",")[0] or row.split(",")[1]: row for row in table.splitlines()[1:]}
    header = table.splitlines()[0].split(",")
    flagged = header.index("flagged")
    workspace, experiment = rows["workspace"].split(","), rows["cautious"].split(",")
    assert workspace[flagged] and experiment[flagged]  # both measured, none shown as '!'
    assert experiment[header.index("aggregate.twinless")] == "cautious"
    diff = json.loads(dvc("metrics", "diff", "HEAD", "--all", "--json", cwd=fast_repo))
    assert {"flagged", "wrong_prob_cut", "conflicting_groups"} <= set(diff["metrics.json"])
    # `make exp` (docs: "The pipeline: Commands"), a short table: the parameter that differs and the headline counts,
    # not 119 columns
    make_exp = re.search(r"^exp:.*\n\t\$\(VENV\)/bin/dvc (.+)$", (REPO / "Makefile").read_text(), re.M).group(1)
    short = dvc(*shlex.split(make_exp.replace("$$", "$")), "--csv", cwd=fast_repo).splitlines()[0].split(",")
    assert len(short) < 20 and {"aggregate.twinless", "flagged", "outliers"} <= set(short), short


@pytest.mark.slow
def test_twins_run_and_hw02_agree_with_dvc_repro_on_the_default_parameters(tmp_path):
    folder = make_copy(tmp_path)  # default parameters: the ones hw02.py uses, but for count_z (hw02.py's own)
    set_params(folder, "aggregate", count_z=2.0, min_expected_wrong=2.0)
    dvc("repro", cwd=folder)
    from_dvc = (folder / "results" / "suspects.txt").read_text().strip()
    run = sh("twins", "run", cwd=folder)
    from_run = run.stdout.strip()
    assert "Warning" not in run.stderr, run.stderr  # e.g. loky restarting a member's worker (stages/workers.py: warm)
    from_hw02 = sh(
        sys.executable,
        "hw02.py",
        "--data",
        "data/sample/images-idx3-ubyte.gz",
        "--labels",
        "data/sample/labels-idx1-ubyte.gz",
        cwd=folder,
    ).stdout.strip()
    assert from_dvc == from_run == from_hw02
    truth = {int(i) for i in (folder / "data/sample/truth.txt").read_text().split(", ")}
    # README: the sample's one honest mistake, in the group of samples 15 and 82
    assert {int(i) for i in from_dvc.split(", ")} ^ truth <= {15, 82}


COMMANDS = ["decode", "group", "train", "aggregate", "report", "run", "export", "plant"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output and len(result.output.splitlines()) > 5


def test_a_bad_parameter_is_one_line_and_exit_2(tmp_path):
    done = sh(
        sys.executable,
        "-m",
        "pipeline.cli",
        "train",
        "-S",
        "n_models=0",
        "--decoded",
        "x.npz",
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "n_models must be in 1..1000" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_artifact_is_one_line_and_exit_2(tmp_path):
    done = sh(sys.executable, "-m", "pipeline.cli", "aggregate", cwd=tmp_path, check=False)
    assert done.returncode == 2 and "artifacts/decoded.npz: no such artifact" in done.stderr


def test_the_training_log_line_reports_the_fewest_and_most_steps_a_member_took():
    import numpy as np

    from pipeline.runner import describe_training
    from stages.train import TrainResult

    def result(steps):
        return TrainResult(
            prob=np.zeros((4, 2)),
            n_scored=np.array([3, 2, 2, 5]),
            votes=np.zeros((4, 2), np.int64),
            strangeness=np.zeros(4),
            class_sim=np.zeros((4, 2)),
            nn_prob=np.zeros((4, 2)),
            nn_scored=np.zeros(4, bool),
            open_question=np.zeros(4, bool),
            through_conflicts=False,
            loss_curves=np.zeros((len(steps), 8), np.float32),
            member_steps=np.array(steps, np.int64),
            member_seconds=np.ones(len(steps)),
        )

    assert (
        describe_training(result([300, 120, 300]), "cnn")
        == "3 cnn members of 120-300 steps, every sample scored 2+ times"
    )
    assert describe_training(result([300, 300]), "cnn").startswith("2 cnn members of 300 steps")
    assert describe_training(result([]), "cnn") == "no cnn members trained"


@pytest.mark.slow
def test_a_folder_without_a_labels_file_runs_under_dvc(tmp_path):
    from tests.test_folder import a_folder_of_digits

    folder = make_copy(tmp_path, **FAST_TRAIN)
    a_folder_of_digits(folder / "data" / "mine", n=60)
    # data that carry their own labels name themselves as decode.labels too, as DVC needs a path there
    # (docs: "Your data: Forms")
    set_params(folder, "decode", images="data/mine", labels="data/mine")
    dvc("repro", cwd=folder)
    assert (folder / "results" / "review.html").exists()
    assert "up to date" in dvc("status", cwd=folder)
    some_image = next((folder / "data" / "mine").rglob("*.png"))
    (folder / "data" / "mine" / "one" / "digit9999.png").write_bytes(some_image.read_bytes())
    assert "changed" in dvc("status", cwd=folder)  # a new image is new input
