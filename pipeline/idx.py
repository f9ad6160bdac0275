"""MNIST idx files, gzipped or raw (told apart by content, not by name).

Images are returned as uint8 (N, H, W, C): C = 1 for grey idx3 files (magic 2051), C = 3 (or whatever the header
says) for colour idx4 files (magic 2052). Labels (magic 2049) come back as int64 (N,).
Every problem raises InputError naming the file, so the edges can print one line and exit 2.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from pipeline.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08
LABELS_MAGIC, GREY_MAGIC, COLOUR_MAGIC = 2049, 2051, 2052


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(str(path), "no such file") from None
    except IsADirectoryError:
        raise InputError(str(path), "is a directory, not a file") from None
    except OSError as exc:
        raise InputError(str(path), f"cannot read ({exc.strerror})") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise InputError(str(path), "truncated gzip stream") from None
    except (OSError, zlib.error) as exc:
        raise InputError(str(path), f"corrupt gzip stream ({exc})") from None


def read_idx(path: str | os.PathLike, expected_magic: tuple[int, ...]) -> np.ndarray:
    """Read one idx file whose magic is one of `expected_magic`; return its array (uint8, header's shape)."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise InputError(str(path), f"too short for an idx header ({len(data)} bytes)")
    zeros, type_code, ndim = data[:2], data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    want = " or ".join(str(m) for m in expected_magic)
    if zeros != b"\x00\x00":
        raise InputError(str(path), f"wrong magic number {magic} (expected {want})")
    if type_code != UBYTE:  # an idx file of another element type: say so rather than "wrong magic"
        raise InputError(str(path), f"unsupported element type 0x{type_code:02x} (only unsigned bytes, 0x08)")
    if magic not in expected_magic:
        raise InputError(str(path), f"wrong magic number {magic} (expected {want})")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise InputError(str(path), f"truncated header ({len(data)} bytes, {ndim} dimensions need {header_len})")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=np.int64))
    payload = len(data) - header_len
    if payload != expected:
        shape = " x ".join(str(d) for d in dims)
        problem = "truncated" if payload < expected else "has trailing bytes"
        raise InputError(str(path), f"{problem}: header says {shape} = {expected} bytes, payload has {payload}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims)


def read_images(path: str | os.PathLike) -> np.ndarray:
    """Images as uint8 (N, H, W, C)."""
    array = read_idx(path, (GREY_MAGIC, COLOUR_MAGIC))
    if array.ndim == 3:
        array = array[..., None]
    if array.shape[0] == 0:
        raise InputError(str(path), "holds no images (N = 0)")
    if min(array.shape[1:]) == 0:
        raise InputError(str(path), f"images have an empty dimension {array.shape[1:]}")
    return array


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Labels as int64 (N,)."""
    array = read_idx(path, (LABELS_MAGIC,))
    if array.shape[0] == 0:
        raise InputError(str(path), "holds no labels (N = 0)")
    return array.astype(np.int64)


def encode_idx(array: np.ndarray) -> bytes:
    """The raw idx bytes of a uint8 array: 1-D labels, 3-D grey images, 4-D colour images."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, UBYTE, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write an idx file atomically; gzip it when `compress` (default: when the name ends in .gz)."""
    from pipeline.artifacts import atomic_write_bytes

    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    data = encode_idx(array)
    # mtime=0 keeps the bytes (and so DVC's hashes) the same for the same array.
    atomic_write_bytes(path, gzip.compress(data, mtime=0) if compress else data)


def write_images(path: str | os.PathLike, images: np.ndarray, compress: bool | None = None) -> None:
    """(N, H, W, 1) or (N, H, W) images go out as grey idx3, (N, H, W, C>1) as colour idx4."""
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    write_idx(path, images, compress)
