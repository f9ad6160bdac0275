"""A folder of one's own, as README's "Your own data in three commands" has it: run, review, export; and the
export read back in."""

import csv
import sys

import numpy as np
import pytest
from PIL import Image

from pipeline.plant import load_source
from tests.test_pipeline import sh
from tests.test_review import page_json

MOVED = 6  # digits filed under another class


def a_folder_of_digits(root, n=240, seed=0):
    """root/<digit name>/<file>.png: n MNIST test digits, MOVED of them in a wrong class folder; their file names."""
    images, labels = load_source("mnist")
    rng = np.random.default_rng(seed)
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    moved = []
    for k, i in enumerate(rng.choice(len(labels), n, replace=False)):
        label = labels[i] if k >= MOVED else (labels[i] + 1 + rng.integers(9)) % 10
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i, :, :, 0]).save(folder / f"digit{k:04d}.png")
        if k < MOVED:
            moved.append(f"digit{k:04d}.png")
    return moved


def flagged_files(folder):
    rows = csv.DictReader(open(folder / "results" / "issues.csv"))
    return {row["path"].rsplit("/", 1)[-1] for row in rows if row["flagged"] == "1"}


@pytest.mark.slow
def test_the_readmes_three_commands_run_review_and_export_a_folder(tmp_path):
    moved = a_folder_of_digits(tmp_path / "my_photos")
    twins = [sys.executable, "-m", "pipeline.cli"]
    done = sh(*twins, "run", "--images", "my_photos/", cwd=tmp_path)
    assert "results in results/" in done.stderr
    found = flagged_files(tmp_path)
    assert len(found & set(moved)) >= MOVED // 2, (found, moved)
    page = (tmp_path / "results" / "review.html").read_text()
    rows = list(csv.DictReader(open(tmp_path / "results" / "issues.csv")))
    assert {card["index"] for card in page_json(page)["cards"]} >= {
        int(r["index"]) for r in rows if r["flagged"] == "1"
    }
    before = {p.relative_to(tmp_path) for p in (tmp_path / "my_photos").rglob("*")}
    # the page's download, as a person who accepted every suggestion would have it
    with open(tmp_path / "review-choices.csv", "w") as f:
        f.write("index,path,given,suggested,kind,choice,new_label\n")
        for row in rows:
            if row["flagged"] == "1":
                f.write(
                    f"{row['index']},{row['path']},{row['given']},{row['suggested']},evidence,accept,"
                    f"{row['suggested']}\n"
                )
    dry = sh(*twins, "export", "--out", "clean", "--choices", "review-choices.csv", "--dry-run", cwd=tmp_path)
    assert f"{len(found)} relabelled" in dry.stdout and not (tmp_path / "clean").exists()
    sh(*twins, "export", "--out", "clean", "--choices", "review-choices.csv", "--copy", cwd=tmp_path)
    assert {p.relative_to(tmp_path) for p in (tmp_path / "my_photos").rglob("*")} == before  # untouched
    changes = list(csv.DictReader(open(tmp_path / "clean" / "changes.csv")))
    assert len(changes) == len(found) and all(c["action"] == "relabel" for c in changes)
    # read back: the manifest of the cleaned copy runs as any data set, the applied flags gone
    again = sh(*twins, "run", "--images", "clean/manifest.csv", "--results", "again", cwd=tmp_path)
    assert again.returncode == 0
    refound = {
        row["path"].rsplit("/", 1)[-1].split("-", 1)[-1]
        for row in csv.DictReader(open(tmp_path / "again" / "issues.csv"))
        if row["flagged"] == "1"
    }
    assert not refound & found
    refused = sh(*twins, "export", "--out", "my_photos", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "not an empty folder" in refused.stderr


@pytest.mark.slow
def test_an_unlabelled_folder_gets_suggested_labels_an_embedding_and_a_labelled_copy(tmp_path):
    a_folder_of_digits(tmp_path / "photos")
    unlabelled = tmp_path / "photos" / "unlabelled"
    unlabelled.mkdir()
    truth = {}
    for folder in sorted((tmp_path / "photos").iterdir()):
        for file in sorted(folder.glob("digit01*.png")) if folder != unlabelled else []:  # 100-199: moved, unlabelled
            truth[file.name] = folder.name
            file.rename(unlabelled / file.name)
    twins = [sys.executable, "-m", "pipeline.cli"]
    done = sh(*twins, "run", "--images", "photos/", cwd=tmp_path)
    assert f"{len(truth)} of 240 samples carry no label" in done.stderr
    rows = list(csv.DictReader(open(tmp_path / "results" / "samples.csv")))
    guessed = {row["path"].rsplit("/", 1)[-1]: row for row in rows if row["given"] == ""}
    assert set(guessed) == set(truth)
    right = sum(row["suggested"] == truth[name] for name, row in guessed.items())
    assert right >= 0.6 * len(truth), right  # 140 labelled digits teach the members
    assert all(row["flagged"] == "0" for row in guessed.values())
    assert np.load(tmp_path / "results" / "embedding.npy").shape == (len(rows), 10)
    metrics = __import__("json").loads((tmp_path / "metrics.json").read_text())
    assert metrics["unlabelled"] == len(truth)
    sh(*twins, "export", "--out", "kept", "--leave-unlabelled", cwd=tmp_path)
    kept = list(csv.DictReader(open(tmp_path / "kept" / "manifest.csv")))
    assert sum(row["label"] == "" for row in kept) >= len(truth) - 10  # still unlabelled (outliers left out)
    sh(*twins, "export", "--out", "filled", "--label-unlabelled", cwd=tmp_path)
    filled = list(csv.DictReader(open(tmp_path / "filled" / "manifest.csv")))
    assert all(row["label"] for row in filled)
    changes = list(csv.DictReader(open(tmp_path / "filled" / "changes.csv")))
    assert sum(c["action"] == "label" for c in changes) >= len(truth) - 10
    assert all(c["given"] == "" for c in changes if c["action"] == "label")  # unlabelled: empty, as in samples.csv
