"""Stage 1, decode: the data in (idx files, image folders, manifests, arrays), one checked artifact out: images,
labels, class names and source paths where the data have them, and the sources' checksums."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stages.artifact import Artifact, Field
from stages.decode_idx import read_images, read_labels
from stages.decode_readers import (
    CHANNELS,
    DIGEST_BYTES,
    HASH_CHUNK,
    Read,
    image_files,
    kind_of,
    read_arrays,
    read_image_folder,
    read_manifest,
)
from stages.errors import InputError
from stages.labels import UNLABELLED
from stages.params import Params, param

MAX_CLASSES = 256  # integer labels lie in 0..255 at most (every per-class array has a column per id); names: any
MIN_SIDE = 4  # the CNN pools twice by 2 (stages/train_models.py): a smaller side pools to nothing


@dataclass(frozen=True)
class DecodeParams(Params):
    """Where the data are and how to read them (docs: "Your data")."""

    images: str = param(
        "data/sample/images-idx3-ubyte.gz",
        "The data: idx images (gzipped or raw), a folder of class folders, a CSV or TSV manifest of path,label rows, "
        "an .npz of images and labels, or an .npy of images.",
    )
    labels: str = param(
        "data/sample/labels-idx1-ubyte.gz",
        "The idx (or .npy) labels beside idx (or .npy) images; folders, manifests and .npz carry their own.",
    )
    num_classes: int | None = param(
        10,
        f"Integer labels must lie in 0..num_classes-1 (null: up to {MAX_CLASSES}); named classes are what they are.",
        within=f"1..{MAX_CLASSES}",
    )
    max_side: int = param(
        64, "Images read from files are brought to one size whose longer side is at most this.", within="4..1024"
    )
    skip_unreadable: bool = param(False, "Leave out image files that cannot be decoded (listed) instead of stopping.")
    unlabelled: int | None = param(
        None,
        "The idx or .npy label value that marks a sample without a label (null: every value is a class); folders "
        "(an unlabelled/ folder), manifests (an empty label) and arrays (-1) mark their own.",
        within="0..2147483647",
    )


@dataclass
class Dataset(Artifact):
    """The decode stage's result and artifact."""

    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray  # int64 (N,): class ids, labels.UNLABELLED (-1) where a sample carries none
    class_names: list[str] | None = None  # name of each label id, where the data name their classes
    paths: list[str] | None = None  # source file of each sample, where there is one
    skipped: list[str] = field(default_factory=list)  # unreadable files left out (with skip_unreadable)
    images_sha256: str = ""  # checksums of the source files (a folder: of its file names and bytes)
    labels_sha256: str = ""  # "" where the images carry their own labels
    source: str = ""  # decode.images as given: the data these are ("" where they came as arrays)
    source_kind: str = ""  # what it is (decode_readers.kind_of): "folder", "manifest", "npz", "npy" or "idx"
    # uint8 (N, DIGEST_BYTES) where samples came from files: the start of each file's sha256 as decoded
    digests: np.ndarray = field(default_factory=lambda: np.zeros((0, DIGEST_BYTES), np.uint8))

    STAGE = "decode"
    FIELDS = {
        "images": Field("u", 4, True),
        "labels": Field("iu", 1, True),
        "class_names": Field("U", 1),
        "paths": Field("U", 1),
        "skipped": Field("U", 1),
        "images_sha256": Field("U", 0),
        "labels_sha256": Field("U", 0),
        "source": Field("U", 0),
        "source_kind": Field("U", 0),
        "digests": Field("u", 2),
    }

    @property
    def fingerprint(self) -> str:
        """16 hex digits that tell this decoded data set from any other: a hash of its pixels, labels, class names
        and source paths. Whatever is made from it (artifacts, the review page, a choices file) can carry it."""
        import hashlib

        digest = hashlib.sha256(repr((self.images.shape, self.class_names, self.paths)).encode())
        digest.update(np.ascontiguousarray(self.images).tobytes())
        digest.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]

    def to_arrays(self) -> dict[str, np.ndarray]:
        texts = {name: np.array(getattr(self, name) or [], dtype=str) for name in ("class_names", "paths", "skipped")}
        return super().to_arrays() | texts

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], source: str, n: int | None = None) -> Dataset:
        data = super().from_arrays(arrays, source, n)
        data.labels = data.labels.astype(np.int64)
        data.class_names = [str(name) for name in data.class_names] or None
        data.paths = [str(path) for path in data.paths] or None
        data.skipped = [str(path) for path in data.skipped]
        if len(data.digests) not in (0, len(data.labels)) or data.digests.shape[1:] != (DIGEST_BYTES,):
            raise InputError(source, f"'digests' has shape {data.digests.shape} (run 'twins decode' again)")
        return data


