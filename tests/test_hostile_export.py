"""Hostile and careless input, round 4 (issue 47): every artifact and choices file bound to the data it describes,
outputs that never land in or on the data, names that are data everywhere, runs killed from outside, parameters
that cannot blow up. Each test is one probe, numbered by the issue's case it holds (README, "Reliability";
docs/reliability.md lists the families)."""

import contextlib
import csv
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, pictures, run_cli
from PIL import Image

from pipeline import artifacts, steps
from pipeline.params import load_params, yaml_value
from pipeline.paths import Paths
from stages.aggregate import AggregateParams
from stages.decode import Dataset, DecodeParams
from stages.errors import InputError
from stages.export import ExportOptions
from stages.external import ExternalParams
from stages.group import GroupParams
from stages.report import ReportParams
from stages.tables import cell, plain_cell
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


# -- the data set the probes below run on ----------------------------------------------------------------------------


def photos(root, classes=("a", "b"), per_class=5, seed=0, name="{i}.png"):
    """A folder of class folders of 12 x 12 PNGs, different pictures per class and seed; the last picture of the
    second class is a copy of the first class's first (a twin conflict, so the report draws a montage)."""
    root.mkdir(parents=True, exist_ok=True)
    for c, cls in enumerate(classes):
        folder = root / cls if isinstance(cls, str) else Path(os.fsdecode(os.path.join(os.fsencode(root), cls)))
        folder.mkdir(exist_ok=True)
        for i, image in enumerate(pictures(per_class, 12, 12, seed=100 * seed + c)):
            if c == 1 and i == per_class - 1:
                image = pictures(1, 12, 12, seed=100 * seed)[0]
            file = name.format(i=i) if isinstance(name, str) else os.fsdecode(name % i)
            Image.fromarray(image).save(folder / file, format="PNG")
    return root


def run_on(images, root, labels="") -> Paths:
    """The whole pipeline on `images`, no member trained (a budget too short: neighbours decide, in seconds), its
    files in `root` as `twins run` lays them out."""
    paths = Paths().under(root)
    run_on_paths(DecodeParams(str(images), str(labels)), paths)
    return paths


KEEP_ALL = ExportOptions(relabel=False, drop_outliers=False, drop_odd=False)


def export(paths: Paths, out, **options):
    return steps.export(out, paths=paths, **options)


def choices_file(path, rows, header=("index", "path", "choice", "new_label")):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def refused(call, *problems):
    """The InputError `call` raises: one line holding every one of `problems`."""
    with pytest.raises(InputError) as exc:
        call()
    message = str(exc.value)
    assert "\n" not in message and all(p in message for p in problems), message
    return message


# -- 1. every artifact and choices file bound to the data it describes -----------------------------------------------


def test_1_export_refuses_the_decisions_of_other_data_of_the_same_size(tmp_path):
    paths = run_on(photos(tmp_path / "A"), tmp_path / "run")
    steps.decode(DecodeParams(str(photos(tmp_path / "B", seed=1)), ""), paths)
    refused(lambda: export(paths, tmp_path / "clean"), paths.decisions, "was made from other data", "twins aggregate")
    assert not (tmp_path / "clean").exists()


def test_1_every_later_stage_refuses_an_artifact_of_other_data(tmp_path):
    paths = run_on(photos(tmp_path / "A"), tmp_path / "run")
    steps.decode(DecodeParams(str(photos(tmp_path / "B", seed=1)), ""), paths)
    refused(lambda: steps.train(TrainParams(time_budget_s=0.001), paths), paths.groups, "twins group")
    refused(lambda: steps.aggregate(AggregateParams(), paths), paths.groups, "was made from other data")
    refused(lambda: steps.report(ReportParams(), paths), paths.groups, "was made from other data")


def test_1_evidence_brought_for_other_data_is_refused_by_train(tmp_path):
    paths = run_on(photos(tmp_path / "A"), tmp_path / "run")  # its external.npz: checked against A
    steps.decode(DecodeParams(str(photos(tmp_path / "B", seed=1)), ""), paths)
    steps.group(GroupParams(), paths)
    refused(lambda: steps.train(TrainParams(time_budget_s=0.001), paths), paths.external, "twins external")


