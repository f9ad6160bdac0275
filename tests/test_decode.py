"""Decode: idx files in (gzipped or raw, grey or colour), one checked artifact out; bad input is one line, exit 2."""

import gzip

import numpy as np
import pytest
from conftest import run_cli

from pipeline.artifacts import load, write_idx, write_images
from stages.decode import Dataset, DecodeParams, decode_files
from stages.decode_idx import encode_idx, read_images, read_labels
from stages.errors import InputError

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, (7, 28, 28), dtype=np.uint8)
COLOUR = RNG.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
LABELS = np.array([0, 1, 2, 3, 4, 5, 9], dtype=np.uint8)


@pytest.mark.parametrize("name", ["images.gz", "images.raw", "images-without-suffix"])
def test_grey_images_round_trip_gzipped_or_raw_whatever_the_name(tmp_path, name):
    path = tmp_path / name
    write_images(path, GREY, compress=name.endswith(".gz"))
    assert np.array_equal(read_images(path), GREY[..., None])


def test_gzip_is_told_by_content_not_by_name(tmp_path):
    path = tmp_path / "images.raw"  # gzipped, despite the name
    path.write_bytes(gzip.compress(encode_idx(GREY)))
    assert np.array_equal(read_images(path)[..., 0], GREY)


def test_colour_images_round_trip_as_idx4(tmp_path):
    path = tmp_path / "colour.gz"
    write_images(path, COLOUR)
    assert gzip.decompress(path.read_bytes())[:4] == bytes([0, 0, 8, 4])
    assert np.array_equal(read_images(path), COLOUR)


def test_labels_round_trip(tmp_path):
    write_idx(tmp_path / "labels.gz", LABELS)
    assert read_labels(tmp_path / "labels.gz").tolist() == LABELS.tolist()


