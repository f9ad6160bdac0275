"""Decode under hostile input: cut, flipped or padded idx files (gzipped or raw) give InputError, one line and
exit 2, never a traceback; what still parses is a well-formed array."""

import gzip

import numpy as np
import pytest
from conftest import run_script
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stages.decode_idx import encode_idx, read_images, read_labels
from stages.errors import InputError

IMAGES = encode_idx(np.arange(3 * 5 * 4, dtype=np.uint8).reshape(3, 5, 4))
LABELS = encode_idx(np.array([1, 2, 3], np.uint8))
READERS = {"images": (read_images, IMAGES), "labels": (read_labels, LABELS)}


def decodes_or_refuses(tmp_path, data: bytes, reader) -> None:
    path = tmp_path / "file"
    path.write_bytes(data)
    try:
        array = reader(path)
    except InputError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    assert array.dtype in (np.uint8, np.int64) and array.size > 0


@pytest.mark.parametrize("kind", READERS)
@pytest.mark.parametrize("packed", [False, True], ids=["raw", "gzip"])
def test_a_file_cut_at_any_byte_is_refused(tmp_path, kind, packed):
    reader, valid = READERS[kind]
    data = gzip.compress(valid, mtime=0) if packed else valid
    for end in range(len(data)):
        with pytest.raises(InputError):
            path = tmp_path / f"cut{end}"
            path.write_bytes(data[:end])
            reader(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(sorted(READERS)),
    packed=st.booleans(),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4),
    cut=st.none() | st.integers(0, 10_000),
    extra=st.binary(max_size=8),
)
def test_flipped_cut_or_padded_files_decode_or_are_refused_with_one_line(tmp_path, kind, packed, flips, cut, extra):
    reader, valid = READERS[kind]
    data = bytearray(gzip.compress(valid, mtime=0) if packed else valid)
    for position, mask in flips:
        data[position % len(data)] ^= mask
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    decodes_or_refuses(tmp_path, bytes(data) + extra, reader)


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x08\x03\x00\x01\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00",  # 2^16 x 2^24 x 2^24: past any limit
        gzip.compress(IMAGES + bytes(1 << 20), mtime=0),  # a megabyte of zeros past the declared payload
        gzip.compress(IMAGES)[:-3],  # gzip cut inside its trailer
        (lambda packed: packed[:30] + bytes([packed[30] ^ 0xFF]) + packed[31:])(gzip.compress(IMAGES * 50, mtime=0)),
    ],
)
def test_hostile_files_through_hw02_are_one_line_and_exit_2(tmp_path, data):
    (tmp_path / "images").write_bytes(data)
    (tmp_path / "labels").write_bytes(LABELS)
    done = run_script("hw02.py", "--data", str(tmp_path / "images"), "--labels", str(tmp_path / "labels"), timeout=120)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and str(tmp_path / "images") in done.stderr


def refused_in_one_line_or_read(decode_call, source) -> None:
    from stages.decode import Dataset

    try:
        data = decode_call()
    except InputError as exc:
        assert str(source) in str(exc) and "\n" not in str(exc), str(exc)
        return
    assert isinstance(data, Dataset) and data.images.dtype == np.uint8 and len(data.images) == len(data.labels) > 0


def png_bytes(seed: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (6, 5), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def dataset_at(path, labels=""):
    from stages.decode import DecodeParams, read_dataset

    return read_dataset(DecodeParams(str(path), str(labels), num_classes=None))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300),
    header=st.booleans(),
    tsv=st.booleans(),
)
def test_any_manifest_text_decodes_or_is_refused_in_one_line(tmp_path, text, header, tsv):
    (tmp_path / "x.png").write_bytes(png_bytes(0))
    path = tmp_path / ("data.tsv" if tsv else "data.csv")
    path.write_text(("path,label\n" if header else "") + "x.png,1\n" + text, encoding="utf-8")
    refused_in_one_line_or_read(lambda: dataset_at(path), path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    classes=st.lists(st.text(alphabet="01²aZ .-_", min_size=1, max_size=4), min_size=1, max_size=4),
    contents=st.lists(st.one_of(st.integers(0, 3).map(png_bytes), st.binary(max_size=64)), min_size=1, max_size=6),
    skip=st.booleans(),
)
def test_any_folder_of_class_folders_decodes_or_is_refused_in_one_line(tmp_path_factory, classes, contents, skip):
    from stages.decode import DecodeParams, read_dataset

    root = tmp_path_factory.mktemp("folder")
    for i, data in enumerate(contents):
        name = classes[i % len(classes)].strip(" ") or "blank"
        if name in (".", ".."):
            continue
        (root / name).mkdir(exist_ok=True)
        (root / name / f"{i}.png").write_bytes(data)
    refused_in_one_line_or_read(
        lambda: read_dataset(DecodeParams(str(root), "", num_classes=None, skip_unreadable=skip)), root
    )


def npz_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, images=np.arange(4 * 5 * 4, dtype=np.uint8).reshape(4, 5, 4), labels=np.array([0, 1, 0, 1]))
    return buffer.getvalue()


NPZ = npz_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4),
    cut=st.none() | st.integers(0, 10_000),
    extra=st.binary(max_size=8),
)
def test_a_flipped_cut_or_padded_npz_decodes_or_is_refused_in_one_line(tmp_path, flips, cut, extra):
    data = bytearray(NPZ)
    for position, mask in flips:
        data[position % len(data)] ^= mask
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    path = tmp_path / "data.npz"
    path.write_bytes(bytes(data) + extra)
    refused_in_one_line_or_read(lambda: dataset_at(path), path)