def test_1_twins_export_after_decoding_other_data_is_one_line_and_exit_2(tmp_path):
    photos(tmp_path / "A")
    photos(tmp_path / "B", seed=1)
    assert run_cli("run", "--images", "A", "-S", "train.time_budget_s=0.001", cwd=tmp_path).returncode == 0
    assert run_cli("decode", "--images", "B", cwd=tmp_path).returncode == 0
    done = run_cli("export", "--out", "clean", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    assert "artifacts/decisions.npz: was made from other data" in done.stderr and not (tmp_path / "clean").exists()


@pytest.mark.parametrize("copy", [True, False], ids=["copy", "manifest"])
def test_1_a_file_replaced_after_the_run_is_not_exported_under_the_old_decision(tmp_path, copy):
    data = photos(tmp_path / "photos")
    paths = run_on(data, tmp_path / "run")
    Image.fromarray(pictures(1, 12, 12, seed=77)[0]).save(data / "a" / "2.png")  # new content, same name
    refused(lambda: export(paths, tmp_path / "clean", copy=copy), "a/2.png", "has changed since it was decoded")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "run"]  # no copy, no staging folder left


def test_1_choices_made_before_an_image_was_added_are_refused_not_applied_by_index(tmp_path):
    data = photos(tmp_path / "photos")
    paths = run_on(data, tmp_path / "run")
    rows = list(csv.DictReader(open(paths.results + "/samples.csv")))
    old = choices_file(tmp_path / "old.csv", [[rows[7]["index"], rows[7]["path"], "remove", ""]])
    Image.fromarray(pictures(1, 12, 12, seed=55)[0]).save(data / "a" / "0a.png")  # sorts before a/1.png
    run_on(data, tmp_path / "run")
    refused(lambda: export(paths, tmp_path / "clean", choices=old), "row 2: sample 7 is", "not '", "other data")


def test_1_matching_index_and_path_without_a_dataset_column_are_applied(tmp_path):
    paths = run_on(photos(tmp_path / "photos"), tmp_path / "run")
    rows = list(csv.DictReader(open(paths.results + "/samples.csv")))
    older_page = choices_file(tmp_path / "c.csv", [[rows[7]["index"], rows[7]["path"], "remove", ""]])
    changes = export(paths, tmp_path / "clean", choices=older_page)
    assert changes.changed().tolist() == [7] and not changes.keep[7]


def test_1_a_dataset_column_of_other_data_is_refused_and_of_these_data_applied(tmp_path):
    paths = run_on(photos(tmp_path / "photos"), tmp_path / "run")
    rows = list(csv.DictReader(open(paths.results + "/samples.csv")))
    header = ("index", "path", "choice", "new_label", "dataset")
    other = choices_file(tmp_path / "o.csv", [[3, rows[3]["path"], "remove", "", "0123456789abcdef"]], header)
    refused(lambda: export(paths, tmp_path / "clean", choices=other), "row 2: was made on the review page of other")
    fingerprint = artifacts.load(paths.decoded, Dataset).fingerprint
    ours = choices_file(tmp_path / "c.csv", [[3, rows[3]["path"], "relabel", "b", fingerprint]], header)
    assert export(paths, tmp_path / "clean", choices=ours).action[3] == "relabel"


@pytest.mark.parametrize(
    "rows, problem",
    [
        ([[3, "{3}", "remove", ""], [3, "{3}", "relabel", "b"]], "rows 2 and 3 both choose for sample 3"),
        ([["٣", "{3}", "remove", ""]], "row 2: index '٣' is not a sample number (digits 0-9)"),
        ([["3_1", "{3}", "remove", ""]], "row 2: index '3_1' is not a sample number"),
        ([["-1", "", "remove", ""]], "row 2: index '-1' is not a sample number"),
        ([[3, "{4}", "remove", ""]], "row 2: sample 3 is"),
        ([], "holds no choices (a header alone)"),
    ],
    ids=["twice", "arabic-indic-digit", "underscore", "negative", "wrong-path", "header-alone"],
)
def test_1_duplicated_or_malformed_choices_rows_are_refused(tmp_path, rows, problem):
    paths = run_on(photos(tmp_path / "photos"), tmp_path / "run")
    files = [row["path"] for row in csv.DictReader(open(paths.results + "/samples.csv"))]
    rows = [[cell.format(*files) if isinstance(cell, str) else cell for cell in row] for row in rows]
    choices = choices_file(tmp_path / "c.csv", rows)
    refused(lambda: export(paths, tmp_path / "clean", choices=choices), choices, problem)
    assert not (tmp_path / "clean").exists()