def check_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int | None,
    images_name: str = "images",
    labels_name: str = "labels",
) -> None:
    """Raise InputError unless images and labels describe one data set: images (N, H, W, C) of at least MIN_SIDE
    pixels a side and 1, 3 or 4 channels, whatever form they came in. num_classes: None for labels numbered from
    class names (any number of them); integer labels lie in 0..num_classes-1, or are UNLABELLED; at least one
    sample carries a label."""
    height, width, channels = images.shape[1:]
    if min(height, width) < MIN_SIDE:
        hint = " (if they are flattened, reshape them to (N, H, W))" if height == 1 < width else ""
        raise InputError(
            images_name,
            f"images of {height} x {width} pixels (height x width) are too small: at "
            f"least {MIN_SIDE} x {MIN_SIDE} needed{hint}",
        )
    if channels not in CHANNELS:
        raise InputError(images_name, f"images of shape {images.shape} have {channels} channels (1, 3 or 4 expected)")
    if len(images) != len(labels):
        raise InputError(labels_name, f"holds {len(labels)} labels but {images_name} holds {len(images)} images")
    if len(labels) and (labels == UNLABELLED).all():
        raise InputError(labels_name, "holds no labelled sample (every label marks an unlabelled one)")
    if num_classes is not None:
        out_of_range = np.flatnonzero(((labels < 0) & (labels != UNLABELLED)) | (labels >= num_classes))
        if out_of_range.size:
            first = int(out_of_range[0])
            hint = (
                "set decode.num_classes to allow more classes"
                if num_classes < MAX_CLASSES
                else f"integer labels stop at {MAX_CLASSES - 1}: give more classes names"
            )
            raise InputError(
                labels_name,
                f"label {int(labels[first])} at index {first} is out of range "
                f"0..{num_classes - 1} ({out_of_range.size} such labels; {hint})",
            )


def read_dataset(params: DecodeParams) -> Dataset:
    """Read and check the data in whatever form params.images names (decode_readers.kind_of)."""
    if not params.images:  # Path("") is the working folder, which would be read as a folder of classes
        raise InputError("decode.images", "is empty")
    kind = kind_of(params.images)
    if kind == "idx" and not params.labels:
        raise InputError("decode.labels", "is empty: idx images need their labels' file")
    if kind == "folder":
        read = read_image_folder(Path(params.images), params.max_side, params.skip_unreadable)
    elif kind == "manifest":
        read = read_manifest(Path(params.images), params.max_side, params.skip_unreadable)
    elif kind in ("npz", "npy"):
        read = read_arrays(Path(params.images), Path(params.labels) if params.labels else None)
    else:
        read = Read(read_images(params.images), read_labels(params.labels))
    if params.unlabelled is not None and kind in ("idx", "npy"):
        read = read._replace(labels=np.where(read.labels == params.unlabelled, UNLABELLED, read.labels))
    dataset = Dataset(read.images, read.labels, read.class_names, read.paths, list(read.skipped))
    dataset.source, dataset.source_kind = str(params.images), kind
    if read.digests is not None:
        dataset.digests = read.digests
    self_labelled = kind in ("folder", "manifest", "npz")
    num_classes = None if dataset.class_names else params.num_classes or MAX_CLASSES
    check_dataset(
        dataset.images, dataset.labels, num_classes, params.images, params.images if self_labelled else params.labels
    )
    return dataset


def decode(params: DecodeParams) -> Dataset:
    """The stage: the checked data set, with its sources' checksums (what the artifact records)."""
    dataset = read_dataset(params)
    dataset.images_sha256 = fingerprint(params.images, params.skip_unreadable)
    separate_labels = kind_of(params.images) in ("idx", "npy") and params.labels
    dataset.labels_sha256 = fingerprint(params.labels) if separate_labels else ""
    return dataset


def decode_files(params: DecodeParams) -> tuple[np.ndarray, np.ndarray]:
    """Read and check the data: (images uint8 (N, H, W, C), labels int64 (N,))."""
    dataset = read_dataset(params)
    return dataset.images, dataset.labels


def fingerprint(path: str, skip_unreadable: bool = False) -> str:
    """sha256 of a file's bytes, or of a folder's image file names and bytes (the files the folder reader reads:
    an archive beside them costs nothing; with skip_unreadable, those it cannot read count by name alone), for the
    artifact's record of its source. Files are hashed as streams."""
    path = Path(path)
    digest = hashlib.sha256()

    def add(file: Path, unreadable_ok: bool = False) -> None:
        try:
            with open(file, "rb") as f:
                while chunk := f.read(HASH_CHUNK):
                    digest.update(chunk)
        except OSError as exc:
            if not unreadable_ok:
                raise InputError(str(file), f"cannot read ({exc.strerror or exc})") from None

    if path.is_dir():
        for file, _ in image_files(path)[0]:
            if file.is_file():
                digest.update(os.fsencode(file.relative_to(path)) + b"\0")  # the bytes the file system holds
                add(file, skip_unreadable)
    elif path.is_file():
        add(path)
    return digest.hexdigest()
