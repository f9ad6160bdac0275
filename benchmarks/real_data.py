"""Real data through every door: idx files, a folder, a manifest, an .npz, the Python API.

One planted case in every input form: each answer's errors and wall time, and whether it is the idx files' line.

    python -m benchmarks real_data                 # MNIST exact case (165 digits), `dvc repro` on the folder: ~4 min
    python -m benchmarks real_data --no-dvc
    python -m benchmarks real_data --family colour # the 20 CIFAR-10 photos with 3 evil twins, folders named by class

The folder is read in its own order (class folders, then file names), so its samples are numbered differently
and the ensemble draws different subsets: its answer is compared by errors, mapped back through the file names.
The manifest and the arrays keep the idx order, so their answers must be the very same line. `dvc repro` runs on a
copy of the pipeline in a temporary git repository whose params.yaml points decode.images at the folder.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.harness.cases import FAMILIES, spec
from benchmarks.harness.data import REPO
from benchmarks.harness.runs import command_env, pipeline_repo
from pipeline.api import find_issues
from pipeline.plant import PlantSpec, load_source, plant, write_case
from pipeline.runner import find_suspects
from stages.aggregate import format_indices
from stages.decode import DecodeParams, read_dataset

COLOUR = ("cifar20", dict(n_clean=20, n_evil=3))  # every photo at hand; a smoke test of colour, not of accuracy
CLASS_NAMES = {"cifar20": REPO / "data" / "cifar10-classes.txt"}  # in sorted order, so folders number alike


def write_forms(case, folder: Path, class_names: list[str] | None) -> None:
    """The case as idx files, an image folder (class folders named by class name where there are names, files
    by sample index), a manifest and an .npz."""
    from PIL import Image

    write_case(case, folder / "idx")
    rows = ["path,label"]
    for i, (image, label) in enumerate(zip(case.images, case.labels)):
        name = class_names[label] if class_names else str(int(label))
        path = folder / "images" / name / f"{i:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
        rows.append(f"images/{name}/{i:06d}.png,{label}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    np.savez(folder / "arrays.npz", images=case.images, labels=case.labels)


def answer(images_path: Path, labels_path: Path | str = "") -> tuple[list[int], list[str] | None, float]:
    """(flagged indices, source paths, seconds) through decode and the in-process runner (as `twins run`)."""
    start = time.perf_counter()
    data = read_dataset(DecodeParams(str(images_path), str(labels_path)))
    run = find_suspects(data.images, data.labels)
    return np.flatnonzero(run.decisions.flagged).tolist(), data.paths, time.perf_counter() - start


def to_case_index(paths: list[str], flagged: list[int]) -> list[int]:
    return sorted(int(Path(paths[i]).stem) for i in flagged)


def dvc_on_folder(folder: Path) -> tuple[list[int], float]:
    """`dvc repro` in a fresh git repository holding the pipeline and the image folder; flagged case indices."""
    repo = folder / "dvc-repo"
    shutil.copytree(folder / "images", repo / "data" / "images")
    pipeline_repo(repo, decode={"images": "data/images"})
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"], cwd=repo, env=command_env(), capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"dvc repro failed:\n{done.stdout}\n{done.stderr}")
    import csv

    rows = list(csv.DictReader(open(repo / "results" / "samples.csv")))
    return sorted(int(Path(r["path"]).stem) for r in rows if r["flagged"] == "1"), seconds


def options(parser) -> None:
    parser.add_argument("--family", default="exact", choices=[*FAMILIES, "colour"], help="a planted family, or colour")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--no-dvc", action="store_true", help="leave out `dvc repro` on the folder")


def run(args, report) -> None:
    if args.family == "colour":
        source, case_spec = COLOUR[0], PlantSpec(**COLOUR[1], seed=args.seed)
    else:
        source, case_spec = spec(args.family, args.seed)
    case = plant(*load_source(source), case_spec)
    class_names = CLASS_NAMES[source].read_text().split() if source in CLASS_NAMES else None
    truth = set(case.truth.tolist())
    report.note(f"{args.family} seed {args.seed}: {len(case.labels)} samples, {len(truth)} wrong labels")
    table = report.table({"input": "", "errors": "d", "same line as idx": "", "wall s": ".1f", "wall / idx": ".2f"})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_forms(case, folder, class_names)
        idx_images = next((folder / "idx").glob("images-idx*"))  # idx3 for grey, idx4 for colour
        idx, _, idx_seconds = answer(idx_images, folder / "idx" / "labels-idx1-ubyte.gz")

        def row(name: str, flagged: list[int], seconds: float) -> None:
            values = [name, len(set(flagged) ^ truth), flagged == idx, seconds, seconds / idx_seconds]
            table.add(dict(zip(table.columns, values)))

        row("idx files (twins run)", idx, idx_seconds)
        flagged, _, seconds = answer(folder / "manifest.csv")
        row("CSV manifest (twins run)", flagged, seconds)
        flagged, _, seconds = answer(folder / "arrays.npz")
        row(".npz arrays (twins run)", flagged, seconds)
        start = time.perf_counter()
        result = find_issues(case.images, case.labels)
        row("arrays (Python API)", sorted(result.ranked().tolist()), time.perf_counter() - start)
        flagged, paths, seconds = answer(folder / "images")
        row("image folder, own order (twins run)", to_case_index(paths, flagged), seconds)
        if not args.no_dvc:
            flagged, seconds = dvc_on_folder(folder)
            row("image folder, own order (dvc repro)", flagged, seconds)
        report.note(f"idx answer: {format_indices(idx)}")