def test_1_an_empty_choices_file_is_refused_not_an_unchanged_copy(tmp_path):
    paths = run_on(photos(tmp_path / "photos"), tmp_path / "run")
    (tmp_path / "c.csv").write_text("")
    refused(lambda: export(paths, tmp_path / "clean", choices=str(tmp_path / "c.csv")), "c.csv: is empty")


@pytest.mark.parametrize("shape", ["rows", "one-line"])
def test_1_a_huge_choices_file_is_refused_in_bounded_memory(tmp_path, shape):
    from pipeline.choices import read_choices

    paths = run_on(photos(tmp_path / "photos"), tmp_path / "run")
    data = artifacts.load(paths.decoded, Dataset)
    huge = tmp_path / "c.csv"
    with open(huge, "w") as f:  # about 40 MB
        f.write("index,path,choice,new_label\n")
        if shape == "rows":
            f.writelines(f"{i % 10},x,keep,\n" for i in range(4_000_000))
        else:
            f.write("1," + "x" * 40_000_000 + ",keep,\n")
    tracemalloc.start()
    message = refused(lambda: read_choices(str(huge), data))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 2**20, peak
    assert "holds more than 10 rows" in message or "longer than 1,048,576 characters" in message


# -- 2. outputs never land in or on the data -------------------------------------------------------------------------


def run_paths(root, **given) -> Paths:
    return replace(Paths().under(root), **{name: str(path) for name, path in given.items()})


@pytest.mark.parametrize(
    "given, problem",
    [
        ({"results": "photos/results"}, "lies inside {root}/photos (the data)"),
        ({"results": "photos"}, "is {root}/photos (the data)"),
        ({"decoded": "photos/a/decoded.npz"}, "lies inside {root}/photos (the data)"),
        ({"metrics": "run/results/samples.csv"}, "overlaps --results"),
        ({"timings": "run/results", "results": "run/results"}, "overlaps --results"),
    ],
    ids=["results-inside", "results-is-data", "artifact-inside", "metrics-over-samples", "two-folders-one-path"],
)
def test_2_outputs_inside_or_on_the_data_or_each_other_are_refused_before_any_work(tmp_path, given, problem):
    photos(tmp_path / "photos")
    paths = run_paths(tmp_path / "run", **{name: tmp_path / path for name, path in given.items()})
    decoding = DecodeParams(str(tmp_path / "photos"), "")
    before = sorted(tmp_path.rglob("*"))
    refused(lambda: run_on_paths(decoding, paths), problem.format(root=tmp_path))
    assert sorted(tmp_path.rglob("*")) == before


def run_on_paths(decoding, paths):
    sections = {"group": GroupParams(), "train": TrainParams(time_budget_s=0.001), "aggregate": AggregateParams()}
    steps.run_all({"decode": decoding, "external": ExternalParams(), **sections, "report": ReportParams()}, paths)


def test_2_decoded_naming_the_input_npz_is_refused_and_the_npz_kept(tmp_path):
    np.savez(tmp_path / "data.npz", images=pictures(8, 12, 12), labels=np.arange(8) % 2)
    before = (tmp_path / "data.npz").read_bytes()
    paths = run_paths(tmp_path, decoded=tmp_path / "data.npz")
    refused(lambda: steps.decode(DecodeParams(str(tmp_path / "data.npz"), ""), paths), "data.npz (the data)")
    assert (tmp_path / "data.npz").read_bytes() == before


def test_2_results_over_a_manifest_named_like_a_table_are_refused(tmp_path):
    photos(tmp_path / "photos")
    rows = [[f"photos/{c}/{i}.png", c] for c in "ab" for i in range(5)]
    (tmp_path / "samples.csv").write_text("".join(f"{p},{c}\n" for p, c in rows))
    paths = run_paths(tmp_path / "run", results=tmp_path)
    refused(lambda: run_on_paths(DecodeParams(str(tmp_path / "samples.csv"), ""), paths), "would write over")


