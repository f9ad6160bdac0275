"""Running a method on a case as a user would: hw02.py (ours, the graded run) or a peer method
(benchmarks/harness/peers.py) as its own command on the case's idx files, so wall time includes Python's start-up
and imports, with the command's CPU seconds and the peak memory of it and its workers; and the pipeline as
`dvc repro` in a repository of its own.

Peak MB is the largest summed proportional set size (PSS: shared pages split between the processes that share
them) of the command and all its workers, sampled every 0.2 s from /proc (Linux; 0 elsewhere).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness.data import REPO
from benchmarks.harness.scores import Tally, parse_line, tally
from pipeline.plant import PlantedCase, write_case

SAMPLE_S = 0.2  # how often the memory of a command's processes is read
METHODS = ("hw02", "subsets", "subsets-all", "cleanlab")  # what runs as a command: ours, then the peers
PIPELINE_FILES = ["pipeline", "stages", "dvc.yaml", "params.yaml", ".dvc/config", ".dvcignore", "data/sample"]


@dataclass(frozen=True)
class CommandRun:
    """What one command printed, and what it cost: wall and CPU seconds (its own and its workers'), peak MB."""

    out: str
    err: str
    seconds: float
    cpu: float
    peak_mb: float

    @property
    def flagged(self) -> set[int]:
        """The indices its line holds (hw02.py's output)."""
        return parse_line(self.out)

    def score(self, truth) -> Tally:
        return tally(self.flagged, truth)


def command(method: str, folder: str | Path, n_classes: int | None = None) -> list[str]:
    """The command line that runs a method (METHODS) on the case in folder; n_classes None leaves the classes to
    be read from the labels, as the grader's own hw02.py command line does."""
    files = ["--data", f"{folder}/images-idx3-ubyte.gz", "--labels", f"{folder}/labels-idx1-ubyte.gz"]
    if n_classes is not None:
        files += ["--num-classes", str(n_classes)]
    if method == "hw02":
        return [sys.executable, str(REPO / "hw02.py"), *files]
    return [sys.executable, "-m", "benchmarks.harness.peers", method, *files]


@contextmanager
def case_folder(case: PlantedCase) -> Iterator[str]:
    """A temporary folder holding the case's idx files (and truth.txt), removed afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        write_case(case, folder)
        yield folder


def run_methods(case: PlantedCase, methods, n_classes: int | None = None, *extra: str) -> dict[str, CommandRun]:
    """Each method as its own command on the case, one after another (extra: more options for each)."""
    with case_folder(case) as folder:
        return {method: measured_run(command(method, folder, n_classes) + list(extra)) for method in methods}


def under_budgets(case: PlantedCase, n_classes: int | None, budgets) -> Iterator[tuple[float, CommandRun, str]]:
    """hw02.py -v on the case once per time budget: (budget, its run, the training line it logs)."""
    with case_folder(case) as folder:
        for budget in budgets:
            run = measured_run(command("hw02", folder, n_classes) + ["--time-budget", f"{budget:g}", "-v"])
            training = next((line.split("train: ", 1)[1] for line in run.err.splitlines() if "train: " in line), "")
            yield budget, run, training


def tree_pss_mb(root: int) -> float:
    """Summed PSS of a process and all its descendants, in MB (0 where /proc cannot tell)."""
    if not os.path.isdir("/proc"):
        return 0.0
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) / 1024
                    break
        except OSError:
            continue
    return total


def children_cpu() -> float:
    """User + system seconds of this process's reaped children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured_run(cmd: list[str], cwd: Path = REPO) -> CommandRun:
    """Run a command (from the repository root unless told otherwise) with this Python's scripts first on PATH;
    a failure stops the benchmark with what the command said."""
    peak = [0.0]
    stop = threading.Event()

    def sample(pid: int) -> None:
        while not stop.wait(SAMPLE_S):
            peak[0] = max(peak[0], tree_pss_mb(pid))

    cpu = children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=command_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = threading.Thread(target=sample, args=(proc.pid,), daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{err.strip()}")
    return CommandRun(out, err, seconds, children_cpu() - cpu, peak[0])


def in_fresh_process(function: str, *args) -> dict:
    """benchmarks.MODULE.FUNCTION(*args) run in a fresh Python, so that the peak resident set it measures
    (ru_maxrss) is its own; what it returns, through JSON. The caller should stay small: Linux carries ru_maxrss
    over exec."""
    module, name = function.rsplit(".", 1)
    code = f"import json, sys, {module} as m; print(json.dumps(m.{name}(*json.loads(sys.argv[1]))))"
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)], cwd=REPO, env=command_env(), capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"{function}{args} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def command_env() -> dict[str, str]:
    """The environment a command runs in: this repository first on PYTHONPATH, this Python's scripts on PATH."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
    }


def pipeline_repo(repo: Path, **sections: dict) -> None:
    """Make `repo` (which may already hold the data) a fresh git repository with a copy of the pipeline, whose
    params.yaml sections are updated with `sections`, for `dvc repro` there (in command_env())."""
    import yaml

    for name in PIPELINE_FILES:
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, target)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in sections.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "case"],
    ):
        subprocess.run(cmd, cwd=repo, check=True, env=command_env(), capture_output=True)
