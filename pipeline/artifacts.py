"""Atomic file writes, the .npz artifacts that pass arrays between stages, and idx files written for people."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import re
import shutil
import socket
import tempfile
import zipfile
from contextvars import ContextVar
from pathlib import Path
from typing import TypeVar

import numpy as np

from stages.artifact import Artifact
from stages.decode_idx import encode_idx
from stages.errors import InputError

A = TypeVar("A", bound=Artifact)


_PENDING: ContextVar[list[tuple[str, Path]] | None] = ContextVar("pending_writes", default=None)
_CREATED: ContextVar[list[Path] | None] = ContextVar("created_folders", default=None)  # all_or_nothing's, to undo


def unwritable(path: str | os.PathLike, exc: OSError) -> InputError:
    """The one line for an output that cannot be written (a full disk, no permission, a folder in its place)."""
    return InputError(str(path), f"cannot be written ({exc.strerror or exc})")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file. Inside all_or_nothing
    the rename waits for the end of the block. A file that cannot be written is one InputError naming it."""
    path = Path(path)
    tmp = None
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a folder, not a file")
        made_folders(path.parent)
        remove_debris(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path.name), suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would create it: mkstemp's private 0600 is for the temporary
        pending = _PENDING.get()
        if pending is None:
            os.replace(tmp, path)
        else:
            pending.append((tmp, path))
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise unwritable(path, exc) from None
        raise


HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]  # temporaries name the machine that made them
DEBRIS = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[a-z0-9_]+\.tmp")  # temporary_prefix's


def temporary_prefix(name: str) -> str:
    """The start of a temporary's name beside `name`: hidden, and naming the process and machine that write it,
    so that a later run can tell a dead run's debris (remove_debris) from a live run's work."""
    return f".{name}.{os.getpid()}-{HOST}-"


def remove_debris(folder: Path) -> None:
    """Remove the temporaries a run killed outright (SIGKILL, a power cut) left in `folder`: those named by
    temporary_prefix on this machine by a process that no longer runs. Another run's live work is left alone."""
    try:
        entries = [entry for entry in folder.iterdir() if entry.name.endswith(".tmp")]
    except OSError:
        return
    for entry in entries:
        match = DEBRIS.fullmatch(entry.name)
        if match is None or match["host"] != HOST or running(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def running(pid: int) -> bool:
    """Is there a process `pid` on this machine (this one included)?"""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process
        return True
    return True


def made_folders(folder: Path) -> None:
    """mkdir -p folder; inside all_or_nothing, remember the folders it made, so a failed block takes them back."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    created = _CREATED.get()
    if created is not None:
        created.extend(reversed(missing))


@contextlib.contextmanager
def all_or_nothing():
    """The files written inside the block (atomic_write_bytes) appear together at its end, or none of them when
    anything in it fails: a step stopped by a full disk, an unwritable folder or Ctrl-C leaves no half of its
    outputs beside the older other half, nor the empty folders it made for them."""
    pending: list[tuple[str, Path]] = []
    created: list[Path] = []

    def discard() -> None:
        for tmp, _ in pending:
            Path(tmp).unlink(missing_ok=True)
        for folder in reversed(created):  # deepest first; a folder something else filled meanwhile stays
            with contextlib.suppress(OSError):
                folder.rmdir()

    tokens = _PENDING.set(pending), _CREATED.set(created)
    try:
        yield
    except BaseException:
        discard()
        raise
    finally:
        _PENDING.reset(tokens[0])
        _CREATED.reset(tokens[1])
    for tmp, path in pending:
        try:
            os.replace(tmp, path)
        except OSError as exc:
            discard()
            raise unwritable(path, exc) from None


@contextlib.contextmanager
def immediate_writes():
    """Inside all_or_nothing, a block whose writes land at once (export fills a staging folder of its own)."""
    tokens = _PENDING.set(None), _CREATED.set(None)
    try:
        yield
    finally:
        _PENDING.reset(tokens[0])
        _CREATED.reset(tokens[1])


@contextlib.contextmanager
def staged_folder(out: Path):
    """A temporary folder beside `out` (which must be new or empty) to fill in the block; at its end the folder
    becomes `out`, or, when anything in the block fails (Ctrl-C, SIGTERM, a full disk), it is removed: `out` is
    complete or absent. Its name is temporary_prefix's, so a run killed outright leaves debris the next removes."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(str(out), "exists and is not an empty folder: export writes a new copy, never over data")
    try:
        made_folders(out.parent)
        remove_debris(out.parent)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=temporary_prefix(out.name), suffix=".tmp"))
    except OSError as exc:
        raise unwritable(out.parent, exc) from None
    try:
        with immediate_writes():  # the staging folder is this block's all-or-nothing
            yield staging
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise unwritable(out, exc) from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """UTF-8; a file or class name the file system gave as bytes that are not UTF-8 (Python's surrogate escapes)
    goes out as those bytes, so the name in a table or manifest still opens its file."""
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write an idx file atomically; gzip it when `compress` (default: when the name ends in .gz)."""
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


def save(path: str | os.PathLike, result: Artifact) -> None:
    """A stage's result as its .npz artifact (the arrays its type names in FIELDS)."""
    save_arrays(path, **result.to_arrays())


def load(path: str | os.PathLike, kind: type[A], n: int | None = None) -> A:
    """The result of type `kind` saved at `path`, checked (stages/artifact.py; n: rows per sample where given).
    Anything amiss is one InputError naming the file and the command that rewrites it."""
    again = f"run 'twins {kind.STAGE}' again"
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise InputError(str(path), f"not an .npz artifact ({again})")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise InputError(str(path), f"no such artifact (run 'twins {kind.STAGE}' first)") from None
    except InputError:
        raise
    except Exception as exc:  # a damaged archive fails in many ways (BadZipFile, EOFError, ValueError, ...)
        raise InputError(str(path), f"damaged artifact ({type(exc).__name__}: {exc}; {again})") from None
    return kind.from_arrays(arrays, str(path), n)