def test_2_twins_run_from_inside_the_data_folder_is_one_line_and_writes_nothing(tmp_path):
    data = photos(tmp_path / "photos")
    before = sorted(data.rglob("*"))
    done = run_cli("run", "--images", ".", "-S", "train.time_budget_s=0.001", cwd=data)
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    assert "outputs never go into the data" in done.stderr and sorted(data.rglob("*")) == before


def test_2_a_later_stage_refuses_results_inside_the_data_it_was_decoded_from(tmp_path):
    data = photos(tmp_path / "photos")
    paths = run_on(data, tmp_path / "run")
    inside = replace(paths, results=str(data / "results"))
    refused(lambda: steps.report(ReportParams(), inside), "lies inside", "(the data)")
    refused(lambda: steps.aggregate(AggregateParams(), inside), "lies inside", "(the data)")
    assert not (data / "results").exists()


def test_2_export_out_inside_the_image_folder_is_refused(tmp_path):
    data = photos(tmp_path / "photos")
    paths = run_on(data, tmp_path / "run")
    refused(lambda: export(paths, data / "clean"), "lies inside", "(the data)")
    assert not (data / "clean").exists()


def test_2_decode_leaves_out_the_tools_own_output_folders_inside_the_data(tmp_path):
    data = photos(tmp_path / "photos")
    paths = run_on(data, tmp_path / "run")
    export(paths, tmp_path / "clean", copy=True)
    shutil.copytree(tmp_path / "run" / "results", data / "results")  # an older run's results, moved in by hand
    shutil.copytree(tmp_path / "clean", data / "a" / "clean")  # a copy of the copy, deep inside a class
    again = steps.decode(DecodeParams(str(data), ""), Paths().under(tmp_path / "again"))
    assert again.class_names == ["a", "b"] and len(again.labels) == 10


# -- 3. export writes the input's own form, names kept ---------------------------------------------------------------


def test_3_export_of_an_npz_given_as_images_writes_an_npz_with_its_class_names(tmp_path):
    names = np.array(["zebra", "ant", "ca\rt"])[np.arange(9) % 3]
    np.savez(tmp_path / "data.npz", images=pictures(9, 12, 12), labels=names)
    paths = run_on(tmp_path / "data.npz", tmp_path / "run")
    export(paths, tmp_path / "clean", options=KEEP_ALL)
    assert sorted(p.name for p in (tmp_path / "clean").iterdir()) == ["changes.csv", "data.npz"]
    back = decode_only(tmp_path / "clean" / "data.npz")
    assert back.class_names == ["ant", "ca\rt", "zebra"] and [back.class_names[i] for i in back.labels] == list(names)


def test_3_export_of_idx_input_writes_idx(tmp_path):
    sample = Path(__file__).resolve().parent.parent / "data" / "sample"
    paths = run_on(sample / "images-idx3-ubyte.gz", tmp_path / "run", labels=sample / "labels-idx1-ubyte.gz")
    export(paths, tmp_path / "clean")
    assert sorted(p.name for p in (tmp_path / "clean").iterdir()) == [
        "changes.csv",
        "images-idx3-ubyte.gz",
        "labels-idx1-ubyte.gz",
    ]


def decode_only(images, labels=""):
    from stages.decode import read_dataset

    return read_dataset(DecodeParams(str(images), str(labels)))


# -- 4. a name never loses a run -------------------------------------------------------------------------------------


def test_4_dollar_pairs_in_class_and_file_names_are_drawn_literally(tmp_path):
    paths = run_on(photos(tmp_path / "photos", classes=("x$^$", "$y$"), name="x$^${i}$.png"), tmp_path / "run")
    samples = list(csv.DictReader(open(paths.results + "/samples.csv")))
    assert sum(row["flagged"] == "1" for row in samples) == 1  # the twin conflict: the montage draws its tiles
    assert (Path(paths.results) / "flagged.png").stat().st_size > 1000 and samples[0]["given"] == "$y$"


