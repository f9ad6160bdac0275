"""Real data in: image folders, manifests and arrays decode to one checked data set, class names and paths kept."""

import numpy as np
import pytest
from PIL import Image

from stages.decode import DecodeParams, read_dataset
from stages.decode_readers import as_images, as_labels, kind_of
from stages.errors import InputError

RNG = np.random.default_rng(0)


def picture(path, size=(12, 10), colour=False, exif_orientation=None):
    """A random picture: blocks of 3 x 3 pixels, so neighbouring pixels correlate as in a photo (not noise)."""
    blocks = RNG.integers(0, 256, (size[1] // 3 + 1, size[0] // 3 + 1) + ((3,) if colour else ()), dtype=np.uint8)
    pixels = blocks.repeat(3, axis=0).repeat(3, axis=1)[: size[1], : size[0]]
    image = Image.fromarray(pixels)
    path.parent.mkdir(parents=True, exist_ok=True)
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(path, exif=exif)
    else:
        image.save(path)
    return path


def decode(images, labels="", **params):
    return read_dataset(DecodeParams(str(images), str(labels), **params))


def test_a_folder_of_class_folders_is_read_with_its_class_names_sizes_and_colours_unified(tmp_path):
    picture(tmp_path / "cat" / "a.png")
    picture(tmp_path / "cat" / "b.png", size=(24, 20))  # bigger: brought to the most common size
    picture(tmp_path / "dog" / "c.jpg", colour=True)
    picture(tmp_path / "dog" / "d.bmp")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    data = decode(tmp_path)
    assert data.class_names == ["cat", "dog"] and data.labels.tolist() == [0, 0, 1, 1]
    assert data.images.shape == (4, 10, 12, 3) and data.images.dtype == np.uint8  # one colour image: all RGB
    assert [p.split("/")[-1] for p in data.paths] == ["a.png", "b.png", "c.jpg", "d.bmp"]


def test_exif_rotation_is_honoured_and_long_sides_are_capped(tmp_path):
    picture(tmp_path / "x" / "turned.jpg", size=(200, 100), exif_orientation=6)  # stored 200 wide, shown 100 wide
    data = decode(tmp_path, max_side=64)
    assert data.images.shape[1:3] == (64, 32)


def test_an_unreadable_file_is_named_or_left_out_on_request(tmp_path):
    picture(tmp_path / "a" / "good.png")
    picture(tmp_path / "b" / "fine.png")
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match=r"1 image files cannot be read: .*broken\.png"):
        decode(tmp_path)
    data = decode(tmp_path, skip_unreadable=True)
    assert len(data.labels) == 2 and "broken.png" in data.skipped[0]


def test_a_manifest_takes_paths_relative_to_itself_and_names_or_numbers_as_labels(tmp_path):
    picture(tmp_path / "img" / "1.png")
    picture(tmp_path / "img" / "2.png")
    (tmp_path / "labels.csv").write_text("path,label\nimg/1.png,truck\nimg/2.png,car\n")
    data = decode(tmp_path / "labels.csv")
    assert data.class_names == ["car", "truck"] and data.labels.tolist() == [1, 0]
    (tmp_path / "labels.tsv").write_text("img/1.png\t3\nimg/2.png\t7\n")
    data = decode(tmp_path / "labels.tsv")
    assert data.class_names is None and data.labels.tolist() == [3, 7]
    (tmp_path / "short.csv").write_text("img/1.png\n")
    with pytest.raises(InputError, match="no labelled sample"):
        decode(tmp_path / "short.csv")


def test_unlabelled_samples_come_in_every_form_as_label_minus_one(tmp_path):
    for name in ("1.png", "2.png", "3.png"):
        picture(tmp_path / "img" / name)
    (tmp_path / "m.csv").write_text("path,label\nimg/1.png,truck\nimg/2.png,\nimg/3.png\n")
    data = decode(tmp_path / "m.csv")
    assert data.class_names == ["truck"] and data.labels.tolist() == [0, -1, -1]
    folder = tmp_path / "folder"
    picture(folder / "cat" / "a.png")
    picture(folder / "unlabelled" / "b.png")
    picture(folder / "Unlabeled" / "c.png")
    data = decode(folder)
    assert data.class_names == ["cat"] and sorted(data.labels.tolist()) == [-1, -1, 0]
    images, labels = RNG.integers(0, 256, (4, 6, 6), dtype=np.uint8), np.array([0, -1, 2, -1])
    np.savez(tmp_path / "data.npz", images=images, labels=labels)
    assert decode(tmp_path / "data.npz").labels.tolist() == [0, -1, 2, -1]
    np.savez(tmp_path / "bad.npz", images=images, labels=np.array([0, -2, 2, 1]))
    with pytest.raises(InputError, match="-1 marks an unlabelled"):
        decode(tmp_path / "bad.npz")
    np.savez(tmp_path / "none.npz", images=images, labels=np.full(4, -1))
    with pytest.raises(InputError, match="no labelled sample"):
        decode(tmp_path / "none.npz")


def test_an_idx_label_value_marks_unlabelled_samples_only_when_asked(tmp_path):
    from pipeline.artifacts import write_idx
    from stages.decode import DecodeParams, read_dataset

    write_idx(tmp_path / "x.gz", RNG.integers(0, 256, (3, 6, 6), dtype=np.uint8))
    write_idx(tmp_path / "y.gz", np.array([1, 255, 3], np.uint8))
    params = DecodeParams(str(tmp_path / "x.gz"), str(tmp_path / "y.gz"), num_classes=None)
    assert read_dataset(params).labels.tolist() == [1, 255, 3]
    params = DecodeParams(str(tmp_path / "x.gz"), str(tmp_path / "y.gz"), num_classes=10, unlabelled=255)
    assert read_dataset(params).labels.tolist() == [1, -1, 3]


def test_arrays_come_as_an_npz_or_a_pair_of_npy_files(tmp_path):
    images, labels = RNG.integers(0, 256, (5, 6, 6), dtype=np.uint8), np.array([0, 1, 2, 1, 0])
    np.savez(tmp_path / "data.npz", images=images, labels=labels)
    assert decode(tmp_path / "data.npz").images.shape == (5, 6, 6, 1)
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "y.npy", labels)
    assert decode(tmp_path / "x.npy", tmp_path / "y.npy").labels.tolist() == labels.tolist()
    assert kind_of(tmp_path) == "folder" and kind_of(tmp_path / "a.idx.gz") == "idx"


