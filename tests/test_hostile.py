"""Hostile and careless input, probe by probe (README, "Reliability"): files beside the data, odd folders and
labels, damaged .npz, outputs that cannot be written, a closed stdout, runs killed from outside, the API given the
wrong types. Each is one line naming the file and the problem (InputError; exit 2 at the edges), memory bounded by
the data used, nothing half-written, and no process left behind."""

import csv
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, pictures, run_cli, run_script
from PIL import Image

from pipeline import artifacts
from pipeline.api import find_issues
from pipeline.artifacts import all_or_nothing, atomic_write_text, write_idx, write_images
from stages.decode import DecodeParams, fingerprint, read_dataset
from stages.errors import InputError

SAMPLE = REPO / "data" / "sample"


def one_line(exc: pytest.ExceptionInfo, source, problem: str) -> None:
    message = str(exc.value)
    assert "\n" not in message and str(source) in message and problem in message, message


def decode(images, labels="", **params):
    return read_dataset(DecodeParams(str(images), str(labels), **params))


def folder(root, classes=("a", "b"), per_class=3):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(pictures(per_class, 12, 12, seed=c)):
            Image.fromarray(image).save(root / name / f"{i}.png")
    return root


def finishes_within(seconds: float, function):
    """function's result, or a failure if it has not returned in `seconds` (a probe that hangs must not hang the
    suite)."""
    out = {}

    def call():
        try:
            out["result"] = function()
        except BaseException as exc:
            out["error"] = exc

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s"
    if "error" in out:
        raise out["error"]
    return out["result"]


# -- files beside the data ---------------------------------------------------------------------------------------