def test_4_class_and_file_names_that_are_not_utf8_run_and_export_as_the_bytes_they_are(tmp_path):
    data = photos(tmp_path / "photos", classes=(b"caf\xe9", b"b"), name=b"x\xff%d.png")
    paths = run_on(data, tmp_path / "run")
    samples = (Path(paths.results) / "samples.csv").read_bytes()
    assert b"caf\xe9/x\xff0.png" in samples and samples.count(b"\n") == 11
    export(paths, tmp_path / "clean", copy=True, options=KEEP_ALL)
    back = decode_only(tmp_path / "clean" / "manifest.csv")
    assert back.class_names == ["b", os.fsdecode(b"caf\xe9")] and len(back.labels) == 10


def test_4_npz_labels_that_are_no_text_are_one_line_and_bytes_labels_are_names(tmp_path):
    np.savez(tmp_path / "bad.npz", images=pictures(4, 12, 12), labels=np.array(["a\ud800", "b"] * 2))
    refused(lambda: decode_only(tmp_path / "bad.npz"), "bad.npz: label 'a\\ud800' (row 1) is not valid text")
    np.savez(tmp_path / "bytes.npz", images=pictures(4, 12, 12), labels=np.array([b"caf\xe9", b"b"] * 2))
    paths = run_on(tmp_path / "bytes.npz", tmp_path / "run")
    assert artifacts.load(paths.decoded, Dataset).class_names == ["b", os.fsdecode(b"caf\xe9")]


# -- 5, 6. CSV round trips: line breaks and formulas -----------------------------------------------------------------

AWKWARD = ("a\rb", "c\u2028d", "e\x85f\x0cg", '=HYPERLINK("x")', "+1", "-a", "@b", "'=c")


@pytest.mark.filterwarnings("error::UserWarning")  # matplotlib warns of each glyph no font has
def test_5_6_awkward_class_names_survive_every_csv_the_tool_writes_and_reads_back(tmp_path):
    data = photos(tmp_path / "photos", classes=AWKWARD, per_class=2)
    paths = run_on(data, tmp_path / "run")
    results = Path(paths.results)
    for table, column in (("samples.csv", "given"), ("classes.csv", "class"), ("confusion.csv", "given")):
        with open(results / table, newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == (len(AWKWARD) if table == "classes.csv" else 2 * len(AWKWARD)), table
        assert {plain_cell(row[column]) for row in rows} == set(AWKWARD), table
        assert not any(row[column][:1] in "=+-@" for row in rows), table  # no spreadsheet runs them
    export(paths, tmp_path / "clean", options=KEEP_ALL)
    back = decode_only(tmp_path / "clean" / "manifest.csv")  # the tool's own manifest, read back whole
    assert sorted(back.class_names) == sorted(AWKWARD) and len(back.labels) == 2 * len(AWKWARD)


def test_5_a_quoted_label_with_a_line_break_stays_one_label(tmp_path):
    photos(tmp_path / "photos")
    (tmp_path / "m.csv").write_text('path,label\nphotos/a/0.png,"a\nb"\nphotos/b/0.png,c\n')
    assert decode_only(tmp_path / "m.csv").class_names == ["a\nb", "c"]


@pytest.mark.parametrize("name", ["=1+2", "'=1", "''+x", "'plain", "plain", "", "-", "\t@"])
def test_6_a_neutralised_cell_reads_back_as_the_name_it_was(name):
    assert plain_cell(cell(name)) == name and (cell(name) == name or cell(name) == "'" + name)


# -- 9. names that differ only in spaces -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "classes, problem",
    [(("cat", "cat "), "class folders 'cat' and 'cat ' differ only in spaces"), (("a", "   "), "has a blank name")],
)
def test_9_class_folders_that_one_label_would_merge_are_refused(tmp_path, classes, problem):
    refused(lambda: decode_only(photos(tmp_path / "photos", classes=classes)), problem)


# -- 7. runs stopped from outside: SIGTERM as Ctrl-C, no debris ------------------------------------------------------

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
HW02 = [
    "hw02.py",
    "--data",
    str(SAMPLE / "images-idx3-ubyte.gz"),
    "--labels",
    str(SAMPLE / "labels-idx1-ubyte.gz"),
    "-v",
]