def test_decode_checks_and_writes_one_artifact(tmp_path):
    write_images(tmp_path / "i.gz", GREY)
    write_idx(tmp_path / "l.gz", LABELS)
    out = tmp_path / "decoded.npz"
    result = run_cli(
        "decode",
        "--images",
        str(tmp_path / "i.gz"),
        "--labels",
        str(tmp_path / "l.gz"),
        "--decoded",
        str(out),
        "--timings",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    data = load(out, Dataset)
    assert data.images.shape == (7, 28, 28, 1) and data.labels.tolist() == LABELS.tolist()
    assert len(data.images_sha256) == 64 and len(data.labels_sha256) == 64


def test_single_class_data_is_valid_input(tmp_path):
    write_images(tmp_path / "i.gz", GREY)
    write_idx(tmp_path / "l.gz", np.full(7, 3, np.uint8))
    images, labels = decode_files(DecodeParams(str(tmp_path / "i.gz"), str(tmp_path / "l.gz")))
    assert set(labels.tolist()) == {3}


def _truncated_gzip(path):
    data = gzip.compress(encode_idx(GREY))
    path.write_bytes(data[: len(data) // 2])


def _truncated_payload(path):
    path.write_bytes(encode_idx(GREY)[:-100])


def _corrupt_gzip(path):
    """Damage a gzip's CRC check finds, in a stream that inflates past its idx header's size."""
    data = bytearray(gzip.compress(encode_idx(GREY) + bytes(100)))
    data[-8] ^= 0xFF  # the CRC
    path.write_bytes(bytes(data))


def _wrong_magic(path):
    path.write_bytes(gzip.compress(encode_idx(LABELS)))  # a label file where images belong


def _wrong_type(path):
    data = bytearray(encode_idx(GREY))
    data[2] = 0x0D  # float
    path.write_bytes(bytes(data))


def _empty(path):
    path.write_bytes(gzip.compress(encode_idx(np.zeros((0, 28, 28), np.uint8))))


def _not_idx_at_all(path):
    path.write_bytes(b"hello")


BAD_IMAGES = {
    "truncated gzip": (_truncated_gzip, "truncated gzip"),
    "truncated payload": (_truncated_payload, "truncated"),
    "corrupt gzip": (_corrupt_gzip, "corrupt gzip stream (CRC check failed"),
    "wrong magic": (_wrong_magic, "wrong magic number 2049"),
    "wrong type byte": (_wrong_type, "element type 0x0d"),
    "no samples": (_empty, "no images"),
    "not an idx file": (_not_idx_at_all, "wrong magic"),
}


def _decode_fails(tmp_path, images, labels):
    out = tmp_path / "out" / "decoded.npz"
    result = run_cli(
        "decode", "--images", str(images), "--labels", str(labels), "--decoded", str(out), "--timings", str(out.parent)
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))
    return lines[0]


@pytest.mark.parametrize("case", BAD_IMAGES)
def test_bad_image_file_is_one_line_naming_it_and_exit_2(tmp_path, case):
    make, problem = BAD_IMAGES[case]
    bad = tmp_path / "bad-images.gz"
    make(bad)
    write_idx(tmp_path / "l.gz", LABELS)
    line = _decode_fails(tmp_path, bad, tmp_path / "l.gz")
    assert str(bad) in line and problem in line


def test_missing_file_is_one_line_naming_it(tmp_path):
    write_idx(tmp_path / "l.gz", LABELS)
    line = _decode_fails(tmp_path, tmp_path / "absent.gz", tmp_path / "l.gz")
    assert str(tmp_path / "absent.gz") in line and "no such file" in line


def test_an_empty_path_is_refused_not_read_as_the_working_folder(tmp_path):
    write_images(tmp_path / "i.gz", GREY)
    write_idx(tmp_path / "l.gz", LABELS)
    assert _decode_fails(tmp_path, "", tmp_path / "l.gz") == "error: decode.images: is empty"
    assert (
        _decode_fails(tmp_path, tmp_path / "i.gz", "")
        == "error: decode.labels: is empty: idx images need their labels' file"
    )


def test_idx_images_named_without_labels_are_not_paired_with_the_samples_default_labels(tmp_path):
    write_images(tmp_path / "i.gz", GREY)
    out = tmp_path / "out" / "decoded.npz"
    result = run_cli("decode", "--images", str(tmp_path / "i.gz"), "--decoded", str(out), "--timings", str(out.parent))
    assert result.returncode == 2 and not out.exists()
    assert (
        result.stderr.strip() == f"error: --labels: not given: the idx images {tmp_path / 'i.gz'} need their "
        "labels' file (decode.labels is still the sample's, "
        "data/sample/labels-idx1-ubyte.gz)"
    )
    result = run_cli(
        "decode", "--images", "data/sample/images-idx3-ubyte.gz", "--decoded", str(out), "--timings", str(out.parent)
    )  # the sample's own images keep their labels
    assert result.returncode == 0, result.stderr


def test_mismatched_counts_name_the_label_file(tmp_path):
    write_images(tmp_path / "i.gz", GREY)
    write_idx(tmp_path / "l.gz", LABELS[:5])
    line = _decode_fails(tmp_path, tmp_path / "i.gz", tmp_path / "l.gz")
    assert str(tmp_path / "l.gz") in line and "5 labels" in line and "7 images" in line


def test_labels_out_of_range_name_the_label_file(tmp_path):
    write_images(tmp_path / "i.gz", GREY)
    write_idx(tmp_path / "l.gz", np.array([0, 1, 2, 3, 4, 5, 12], np.uint8))
    line = _decode_fails(tmp_path, tmp_path / "i.gz", tmp_path / "l.gz")
    assert str(tmp_path / "l.gz") in line and "label 12 at index 6 is out of range 0..9" in line


def test_wider_label_range_is_a_parameter(tmp_path):
    write_images(tmp_path / "i.gz", GREY)
    write_idx(tmp_path / "l.gz", np.array([0, 1, 2, 3, 4, 5, 12], np.uint8))
    _, labels = decode_files(DecodeParams(str(tmp_path / "i.gz"), str(tmp_path / "l.gz"), num_classes=20))
    assert labels.max() == 12
    with pytest.raises(InputError):
        decode_files(DecodeParams(str(tmp_path / "i.gz"), str(tmp_path / "l.gz")))
