"""Stage 1, decode: idx files in, one checked artifact (images, labels, source checksums) out."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.artifacts import load_arrays, save_arrays
from pipeline.errors import InputError
from pipeline.idx import read_images, read_labels


@dataclass(frozen=True)
class DecodeParams:
    """images, labels: paths of the idx files (gzipped or raw).
    num_classes: labels must lie in 0..num_classes-1; null accepts any byte value."""

    images: str = "data/sample/images-idx3-ubyte.gz"
    labels: str = "data/sample/labels-idx1-ubyte.gz"
    num_classes: int | None = 10

    def __post_init__(self):
        if self.num_classes is not None and not 1 <= self.num_classes <= 256:
            raise ValueError(f"num_classes must lie in 1..256, got {self.num_classes}")


def check_dataset(images: np.ndarray, labels: np.ndarray, num_classes: int | None,
                  images_name: str = "images", labels_name: str = "labels") -> None:
    """Raise InputError unless images and labels describe one data set."""
    if len(images) != len(labels):
        raise InputError(labels_name, f"holds {len(labels)} labels but {images_name} holds {len(images)} images")
    if num_classes is not None:
        out_of_range = np.flatnonzero((labels < 0) | (labels >= num_classes))
        if out_of_range.size:
            first = int(out_of_range[0])
            raise InputError(labels_name, f"label {int(labels[first])} at index {first} is out of range "
                                          f"0..{num_classes - 1} ({out_of_range.size} such labels; "
                                          f"set decode.num_classes to allow more classes)")


def decode_files(params: DecodeParams) -> tuple[np.ndarray, np.ndarray]:
    """Read and check both files: (images uint8 (N, H, W, C), labels int64 (N,))."""
    images = read_images(params.images)
    labels = read_labels(params.labels)
    check_dataset(images, labels, params.num_classes, params.images, params.labels)
    return images, labels


def sha256_of(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run(params: DecodeParams, out: str = "artifacts/decoded.npz") -> None:
    """File wrapper for DVC: decode, then write the artifact atomically (nothing is written on failure)."""
    start = time.monotonic()
    images, labels = decode_files(params)
    save_arrays(out, images=images, labels=labels, seconds=np.array(time.monotonic() - start),
                images_sha256=np.array(sha256_of(params.images)), labels_sha256=np.array(sha256_of(params.labels)))


def load(path: str = "artifacts/decoded.npz") -> tuple[np.ndarray, np.ndarray]:
    arrays = load_arrays(path, "decode")
    return arrays["images"], arrays["labels"].astype(np.int64)
