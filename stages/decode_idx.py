"""MNIST idx files, gzipped or raw (told apart by content, not by name).

Images are returned as uint8 (N, H, W, C): C = 1 for grey idx3 files (magic 2051), C = 3 (or whatever the header
says) for colour idx4 files (magic 2052). Labels (magic 2049) come back as int64 (N,).
Every problem raises InputError naming the file, so the edges can print one line and exit 2.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from stages.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08
LABELS_MAGIC, GREY_MAGIC, COLOUR_MAGIC = 2049, 2051, 2052
MAX_BYTES = 16 * 2**30  # the largest payload a header may declare (60k 28 x 28 digits are 47 MB)
CHUNK = 2**24  # bytes decompressed per read


def _open(path: Path):
    """A binary stream of the file's idx bytes: decompressed as it is read when the file is gzipped."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise InputError(str(path), "no such file") from None
    except IsADirectoryError:
        raise InputError(str(path), "is a directory, not a file") from None
    except OSError as exc:
        raise InputError(str(path), f"cannot read ({exc.strerror})") from None
    try:
        magic = f.peek(2)[:2]  # peek, not read and seek back: a pipe (--data <(zcat ...)) cannot seek
    except OSError as exc:
        f.close()
        raise InputError(str(path), f"cannot read ({exc.strerror or exc})") from None
    if magic == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=f, mode="rb"), f
    return f, f


def _read(stream, n: int, path: Path) -> bytes:
    """Up to n bytes, read in chunks (a short read means the data ended); gzip damage is one InputError."""
    parts, have = [], 0
    try:
        while have < n:
            part = stream.read(min(CHUNK, n - have))
            if not part:
                break
            parts.append(part)
            have += len(part)
    except EOFError:
        raise InputError(str(path), "truncated gzip stream") from None
    except (OSError, zlib.error) as exc:
        raise InputError(str(path), f"corrupt gzip stream ({exc})") from None
    return b"".join(parts)


def read_idx(path: str | os.PathLike, expected_magic: tuple[int, ...]) -> np.ndarray:
    """Read one idx file whose magic is one of `expected_magic`; return its array (uint8, header's shape).

    The header is read and checked first (sizes in Python integers, which cannot overflow, and against MAX_BYTES),
    then exactly the declared payload, then one byte more to find trailing data (in a gzip, up to a chunk more, to
    find damage its CRC reveals): whatever a file claims, no more than its real data plus one chunk is ever held in
    memory (a gzip bomb stops a chunk past the declared size)."""
    path = Path(path)
    stream, raw = _open(path)
    with raw, stream:
        head = _read(stream, 4, path)
        if len(head) < 4:
            raise InputError(str(path), f"too short for an idx header ({len(head)} bytes)")
        zeros, type_code, ndim = head[:2], head[2], head[3]
        magic = int.from_bytes(head, "big")
        want = " or ".join(str(m) for m in expected_magic)
        if zeros != b"\x00\x00":
            raise InputError(str(path), f"wrong magic number {magic} (expected {want})")
        if type_code != UBYTE:  # an idx file of another element type: say so rather than "wrong magic"
            raise InputError(str(path), f"unsupported element type 0x{type_code:02x} (only unsigned bytes, 0x08)")
        if magic not in expected_magic:
            raise InputError(str(path), f"wrong magic number {magic} (expected {want})")
        sizes = _read(stream, 4 * ndim, path)
        if len(sizes) < 4 * ndim:
            raise InputError(
                str(path), f"truncated header ({4 + len(sizes)} bytes, {ndim} dimensions need {4 + 4 * ndim})"
            )
        dims = tuple(int.from_bytes(sizes[4 * i : 4 * i + 4], "big") for i in range(ndim))
        expected = math.prod(dims)
        shape = " x ".join(str(d) for d in dims)
        if expected > MAX_BYTES:
            raise InputError(
                str(path),
                f"header says {shape} = {expected:,} bytes, more than the {MAX_BYTES // 2**30} GiB this tool reads",
            )
        payload = _read(stream, expected, path)
        if len(payload) < expected:
            raise InputError(
                str(path), f"truncated: header says {shape} = {expected} bytes, payload has {len(payload)}"
            )
        if _read(stream, 1, path):
            if stream is not raw:  # damaged deflate data can inflate past the header's size: the CRC at the end
                _read(stream, CHUNK, path)  # tells corrupt from long (within a chunk, so a bomb still stops)
            raise InputError(
                str(path), f"has trailing bytes: header says {shape} = {expected} bytes, the file holds more"
            )
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims)


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
