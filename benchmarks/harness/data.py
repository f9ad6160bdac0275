"""Where the data sets are: the bundled ones under data/ (pipeline.plant.load_source) and the larger ones in
../shared/data beside the repository (not shipped with it; its README lists them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
LETTERS = list("ABCDEFGHIJ")  # notMNIST's classes


class MissingData(Exception):
    """A data set a benchmark needs is not where it is looked for: one line, no traceback (benchmarks/__main__)."""


def shared(name: str, split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, H, W, 1), labels int64 (N,)) of ../shared/data's `name`-`split` idx files, e.g. ("mnist",
    "train") for MNIST's 60,000 training digits; ("fashion", "t10k") for Fashion-MNIST's test items."""
    from stages.decode_idx import read_images, read_labels
    from stages.errors import InputError

    images, labels = SHARED / f"{name}-{split}-images-idx3-ubyte.gz", SHARED / f"{name}-{split}-labels-idx1-ubyte.gz"
    try:
        return read_images(images), read_labels(labels)
    except InputError as exc:
        raise MissingData(
            f"needs {images.name} and {labels.name} in {SHARED} (not shipped with the repo): {exc}"
        ) from None


def class_names(name: str, n_classes: int) -> list[str] | None:
    """The names of a shared set's classes where they are known (Fashion-MNIST's, notMNIST's letters), else None."""
    if name == "notmnist":
        return LETTERS[:n_classes]
    path = SHARED / f"{name}-classes.txt"
    return path.read_text().split("\n")[:n_classes] if path.exists() else None