def test_channels_first_and_float_arrays_are_recognised_and_ambiguous_ones_refused():
    channels_first = RNG.random((4, 3, 8, 9))  # floats in [0, 1], as torch keeps them
    images = as_images(channels_first, "x")
    assert images.shape == (4, 8, 9, 3) and images.dtype == np.uint8
    assert images[0, 2, 5, 1] == round(channels_first[0, 1, 2, 5] * 255)
    with pytest.raises(InputError, match="could be channels-first or channels-last"):
        as_images(np.zeros((2, 3, 5, 4)), "x")
    with pytest.raises(InputError, match="not 0..1 or 0..255"):
        as_images(np.full((2, 5, 5), 300.0), "x")
    assert as_labels(np.array(["b", "a", "b"]), "y")[0].tolist() == [1, 0, 1]


def test_names_travel_to_the_results_a_person_reads(tmp_path):
    import csv
    import json

    from pipeline import steps
    from pipeline.paths import PATHS
    from stages import aggregate, group, train
    from stages import decode as decode_stage

    for name in ["apple", "pear"]:
        for i in range(12):
            picture(tmp_path / "data" / name / f"{i}.png")
    twin = tmp_path / "data" / "pear" / "twin-of-apple-0.png"
    twin.write_bytes((tmp_path / "data" / "apple" / "0.png").read_bytes())
    paths = PATHS.under(tmp_path)
    steps.decode(decode_stage.DecodeParams(str(tmp_path / "data"), ""), paths)
    steps.group(group.GroupParams(), paths)
    steps.train(train.TrainParams(model="linear", n_models=3, min_steps=10, n_jobs=1), paths)
    steps.aggregate(aggregate.AggregateParams(flag_without_twin=False), paths)
    rows = list(csv.DictReader(open(tmp_path / "results" / "samples.csv")))
    assert {r["given"] for r in rows} == {"apple", "pear"} and rows[0]["path"].endswith("apple/0.png")
    twins = [r for r in rows if r["twins"]]
    assert len(twins) == 2 and {r["given"] for r in twins} == {"apple", "pear"}
    wrong = [r for r in csv.DictReader(open(tmp_path / "results" / "issues.csv")) if r["flagged"] == "1"]
    assert len(wrong) == 1 and wrong[0]["path"] in {twins[0]["path"], twins[1]["path"]}  # the twin group's loser
    assert set(json.loads((tmp_path / "metrics.json").read_text())["flagged_by_class"]) == {"apple", "pear"}