def default_ctrl_c() -> None:
    """In the child, before it runs: Ctrl-C at its default, as a terminal's foreground job has it. A shell starts a
    background job with SIGINT ignored (CI may run the tests so), and Python then keeps ignoring it, as nohup means."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stopped_midway(command, signum, *, whole_group=False, cwd=None, after="group:"):
    """Run `command` (python arguments), send `signum` once its first line containing `after` is on stderr and the
    members' worker processes exist (the moment they start, where a cut was worst), to the process or, as a
    terminal's Ctrl-C does, to its whole process group; its (returncode, stdout, stderr)."""
    process = subprocess.Popen(
        [sys.executable, *command],
        cwd=cwd or REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        start_new_session=True,  # its own process group, as a shell's foreground job
        preexec_fn=default_ctrl_c,
    )
    seen = []
    for line in process.stderr:
        seen.append(line)
        if after in line:
            break
    give_up = time.monotonic() + 60
    while not children(process.pid) and process.poll() is None and time.monotonic() < give_up:
        time.sleep(0.05)
    (os.killpg if whole_group else os.kill)(process.pid, signum)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, "".join(seen[-1:]) + err


def children(pid: int) -> list[int]:
    found = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in path.read_text().split()]
    return found


@pytest.mark.parametrize(
    "signum, whole_group, word, code",
    [
        (signal.SIGTERM, False, "terminated", 143),
        (signal.SIGINT, True, "interrupted", 130),
        (signal.SIGTERM, True, "terminated", 143),
    ],
    ids=["sigterm", "ctrl-c-to-the-group", "sigterm-to-the-group"],
)
def test_7_hw02_stopped_as_workers_start_says_one_word_and_nothing_on_stdout(signum, whole_group, word, code):
    returncode, out, err = stopped_midway(HW02, signum, whole_group=whole_group)
    assert (returncode, out) == (code, "") and err.splitlines()[1:] == [word], err


def test_7_twins_run_terminated_midway_writes_nothing_and_leaves_no_temporaries(tmp_path):
    command = ["-m", "pipeline.cli", "run", "--images", HW02[2], "--labels", HW02[4], "-v"]
    returncode, out, err = stopped_midway(command, signal.SIGTERM, cwd=tmp_path, after="group:")
    assert (returncode, out) == (143, "") and err.splitlines()[1:] == ["terminated: nothing was written"], err
    assert [p.name for p in tmp_path.rglob("*")] == []  # no artifact, no result, no folder, no .tmp


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_7_the_next_write_removes_a_killed_runs_temporaries_and_keeps_a_live_runs(tmp_path):
    from pipeline.artifacts import HOST, atomic_write_text

    dead = tmp_path / f".samples.csv.{dead_pid()}-{HOST}-k3x_9q.tmp"
    staging = tmp_path / f".clean.{dead_pid()}-{HOST}-7yw2a1.tmp"
    live = tmp_path / f".issues.csv.{os.getppid()}-{HOST}-abc123.tmp"  # pytest's parent runs
    dead.write_text("half")
    (staging / "files" / "a").mkdir(parents=True)
    (staging / "files" / "a" / "0.png").write_bytes(b"half a copy")
    live.write_text("being written")
    mine = tmp_path / ".notes.txt.tmp"  # not the tool's naming: never touched
    mine.write_text("mine")
    atomic_write_text(tmp_path / "suspects.txt", "1, 2\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, mine.name, "suspects.txt"])


def test_7_an_export_stopped_midway_removes_its_staging_folder(tmp_path, monkeypatch):
    from pipeline.signals import Terminated

    paths = run_on(photos(tmp_path / "photos"), tmp_path / "run")
    calls = []

    def stop_at_the_third(data, i, target):
        calls.append(i)
        if len(calls) == 3:
            raise Terminated()
        return real(data, i, target)

    real = steps.copy_checked
    monkeypatch.setattr(steps, "copy_checked", stop_at_the_third)
    with pytest.raises(Terminated):
        export(paths, tmp_path / "clean", copy=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "run"]