def test_a_large_file_beside_the_images_is_neither_read_nor_held_in_memory(tmp_path):
    folder(tmp_path)
    with open(tmp_path / "a" / "archive.zip", "wb") as f:
        f.truncate(64 * 2**20)  # sparse: 64 MB that cost no disk
    before = fingerprint(str(tmp_path))
    tracemalloc.start()
    data = decode(tmp_path)
    digest = fingerprint(str(tmp_path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(data.labels) == 6 and digest == before and peak < 8 * 2**20


def test_a_large_image_file_is_hashed_as_a_stream(tmp_path):
    big = tmp_path / "images.gz"
    big.write_bytes(os.urandom(1024) * (32 * 1024))  # 32 MB
    tracemalloc.start()
    fingerprint(str(big))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * 2**20


def test_files_in_hidden_folders_and_hidden_files_are_left_out(tmp_path):
    folder(tmp_path)
    hidden = tmp_path / "a" / ".ipynb_checkpoints"
    hidden.mkdir()
    Image.fromarray(pictures(1, 12, 12)[0]).save(hidden / "0-checkpoint.png")
    Image.fromarray(pictures(1, 12, 12)[0]).save(tmp_path / "b" / ".hidden.png")
    data = decode(tmp_path)
    assert len(data.labels) == 6 and not any("/." in path for path in data.paths)


def test_class_folders_01_and_1_are_refused_not_merged(tmp_path):
    folder(tmp_path, classes=("01", "1", "2"))
    with pytest.raises(InputError) as exc:
        decode(tmp_path)
    one_line(exc, tmp_path, "'01' and '1' are one number")


def test_a_fifo_named_like_an_image_is_unreadable_not_a_hang(tmp_path):
    folder(tmp_path)
    os.mkfifo(tmp_path / "a" / "x.png")
    with pytest.raises(InputError) as exc:
        finishes_within(30, lambda: decode(tmp_path))
    one_line(exc, tmp_path, "x.png (not a regular file)")
    data = finishes_within(30, lambda: decode(tmp_path, skip_unreadable=True))
    assert len(data.labels) == 6 and "not a regular file" in data.skipped[0]


def refusing(real, path, error=PermissionError(13, "Permission denied")):
    """real (os.scandir, open), except that it refuses path as a file system refuses one without permission."""

    def call(file, *args, **kwargs):
        if os.fspath(file) == str(path):
            raise type(error)(error.errno, error.strerror, str(path))
        return real(file, *args, **kwargs)

    return call


def test_a_class_folder_that_cannot_be_listed_is_named_or_left_out_on_request(tmp_path, monkeypatch):
    """(Simulated: the tests may run as root, whom a folder without permission does not stop.)"""
    folder(tmp_path, classes=("a", "b", "c"))
    monkeypatch.setattr(os, "scandir", refusing(os.scandir, tmp_path / "b"))
    with pytest.raises(InputError) as exc:
        decode(tmp_path)
    one_line(exc, tmp_path, f"1 folders cannot be listed: {tmp_path / 'b'} (Permission denied)")
    data = decode(tmp_path, skip_unreadable=True)
    assert data.class_names == ["a", "c"] and data.skipped == [f"{tmp_path / 'b'} (Permission denied)"]


def test_a_file_left_out_as_unreadable_is_left_out_of_the_checksum_too(tmp_path, monkeypatch):
    """(Simulated, as above.)"""
    from stages.decode import decode as decode_stage

    folder(tmp_path)
    monkeypatch.setattr("builtins.open", refusing(open, tmp_path / "b" / "0.png"))
    data = decode_stage(DecodeParams(str(tmp_path), "", skip_unreadable=True))
    assert len(data.labels) == 5 and data.skipped == [f"{tmp_path / 'b' / '0.png'} (PermissionError)"]
    assert len(data.images_sha256) == 64


def test_huge_pictures_are_shrunk_as_they_are_read(tmp_path):
    """Five 9000 x 9000 pictures held at full size would take 400 MB; shrunk one by one, about one of them."""
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    for c in "ab":
        (tmp_path / c).mkdir()
        for i in range(3 if c == "a" else 2):
            Image.new("1", (9000, 9000), i % 2).save(tmp_path / c / f"{i}.png")
    # The peak of this process's own memory (VmHWM; ru_maxrss would count the parent's, inherited at exec).
    code = (
        "from stages.decode import DecodeParams, read_dataset; "
        f"d = read_dataset(DecodeParams({str(tmp_path)!r}, '')); "
        "peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]; "
        "print(d.images.shape, int(peak) // 1024)"
    )
    done = run_script("-c", code, timeout=300)
    shape, peak_mb = done.stdout.rsplit(" ", 1)
    assert done.returncode == 0 and shape == "(5, 64, 64, 1)" and int(peak_mb) < 300, done.stdout + done.stderr


# -- labels in manifests and folders -------------------------------------------------------------------------------


def manifest(tmp_path, labels: list[str]):
    image = tmp_path / "x.png"
    Image.fromarray(pictures(1, 12, 12)[0]).save(image)
    path = tmp_path / "data.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["x.png", label] for label in labels])
    return path


def test_a_superscript_digit_is_a_class_name(tmp_path):
    data = decode(manifest(tmp_path, ["²", "3"]))
    assert data.class_names == ["3", "²"]


def test_a_label_too_large_for_a_class_id_is_named(tmp_path):
    path = manifest(tmp_path, ["1", "99999999999999999999999"])
    with pytest.raises(InputError) as exc:
        decode(path, num_classes=None)
    one_line(exc, path, "too large for a class id")


def test_integer_labels_without_a_class_count_stop_at_256(tmp_path):
    path = manifest(tmp_path, ["1", "9000000"])
    with pytest.raises(InputError) as exc:
        decode(path, num_classes=None)
    one_line(exc, path, "label 9000000 at index 1 is out of range 0..255")


def test_a_field_past_the_csv_limit_is_named_with_its_line(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("x.png,1\n" + "y" * 200_000 + ".png,2\n")
    with pytest.raises(InputError) as exc:
        decode(path)
    one_line(exc, path, "line 2")


# -- .npz and .npy -------------------------------------------------------------------------------------------------

IMAGES = pictures(6, 8, 8)
LABELS = np.array([0, 1, 0, 1, 0, 1])


def npz_with(path, **members: bytes):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return path


def npy_bytes(array) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=True)
    return buffer.getvalue()


def claiming(shape) -> bytes:
    """An .npy header that declares `shape` of bytes, whatever follows it."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


@pytest.mark.parametrize(
    "members, problem",
    [
        (dict(images=npy_bytes(IMAGES), labels=npy_bytes(np.array(["cat", 1], dtype=object))), "holds Python objects"),
        (
            dict(images=claiming((6_000_000_000, 8, 8000)) + IMAGES.tobytes(), labels=npy_bytes(LABELS)),
            "its header says",
        ),
        (dict(images=npy_bytes(IMAGES)[:-10], labels=npy_bytes(LABELS)), "its header says"),
    ],
    ids=["object-labels", "header-claims-terabytes", "truncated-member"],
)
def test_a_damaged_or_foreign_npz_is_refused_before_anything_is_allocated(tmp_path, members, problem):
    path = npz_with(tmp_path / "data.npz", **members)
    with pytest.raises(InputError) as exc:
        decode(path)
    one_line(exc, path, problem)


def test_an_npz_with_a_bad_crc_is_refused(tmp_path):
    path = npz_with(tmp_path / "data.npz", images=npy_bytes(IMAGES), labels=npy_bytes(LABELS))
    data = bytearray(path.read_bytes())
    at = data.index(npy_bytes(IMAGES)[-20:])
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as exc:
        decode(path)
    one_line(exc, path, "not a readable .npz (BadZipFile")


def test_an_npz_that_unpacks_past_half_the_free_memory_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("stages.decode_readers.available_memory", lambda: 2 * 2**20)
    path = tmp_path / "data.npz"
    np.savez_compressed(path, images=np.zeros((2000, 28, 28), np.uint8), labels=np.zeros(2000, np.int64))
    assert path.stat().st_size < 20_000  # 1.5 MB of zeros in a few kilobytes
    with pytest.raises(InputError) as exc:
        decode(path)
    one_line(exc, path, "more than half the memory free")


def test_an_npy_named_npz_and_an_npz_named_npy_say_which_they_are(tmp_path):
    np.save(tmp_path / "images.npy", IMAGES)
    os.replace(tmp_path / "images.npy", tmp_path / "images.npz")
    with pytest.raises(InputError) as exc:
        decode(tmp_path / "images.npz")
    one_line(exc, tmp_path / "images.npz", "is an .npy file, not an .npz archive")
    np.savez(tmp_path / "pair.npz", images=IMAGES, labels=LABELS)
    os.replace(tmp_path / "pair.npz", tmp_path / "pair.npy")
    np.save(tmp_path / "labels.npy", LABELS)
    with pytest.raises(InputError) as exc:
        decode(tmp_path / "pair.npy", tmp_path / "labels.npy")
    one_line(exc, tmp_path / "pair.npy", "is an .npz archive, not an .npy file")


# -- outputs that cannot be written ----------------------------------------------------------------------------------


def test_an_output_path_that_is_a_folder_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "decoded.npz").mkdir()
    done = run_cli("decode", "--decoded", str(tmp_path / "decoded.npz"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == f"error: {tmp_path / 'decoded.npz'}: is a folder, not a file (--decoded)"


@pytest.mark.parametrize(
    "option, taken, problem",
    [
        ("--results", "results", "is a file, not a folder (--results)"),
        ("--metrics", "metrics.json/", "is a folder, not a file (--metrics)"),
        ("--metrics", "file/metrics.json", "cannot be written: {root}/file is a file, not a folder"),
    ],
)
def test_an_output_no_file_can_take_is_refused_before_any_work(tmp_path, option, taken, problem):
    (tmp_path / "file").write_text("mine")
    target = tmp_path / taken.rstrip("/")
    if taken.endswith("/"):
        target.mkdir()
    elif taken == "results":
        target.write_text("mine")
    before = sorted(tmp_path.rglob("*"))
    done = run_cli(
        "run",
        "--images",
        str(SAMPLE / "images-idx3-ubyte.gz"),
        "--labels",
        str(SAMPLE / "labels-idx1-ubyte.gz"),
        option,
        str(target),
        cwd=tmp_path,
    )
    # the one line alone: no stage ran (each logs a line), and nothing was written
    assert done.returncode == 2 and done.stderr.strip() == f"error: {target}: {problem.format(root=tmp_path)}"
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    "errno, problem", [(28, "No space left on device"), (13, "Permission denied")], ids=["full-disk", "read-only"]
)
def test_a_full_disk_or_a_read_only_folder_midway_leaves_no_output_written(tmp_path, monkeypatch, errno, problem):
    """(Simulated: the tests may run as root, whom a read-only folder does not stop.)"""
    (tmp_path / "old.txt").write_text("before")
    real = os.fdopen
    calls = []

    def failing(fd, *args, **kwargs):
        calls.append(fd)
        if len(calls) == 3:
            os.close(fd)
            raise OSError(errno, problem)
        return real(fd, *args, **kwargs)

    monkeypatch.setattr(artifacts.os, "fdopen", failing)
    with pytest.raises(InputError) as exc, all_or_nothing():
        atomic_write_text(tmp_path / "new1.txt", "one")
        atomic_write_text(tmp_path / "old.txt", "two")
        atomic_write_text(tmp_path / "new3.txt", "three")
    one_line(exc, tmp_path / "new3.txt", f"cannot be written ({problem})")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.txt"] and (tmp_path / "old.txt").read_text() == "before"


def test_a_step_that_fails_after_writing_leaves_no_output_of_it(tmp_path):
    """decode writes its artifact, then its timing: a timing file that cannot be written leaves no new artifact."""
    from pipeline import steps
    from pipeline.paths import Paths

    paths = Paths().under(tmp_path)
    Path_ = type(tmp_path)
    Path_(paths.timing("decode")).mkdir(parents=True)  # the timing file's path is taken by a folder
    with pytest.raises(InputError) as exc, all_or_nothing():
        steps.decode(DecodeParams(str(SAMPLE / "images-idx3-ubyte.gz"), str(SAMPLE / "labels-idx1-ubyte.gz")), paths)
    one_line(exc, paths.timing("decode"), "is a folder")
    assert not Path_(paths.decoded).exists() and not list(tmp_path.rglob("*.tmp"))


def test_a_run_refuses_a_folder_it_may_not_write_in_before_any_work(tmp_path, monkeypatch):
    """(Simulated: the tests may run as root, whom a read-only folder does not stop.)"""
    from pipeline.paths import Paths, check_layout

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path).name != "ro")
    paths = Paths(results=str(tmp_path / "ro"), metrics=str(tmp_path / "ro" / "new" / "metrics.json"))
    check_layout(paths, ("results", "metrics"))  # reading only: nothing to refuse
    for name in ("results", "metrics"):
        with pytest.raises(InputError) as exc:
            check_layout(paths, (name,), writes=True)
        one_line(exc, getattr(paths, name), f"cannot be written (no permission to write in {tmp_path / 'ro'})")


def test_a_failed_step_takes_back_the_empty_folders_it_made(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "kept").mkdir()
    with pytest.raises(InputError), all_or_nothing():
        atomic_write_text(tmp_path / "new" / "deep" / "a.txt", "one")
        atomic_write_text(tmp_path / "kept" / "b.txt", "two")
        atomic_write_text(tmp_path / "taken", "three")  # a folder in its place: the step fails
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "taken"] and not list(tmp_path.rglob("*.*"))


# -- stdout --------------------------------------------------------------------------------------------------------


def test_a_closed_stdout_is_one_line_and_exit_2_not_a_lost_answer():
    done = subprocess.run(
        [
            sys.executable,
            "hw02.py",
            "--data",
            str(SAMPLE / "images-idx3-ubyte.gz"),
            "--labels",
            str(SAMPLE / "labels-idx1-ubyte.gz"),
        ],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        close_fds=True,
        preexec_fn=lambda: os.close(1),
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert done.returncode == 2 and done.stderr.strip() == "error: stdout is closed: the answer has nowhere to go"


def test_a_broken_pipe_is_one_line_and_exit_2():
    reader, writer = os.pipe()
    os.close(reader)  # nobody will read the answer
    try:
        done = subprocess.run(
            [
                sys.executable,
                "hw02.py",
                "--data",
                str(SAMPLE / "images-idx3-ubyte.gz"),
                "--labels",
                str(SAMPLE / "labels-idx1-ubyte.gz"),
                "--time-budget",
                "0.001",
            ],
            cwd=REPO,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
    finally:
        os.close(writer)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: stdout: the answer could not be written")


def test_images_through_a_pipe_are_read_as_a_stream(tmp_path):
    done = subprocess.run(
        f"{sys.executable} hw02.py --data <(cat {SAMPLE / 'images-idx3-ubyte.gz'}) "
        f"--labels <(cat {SAMPLE / 'labels-idx1-ubyte.gz'}) --time-budget 0.001",
        shell=True,
        executable="/bin/bash",
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


# -- the command line ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, line",
    [
        (["frobnicate"], "No such command 'frobnicate'."),
        (["decode", "--bogus"], "No such option '--bogus'."),
        (["export", "--choices", "."], "Invalid value for '--choices': File '.' is a directory."),
    ],
    ids=["unknown-command", "unknown-option", "folder-for-file"],
)
def test_a_usage_error_is_one_line_and_exit_2(tmp_path, args, line):
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr == f"error: {line}\n"


@pytest.mark.parametrize("dash", ["\u2013", "\u2014"])
def test_an_option_typed_with_an_en_or_em_dash_is_the_option(tmp_path, dash):
    done = run_cli("aggregate", f"{dash}decoded", "missing.npz", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: missing.npz: no such artifact"), done.stderr


# -- runs killed from outside --------------------------------------------------------------------------------------


def descendants(pid: int) -> set[int]:
    """Every process under pid (Linux: /proc), children of every thread, recursively."""
    import glob

    found, todo = set(), [pid]
    while todo:
        for path in glob.glob(f"/proc/{todo.pop()}/task/*/children"):
            try:
                kids = {int(c) for c in open(path).read().split()}
            except OSError:
                continue
            todo += list(kids - found)
            found |= kids
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"  # a zombie has exited
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize(
    "script, pool",
    [("hw02.py", "loky"), ("hw02.py", "standard-library"), ("bundle", "standard-library")],
    ids=["loky", "stdlib", "bundle"],
)
def test_workers_die_within_seconds_of_their_killed_parent(tmp_path, script, pool, signal_number):
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    if script == "bundle":  # dist/hw02.py, as `make hw02` writes it
        from pipeline import bundle

        script = tmp_path / "hw02.py"
        script.write_text(bundle.bundle(author="A", netid="a"))
    run = "import runpy, sys; sys.argv = ['hw02.py'] + sys.argv[1:]; "
    if pool == "standard-library":  # as where only torch and numpy are installed
        run += "sys.modules['joblib'] = None; "
    run += f"runpy.run_path({str(script)!r}, run_name='__main__')"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            run,
            "--data",
            str(SAMPLE / "images-idx3-ubyte.gz"),
            "--labels",
            str(SAMPLE / "labels-idx1-ubyte.gz"),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    give_up, workers = time.monotonic() + 120, set()
    while len(workers) < 2 and process.poll() is None and time.monotonic() < give_up:
        time.sleep(0.2)
        workers = descendants(process.pid)
    assert len(workers) >= 2, "the members' workers never started"
    time.sleep(1.0)  # well into training
    workers = descendants(process.pid)
    process.send_signal(signal_number)
    process.wait(timeout=30)
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} of {len(workers)} workers still alive 5 s after the parent's death"


# -- the Python API --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, source, problem",
    [
        (lambda: find_issues(IMAGES, np.array([0, 1, 0, 1, 0, 9_000_000])), "labels", "out of range 0..255"),
        (lambda: find_issues(IMAGES, LABELS, time_budget_s=float("nan")), "time_budget_s", "positive number"),
        (lambda: find_issues(IMAGES, LABELS, time_budget_s="60"), "time_budget_s", "positive number"),
        (lambda: find_issues(IMAGES, LABELS, params=[("train", {})]), "params", "must be a dict"),
        (lambda: find_issues(IMAGES, LABELS, params={"train": {1: 2}}), "params", "unknown parameter train.1"),
        (lambda: find_issues([np.zeros((8, 8)), np.zeros((9, 9))], [0, 1]), "images", "one array of equal-sized"),
        (lambda: find_issues(IMAGES, [0, 1, 0, 1, 0, object()]), "labels", "integers or class names"),
    ],
    ids=[
        "huge-label-ids",
        "nan-budget",
        "string-budget",
        "params-as-list",
        "number-as-parameter",
        "ragged-images",
        "object-label",
    ],
)
def test_the_api_refuses_wrong_types_with_input_error_before_any_work(call, source, problem):
    with pytest.raises(InputError) as exc:
        finishes_within(30, call)
    one_line(exc, source, problem)


def test_a_pandas_like_column_of_names_is_taken_as_class_names():
    from stages.decode_readers import as_labels

    ids, names = as_labels(np.array(["cat", "dog", "cat"], dtype=object), "labels")
    assert ids.tolist() == [0, 1, 0] and names == ["cat", "dog"]


def test_the_checks_in_this_file_hold_for_idx_written_by_the_tool(tmp_path):
    """The readers' happy path stays: what the tool writes, it reads."""
    write_images(tmp_path / "i.gz", IMAGES)
    write_idx(tmp_path / "l.gz", LABELS.astype(np.uint8))
    data = decode(tmp_path / "i.gz", tmp_path / "l.gz")
    assert data.images.shape == (6, 8, 8, 1) and data.labels.tolist() == LABELS.tolist()


def test_twins_run_writes_its_files_even_when_stdout_is_broken(tmp_path):
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline.cli",
                "run",
                "--params",
                str(REPO / "params.yaml"),
                "--images",
                str(SAMPLE / "images-idx3-ubyte.gz"),
                "--labels",
                str(SAMPLE / "labels-idx1-ubyte.gz"),
                "-S",
                "train.time_budget_s=0.001",
            ],
            cwd=tmp_path,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
    finally:
        os.close(writer)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "error: stdout: could not be written (Broken pipe)"
    assert (tmp_path / "results" / "suspects.txt").exists() and (tmp_path / "metrics.json").exists()