@pytest.mark.parametrize(
    "shape, problem",
    [
        ((6, 3, 28), "images of 3 x 28 pixels (height x width) are too small: at least 4 x 4 needed"),
        ((6, 2, 28), "images of 2 x 28 pixels"),
        ((6, 1, 784), "if they are flattened, reshape them to (N, H, W)"),
        ((6, 28, 28, 2), "have 2 channels (1, 3 or 4 expected)"),
        ((6, 8, 8, 7), "have 7 channels (1, 3 or 4 expected)"),
    ],
)
def test_images_too_small_for_the_cnn_or_with_odd_channels_are_refused_alike_in_every_form(tmp_path, shape, problem):
    from pipeline.api import find_issues
    from pipeline.artifacts import write_idx, write_images

    images, labels = RNG.integers(0, 256, shape, dtype=np.uint8), np.arange(6) % 2
    write_images(tmp_path / "x.gz", images)
    write_idx(tmp_path / "y.gz", labels.astype(np.uint8))
    np.savez(tmp_path / "data.npz", images=images, labels=labels)
    for path, labels_path in ((tmp_path / "x.gz", tmp_path / "y.gz"), (tmp_path / "data.npz", "")):
        with pytest.raises(InputError) as exc:
            decode(path, labels_path)
        assert str(exc.value).startswith(f"{path}: ") and problem in str(exc.value)
    with pytest.raises(InputError) as exc:
        find_issues(images, labels)
    assert problem in str(exc.value)
    if len(shape) == 3:  # a folder of such pictures, too (shrunk to max_side as they are read)
        for i in range(4):
            picture(tmp_path / "folder" / "ab"[i % 2] / f"{i}.png", size=shape[:0:-1])
        with pytest.raises(InputError, match="pixels .height x width. are too small: at least 4 x 4 needed"):
            decode(tmp_path / "folder")


@pytest.mark.parametrize(
    "labels, problem",
    [
        (np.zeros((6, 1), int), "must be one-dimensional"),
        (np.array([""] * 6), "every label is empty"),
        (np.array(3), "must be one-dimensional"),
    ],
    ids=["2-D", "empty", "0-d"],
)
def test_label_problems_inside_an_npz_name_the_npz_not_a_labels_path_it_does_not_read(tmp_path, labels, problem):
    path = tmp_path / "data.npz"
    np.savez(path, images=RNG.integers(0, 256, (6, 8, 8), dtype=np.uint8), labels=labels)
    for labels_path in (DecodeParams.labels, tmp_path / "ignored.gz"):  # the default, or one given by mistake
        with pytest.raises(InputError) as exc:
            decode(path, labels_path)
        assert str(exc.value).startswith(f"{path}: ") and problem in str(exc.value)


@pytest.mark.parametrize(
    "labels, problem",
    [
        (np.array([1, 2**64 - 1], np.uint64), "label 18446744073709551615 at index 1 is too large for a class id"),
        (np.array([1.0, 1e30]), "label 1e+30 at index 1 is too large for a class id"),
        (np.array([1.0, -1e30], np.float32), "label -1e+30 at index 1 is negative"),
    ],
    ids=["uint64-max", "float-1e30", "float-minus-1e30"],
)
def test_labels_past_the_int64_range_are_named_never_wrapped_and_warn_nothing(tmp_path, labels, problem):
    import warnings

    np.save(tmp_path / "x.npy", RNG.integers(0, 256, (2, 8, 8), dtype=np.uint8))
    np.save(tmp_path / "y.npy", labels)
    with warnings.catch_warnings(), pytest.raises(InputError) as exc:
        warnings.simplefilter("error")
        decode(tmp_path / "x.npy", tmp_path / "y.npy")
    assert str(exc.value).startswith(f"{tmp_path / 'y.npy'}: {problem}")
