"""Atomic file writes and the .npz artifacts that pass arrays between stages."""
from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from pipeline.errors import InputError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would create it: mkstemp's private 0600 is for the temporary
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_arrays(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """An .npz that np.load reads, written byte for byte the same for the same arrays (no zip timestamps), so
    DVC sees an unchanged artifact when a stage reruns on unchanged inputs."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(entry, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def write_timing(path: str | os.PathLike, **values: float) -> None:
    """A stage's wall-clock figures, kept out of its data artifact (they differ on every run): a DVC metric."""
    import json

    atomic_write_text(path, json.dumps({k: round(float(v), 3) for k, v in values.items()}, indent=2) + "\n")


# What the stages after it read from each stage's artifact: array name -> (dtype kinds, dimensions, "N" where
# there is one row per sample). The loader checks every artifact against this before a stage uses it.
FORMATS = {
    "decode": {"images": ("u", 4, "N"), "labels": ("iu", 1, "N")},
    "group": {"group": ("iu", 1, "N")},
    "train": {"prob_sum": ("f", 2, "N"), "n_scored": ("iu", 1, "N"), "votes": ("iu", 2, "N"),
              "loss_curves": ("f", 2, None), "nn_prob": ("f", 2, "N"), "nn_scored": ("b", 1, "N"),
              "through_conflicts": ("b", 0, None)},
}


def load_arrays(path: str | os.PathLike, stage: str, n: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of `stage`'s artifact at `path`, checked against FORMATS (names, dtypes, dimensions, and n rows
    where given). Anything amiss is one InputError naming the file and the command that rewrites it."""
    again = f"run 'twins {stage}' again"
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise InputError(str(path), f"not an .npz artifact ({again})")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise InputError(str(path), f"no such artifact (run 'twins {stage}' first)") from None
    except InputError:
        raise
    except Exception as exc:  # a damaged archive fails in many ways (BadZipFile, EOFError, ValueError, ...)
        raise InputError(str(path), f"damaged artifact ({type(exc).__name__}: {exc}; {again})") from None
    for name, (kinds, ndim, rows) in FORMATS[stage].items():
        if name not in arrays:
            raise InputError(str(path), f"holds no array '{name}' ({again})")
        array = arrays[name]
        if array.dtype.kind not in kinds or array.ndim != ndim:
            raise InputError(str(path), f"'{name}' is {array.dtype} with {array.ndim} dimensions, not what "
                                        f"'twins {stage}' writes ({again})")
        if rows == "N":
            n = len(array) if n is None else n
            if len(array) != n:
                raise InputError(str(path), f"'{name}' has {len(array)} rows for {n} samples ({again})")
    return arrays
