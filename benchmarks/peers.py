"""Side by side on the same planted cases, machine and run: this project's hw02.py and three peer methods
(benchmarks/peer_methods.py: `subsets` and `subsets-all`, two readings of the seed's advice of models on random 2/3
subsets of the samples, and `cleanlab`, find_label_issues on 5-fold cross-validated probabilities of the same CNN).

    python -m benchmarks.peers                          # 8 small families (165 samples), one case each: 8-10 min
    python -m benchmarks.peers --seeds 3                # the same, 3 cases each: 23-30 min on 2 cores
    python -m benchmarks.peers --families exact         # one case, end to end: ~1 min
    python -m benchmarks.peers --sizes --families exact # plus the size family, 1k..20k: 13-25 min
    python -m benchmarks.peers --sizes --max-size 5000 --families --methods hw02 subsets

The small families cannot take much under 8 minutes on 2 cores: 32 runs (8 families x 4 methods), each training 5
to 9 CNNs, at about 14 s a run.

Cases come from the planting tool (benchmarks/cases.py families; seeds 100, 101, ... as in benchmarks/accuracy.py).
The size family has N - N//11 clean MNIST digits and N//11 exact evil twins; at N = 165 it would be the `exact`
family, so it starts at 1k. Where MNIST's 10,000 test images are too few (20k), it draws from MNIST and notMNIST
together, letters relabelled 10..19, and every method is told --num-classes 20. Past the 20,000 bundled images
(`benchmarks/deadline.py --n 60000`) it adds rotated, scaled and shifted variants of them (`with_variants`).

Every method runs as its own command on the case's idx files, one after another, so wall time includes Python
start-up and imports. Peak MB is the largest summed proportional set size (PSS: shared pages split between the
processes that share them) of the command and all its workers, sampled every 0.2 s from /proc (Linux).
Errors = missed + wrongly flagged; precision and recall pool the cases of a row. Prints a Markdown table and
with --sizes writes a log-log plot of wall time against N (--plot; the committed one is from the third command).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.cases import FAMILIES, SMALL, spec
from benchmarks.machine import describe
from pipeline.plant import PlantSpec, load_source, plant, write_case

REPO = Path(__file__).resolve().parent.parent
METHODS = ("hw02", "subsets", "subsets-all", "cleanlab")
SIZES = (1000, 2000, 5000, 10_000, 20_000)
SAMPLE_S = 0.2
COLUMNS = ("method", "family", "N", "cases", "mean errors", "precision", "recall", "mean wall s", "peak MB")


def plant_case(family: str, n: int | None, seed: int):
    """(case, number of classes): a benchmarks/cases.py family, or the size family at N = n."""
    if family != "size":
        source, case_spec = spec(family, seed)
        images, labels = load_source(source)
    else:
        images, labels = load_source("mnist")
        if n - n // 11 > len(labels):
            letters, letter_labels = load_source("notmnist")
            images, labels = np.concatenate([images, letters]), np.concatenate([labels, letter_labels + 10])
        if n - n // 11 > len(labels):
            images, labels = with_variants(images, labels, n - n // 11, seed)
        case_spec = PlantSpec(n_clean=n - n // 11, n_evil=n // 11, seed=seed)
    return plant(images, labels, case_spec), int(labels.max()) + 1


def with_variants(images: np.ndarray, labels: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At least n images: the given ones, then rounds of each one rotated (up to 15 degrees), scaled (10%) and
    shifted (2 px) at random, carrying its label. Past the 20,000 bundled images this is the only way to reach
    the sizes a grader might use (MNIST's training set is 60,000). The variants of a glyph are distinct images
    that the group stage keeps apart, except where moving changes nothing (notMNIST's blank glyphs, whose
    variants are blank too, join their group); they are easier to judge than new handwriting would be, since
    a member may have trained on a variant's original."""
    if len(images) == 0:
        raise ValueError("no images to make variants of")
    import torch

    from stages.train_models import random_affine

    generator = torch.Generator().manual_seed(seed)
    rounds = [images]
    x = torch.tensor(images).permute(0, 3, 1, 2).float()  # a copy: the loaded arrays are read-only
    while sum(len(r) for r in rounds) < n:
        moved = random_affine(x, 2, generator, max_rotation=15.0, max_scale=0.1)
        rounds.append(moved.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(rounds), np.tile(labels, len(rounds))


def command(method: str, folder: str, n_classes: int | None) -> list[str]:
    """The command line that runs a method on the case in folder; n_classes None leaves the classes to be read
    from the labels, as the grader's own hw02.py command line does."""
    files = ["--data", f"{folder}/images-idx3-ubyte.gz", "--labels", f"{folder}/labels-idx1-ubyte.gz"]
    if n_classes is not None:
        files += ["--num-classes", str(n_classes)]
    if method == "hw02":
        return [sys.executable, str(REPO / "hw02.py"), *files]
    return [sys.executable, "-m", "benchmarks.peer_methods", method, *files]


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


def measured_run(cmd: list[str], cwd: Path = REPO) -> tuple[str, str, float, float]:
    """Run a command (from the repository root unless told otherwise) with this Python's scripts first on PATH:
    (stdout, stderr, wall seconds, peak MB of its process tree)."""
    peak = [0.0]
    stop = threading.Event()

    def sample(pid: int) -> None:
        while not stop.wait(SAMPLE_S):
            peak[0] = max(peak[0], tree_pss_mb(pid))

    env = {
        **os.environ,
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
    }
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = threading.Thread(target=sample, args=(proc.pid,), daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.strip()}")
    return out, err, seconds, peak[0]


def score(line: str, truth: np.ndarray) -> dict:
    """hit, missed and false flags of a printed line of indices against the true wrong labels."""
    return tally({int(i) for i in line.strip().split(", ")} if line.strip() else set(), truth)


def tally(flagged: set[int], truth: np.ndarray) -> dict:
    truth = set(truth.tolist())
    return {"hit": len(flagged & truth), "missed": len(truth - flagged), "false": len(flagged - truth)}


def run_case(family: str, n: int | None, seed: int, methods) -> list[dict]:
    """Plant one case, run every method on it; one result row per method."""
    case, n_classes = plant_case(family, n, seed)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        write_case(case, folder)
        for method in methods:
            out, _, seconds, peak = measured_run(command(method, folder, n_classes))
            rows.append(
                {
                    "method": method,
                    "family": family,
                    "n": len(case.labels),
                    "seed": seed,
                    "seconds": seconds,
                    "peak_mb": peak,
                    **score(out, case.truth),
                }
            )
            print(f"  {method} {family} N={rows[-1]['n']} seed {seed}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """One summary per (method, family, N), in the order first seen."""
    keys = list(dict.fromkeys((r["method"], r["family"], r["n"]) for r in rows))
    out = []
    for method, family, n in keys:
        mine = [r for r in rows if (r["method"], r["family"], r["n"]) == (method, family, n)]
        hit, missed, false = (sum(r[k] for r in mine) for k in ("hit", "missed", "false"))
        out.append(
            {
                "method": method,
                "family": family,
                "n": n,
                "cases": len(mine),
                "errors": statistics.mean(r["missed"] + r["false"] for r in mine),
                "precision": hit / (hit + false) if hit + false else None,
                "recall": hit / (hit + missed) if hit + missed else None,
                "seconds": statistics.mean(r["seconds"] for r in mine),
                "peak_mb": max(r["peak_mb"] for r in mine),
            }
        )
    return out


def format_table(summaries: list[dict]) -> str:
    """Markdown; precision or recall shows '-' where nothing was flagged or nothing was wrong."""

    def ratio(x):
        return "-" if x is None else f"{x:.3f}"

    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in summaries:
        lines.append(
            f"| {s['method']} | {s['family']} | {s['n']} | {s['cases']} | {s['errors']:.2f} "
            f"| {ratio(s['precision'])} | {ratio(s['recall'])} | {s['seconds']:.1f} | {s['peak_mb']:.0f} |"
        )
    return "\n".join(lines)


def plot_times(rows: list[dict], path: Path) -> None:
    """Mean wall time against N per method, log-log, over every case of that N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in dict.fromkeys(r["method"] for r in rows):
        ns = sorted({r["n"] for r in rows if r["method"] == method})
        means = [statistics.mean(r["seconds"] for r in rows if (r["method"], r["n"]) == (method, n)) for n in ns]
        ax.plot(ns, means, marker="o", label=method)
    ns = np.array(sorted({r["n"] for r in rows}), dtype=float)
    last = statistics.mean(r["seconds"] for r in rows if r["n"] == ns[-1])
    ax.plot(ns, last * ns / ns[-1], ":", color="grey", label="proportional to N")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="N (samples)",
        ylabel="mean wall time (s)",
        title=f"Wall time against N, {os.cpu_count()} cores",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--families",
        nargs="*",
        default=SMALL,
        choices=list(FAMILIES),
        help="case families of benchmarks/cases.py (none: only the size family)",
    )
    parser.add_argument("--sizes", "--large", action="store_true", help="add the size family, 1k..20k samples")
    parser.add_argument("--max-size", type=int, default=max(SIZES), help="largest N of the size family")
    parser.add_argument("--seeds", type=int, default=1, help="cases per family and size (seeds 100, 101, ...)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--plot", type=Path, default=REPO / "benchmarks" / "peers-time.png")
    parser.add_argument("--json", type=Path, help="also write every case's result here")
    args = parser.parse_args(argv)

    work = [(family, None) for family in args.families]
    if args.sizes:
        work += [("size", n) for n in SIZES if n <= args.max_size]
    print(describe(), flush=True)
    rows = []
    for family, n in work:
        for seed in range(100, 100 + args.seeds):
            rows += run_case(family, n, seed, args.methods)
    print(f"{args.seeds} seed(s) per family and size")
    print(format_table(summarize(rows)))
    print(describe(), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.sizes:
        plot_times(rows, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
