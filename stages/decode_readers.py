"""Data sets as people keep them, for the decode stage: image folders, manifests and numpy arrays.

Each reader returns a Read of uint8 images (N, H, W, C), int64 labels, and where the data have them the class
names and each sample's source path. The rules for mixed sizes and colour modes are in the docs
(docs: "Your data: Sizes, colours and names"). Every problem is an InputError naming the file, so the edges print
one line and exit 2.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

from stages.errors import InputError
from stages.labels import UNLABELLED
from stages.tables import plain_cell

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}  # what Pillow reads here
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}  # Pillow modes without colour
SHOWN = 3  # unreadable files named in the error, before the count
UNLABELLED_FOLDERS = ("unlabelled", "unlabeled")  # a folder of images without a label, beside the class folders
MAX_LABEL_ID = 2**31  # integer labels past this are no class ids (check_dataset bounds them further)
CHANNELS = (1, 3, 4)  # grey, colour, colour with alpha
DIGEST_BYTES = 16  # of a file's sha256: what export checks a source file's content against before it copies it
HASH_CHUNK = 2**20  # bytes a checksum reads at a time


def file_digest(f) -> bytes:
    """The first DIGEST_BYTES of the sha256 of an open binary file's bytes, read as a stream from where it is."""
    import hashlib

    digest = hashlib.sha256()
    while chunk := f.read(HASH_CHUNK):
        digest.update(chunk)
    return digest.digest()[:DIGEST_BYTES]


class Read(NamedTuple):
    """What a reader found: uint8 images (N, H, W, C), int64 labels (N,), and where the data have them the class
    names, each sample's source path and the files left out as unreadable."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str] | None = None
    paths: list[str] | None = None
    skipped: tuple[str, ...] | list[str] = ()
    digests: np.ndarray | None = None  # uint8 (N, DIGEST_BYTES): file_digest of each sample's file, where files


def kind_of(path: str | os.PathLike) -> str:
    """What a path holds, told from what it is: "folder", "manifest" (.csv/.tsv), "npz", "npy" or "idx"."""
    path = Path(path)
    try:
        folder = path.is_dir()
    except OSError as exc:  # a name too long for the file system, a parent folder without permission
        raise InputError(str(path), f"cannot read ({exc.strerror or exc})") from None
    if folder:
        return "folder"
    suffix = path.suffix.lower()
    return {".csv": "manifest", ".tsv": "manifest", ".npz": "npz", ".npy": "npy"}.get(suffix, "idx")


def labels_from_values(values: list[str], source: str) -> tuple[np.ndarray, list[str] | None]:
    """Integer labels as they are (ASCII digits only: '²' is a name); class names numbered in sorted order (as
    torchvision's ImageFolder does); an empty value is UNLABELLED. Two spellings of one number ('01' and '1') are
    refused, not merged."""
    values = [v.strip() for v in values]
    given = [v for v in values if v]
    if not given:
        raise InputError(source, "holds no labelled sample (every label is empty)")
    for row, value in enumerate(values, 1):
        try:  # a lone surrogate is no text: no file, table or page could hold the name
            value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise InputError(
                source, f"label {ascii(value)[:40]} (row {row}) is not valid text (a lone surrogate)"
            ) from None
    if all(v.isascii() and v.isdigit() for v in given):
        numbers = [int(v) if v else UNLABELLED for v in values]
        spelling: dict[int, str] = {}
        for row, (number, text) in enumerate(zip(numbers, values), 1):
            if number >= MAX_LABEL_ID:
                raise InputError(
                    source,
                    f"label {text[:20]}{'...' if len(text) > 20 else ''} (row {row}) is too large for a class id",
                )
            if text and spelling.setdefault(number, text) != text:
                raise InputError(
                    source,
                    f"labels {spelling[number]!r} and {text!r} are one number, {number}: "
                    f"rename one so the classes stay apart",
                )
        return np.array(numbers, np.int64), None
    names = sorted(set(given))
    index = {name: i for i, name in enumerate(names)} | {"": UNLABELLED}
    return np.array([index[v] for v in values], np.int64), names


def image_files(root: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """(file, class name) of every image file under root/<class name>/, classes in sorted order and files sorted
    within each; hidden files and folders (.ipynb_checkpoints, .DS_Store) are left out, and so are the tool's own
    output folders (tool_output) wherever they sit. The images of a folder named in UNLABELLED_FOLDERS carry the
    class name "" (no label). Second, the folders that cannot be listed, each as "folder (problem)"."""
    try:
        classes = sorted(
            p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and not tool_output(p)
        )
    except OSError as exc:
        raise InputError(str(root), f"cannot list ({exc.strerror or exc})") from None
    found, unlisted = [], []

    def cannot_list(exc: OSError) -> None:  # rglob passes such a folder over in silence
        unlisted.append(f"{exc.filename} ({exc.strerror or exc})")

    for name in classes:
        paths = []
        for top, folders, files in os.walk(root / name, onerror=cannot_list):
            folders[:] = [f for f in folders if not f.startswith(".") and not tool_output(Path(top, f))]
            paths += [Path(top, entry) for entry in folders + files if not entry.startswith(".")]
        found += [
            (file, "" if name.lower() in UNLABELLED_FOLDERS else name)
            for file in sorted(paths)
            if file.suffix.lower() in IMAGE_SUFFIXES
        ]
    return found, unlisted


def tool_output(folder: Path) -> bool:
    """Is `folder` one the tool wrote, a results folder (suspects.txt beside samples.csv) or an export (changes.csv
    beside its manifest, .npz or idx labels)? Its figures and copies are never data, even inside the data folder."""
    try:
        if (folder / "suspects.txt").is_file() and (folder / "samples.csv").is_file():
            return True
        copies = ("manifest.csv", "data.npz", "labels-idx1-ubyte.gz")
        return (folder / "changes.csv").is_file() and any((folder / name).is_file() for name in copies)
    except OSError:
        return False


def read_image_folder(root: Path, max_side: int, skip_unreadable: bool) -> Read:
    """root/<class name>/<image file> (image_files); root/unlabelled/<image file> for images without a label.
    A folder that cannot be listed stops the reading like an unreadable file, or is left out with it."""
    found, unlisted = image_files(root)
    if unlisted and not skip_unreadable:
        raise InputError(
            str(root),
            f"{len(unlisted)} folders cannot be listed: {', '.join(unlisted[:SHOWN])}"
            f"{', ...' if len(unlisted) > SHOWN else ''} (decode.skip_unreadable leaves them "
            f"out)",
        )
    paths, values = [file for file, _ in found], [name for _, name in found]
    if not paths:
        raise InputError(
            str(root),
            "holds no images in class folders (expected root/<class name>/<image file>, "
            f"files ending in {', '.join(sorted(IMAGE_SUFFIXES))})",
        )
    distinct_names(values, root)
    labels, names = labels_from_values(values, str(root))
    read = load_images(paths, labels, names, root, max_side, skip_unreadable)
    return read._replace(skipped=unlisted + list(read.skipped))


def distinct_names(folders: list[str], root: Path) -> None:
    """Class folders whose names a label would merge are refused, as '01' and '1' are: two that differ only in
    spaces around them ('cat' and 'cat '), or one named with spaces alone (it would read as no label)."""
    seen: dict[str, str] = {}
    for name in sorted(set(folders)):
        if name and not name.strip():
            raise InputError(
                str(root), f"class folder {name!r} has a blank name: rename it (unlabelled images go in 'unlabelled')"
            )
        if seen.setdefault(name.strip(), name) != name:
            raise InputError(
                str(root),
                f"class folders {seen[name.strip()]!r} and {name!r} differ only in spaces: rename one so the "
                f"classes stay apart",
            )


def read_manifest(path: Path, max_side: int, skip_unreadable: bool) -> Read:
    """A CSV (or TSV) of path,label rows; paths relative to the manifest; a header row is recognised; an empty label
    marks an unlabelled image (path, alone on its row, too). Rows are the csv module's alone (a quoted label may hold
    a line break; U+2028 or a form feed is no line end); names a file system gave in bytes that are not UTF-8 come
    back as it gave them (surrogate escapes); a cell the tool neutralised for spreadsheets (stages.tables.cell)
    reads as the name it was."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
            reader = csv.reader(f, delimiter=delimiter)
            rows = [[plain_cell(cell) for cell in row] for row in reader if row and any(c.strip() for c in row)]
    except FileNotFoundError:
        raise InputError(str(path), "no such file") from None
    except csv.Error as exc:  # a field past csv's 128 KB limit, a NUL byte
        raise InputError(str(path), f"line {reader.line_num}: {exc}") from None
    except OSError as exc:
        raise InputError(str(path), f"cannot read as text ({exc})") from None
    if rows and rows[0][0].strip().lower() in ("path", "file", "filename", "image", "image_path"):
        rows = rows[1:]
    if not rows:
        raise InputError(str(path), "holds no rows (expected path,label per line)")
    labels, names = labels_from_values([row[1] if len(row) > 1 else "" for row in rows], str(path))
    files = [(path.parent / row[0].strip()) for row in rows]
    return load_images(files, labels, names, path, max_side, skip_unreadable)


def load_images(
    files: list[Path], labels: np.ndarray, names: list[str] | None, source: Path, max_side: int, skip_unreadable: bool
) -> Read:
    """Decode every file with Pillow (EXIF rotation honoured), then bring them to one colour mode and one size.
    Each picture is shrunk to fit max_side as soon as it is read, so memory holds small pictures only, whatever
    the files' sizes; the common size is chosen from the sizes the files had. A path that is no regular file (a
    FIFO named x.png would block forever) counts as unreadable."""
    from PIL import Image, ImageOps

    pictures, sizes, kept, broken, digests = [], Counter(), [], [], []
    for i, file in enumerate(files):
        try:
            problem = "" if file.is_file() else "no such file" if not file.exists() else "not a regular file"
        except OSError as exc:  # a name too long for the file system, a path through a file
            problem = exc.strerror or type(exc).__name__
        if problem:
            broken.append(f"{file} ({problem})")
            continue
        try:
            with open(file, "rb") as f, Image.open(f) as picture:
                picture.load()
                picture = ImageOps.exif_transpose(picture) if picture.getexif().get(0x0112, 1) != 1 else picture
                sizes[picture.size] += 1
                if max(picture.size) > max_side:
                    picture = picture.convert(wide_mode(picture.mode))
                    picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
                pictures.append(picture)
                f.seek(0)
                digests.append(np.frombuffer(file_digest(f), np.uint8))
                kept.append(i)
        except Exception as exc:  # Pillow fails in many ways on a damaged or foreign file
            broken.append(f"{file} ({type(exc).__name__})")
    if broken and not skip_unreadable:
        raise InputError(
            str(source),
            f"{len(broken)} image files cannot be read: {', '.join(broken[:SHOWN])}"
            f"{', ...' if len(broken) > SHOWN else ''} (decode.skip_unreadable leaves "
            f"them out)",
        )
    if not pictures:
        raise InputError(str(source), "no readable images")
    colour = any(p.mode not in GREY_MODES for p in pictures)
    width, height = common_size(sizes, max_side)
    mode = "RGB" if colour else "L"
    images = np.stack([np.asarray(fitted(p, mode, width, height), np.uint8) for p in pictures])
    if images.ndim == 3:
        images = images[..., None]
    keep = np.array(kept, np.int64)
    return Read(images, labels[keep], names, [str(files[i]) for i in kept], broken, np.stack(digests))


def common_size(sizes: Counter, max_side: int) -> tuple[int, int]:
    """The most common (width, height), the larger on a tie, scaled down so its longer side is at most max_side."""
    (width, height), _ = max(sizes.items(), key=lambda item: (item[1], item[0][0] * item[0][1]))
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def wide_mode(mode: str) -> str:
    """The mode a large picture is shrunk in: bits and palettes to grey or colour (resampling needs levels)."""
    if mode in ("1", "L", "LA", "I", "I;16", "F", "RGB", "RGBA"):
        return "L" if mode == "1" else "I" if mode == "I;16" else mode
    return "RGBA" if "A" in mode or mode == "P" else "RGB"


def fitted(picture, mode: str, width: int, height: int):
    from PIL import Image

    if picture.mode in ("I", "I;16", "F"):  # 16-bit or float grey: to 8 bits by its own range
        values = np.asarray(picture, np.float64)
        span = max(values.max() - values.min(), 1e-12)
        picture = Image.fromarray(np.round(255 * (values - values.min()) / span).astype(np.uint8))
    picture = picture.convert(mode)
    if picture.size != (width, height):
        picture = picture.resize((width, height), Image.Resampling.LANCZOS)
    return picture


def as_images(array: np.ndarray, source: str) -> np.ndarray:
    """Images as uint8 (N, H, W, C) from an array of (N, H, W), (N, H, W, C) or channels-first (N, C, H, W);
    floats in [0, 1] are scaled to 0..255, floats and integers in 0..255 taken as they are."""
    try:
        array = np.asarray(array)
    except (ValueError, TypeError) as exc:  # a list of images of different sizes
        raise InputError(source, f"images must be one array of equal-sized images ({exc})") from None
    grey = array.ndim == 3  # (N, H, W): no channel to take for another
    if grey:
        array = array[..., None]
    if array.ndim != 4 or min(array.shape, default=0) == 0:
        raise InputError(source, f"images must be (N, H, W) or (N, H, W, C), got shape {array.shape}")
    first, last = not grey and array.shape[1] in CHANNELS, array.shape[3] in CHANNELS
    if first and not last:
        array = array.transpose(0, 2, 3, 1)  # channels first, as torch keeps them
    elif first and last and array.shape[1] != array.shape[3]:
        raise InputError(source, f"shape {array.shape} could be channels-first or channels-last: give (N, H, W, C)")
    elif not last:
        raise InputError(source, f"images of shape {array.shape} have {array.shape[3]} channels (1, 3 or 4 expected)")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype.kind not in "uif":
        raise InputError(source, f"images must be numbers, got {array.dtype}")
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise InputError(source, "images hold NaN or infinite values")
    low, high = values.min(), values.max()
    if low < 0 or high > 255:
        raise InputError(source, f"image values lie in {low:g}..{high:g}, not 0..1 or 0..255")
    if array.dtype.kind == "f" and high <= 1:
        values = values * 255
    return np.round(values).astype(np.uint8)


def as_labels(array: np.ndarray, source: str) -> tuple[np.ndarray, list[str] | None]:
    """Labels as int64 (N,) from integers (-1: unlabelled), or from strings (class names, numbered in sorted order;
    "": unlabelled); Python objects (a pandas column of strings) are taken where they are all strings or all
    integers."""
    try:
        array = np.asarray(array)
    except (ValueError, TypeError) as exc:
        raise InputError(source, f"labels must be one array ({exc})") from None
    if array.ndim != 1:
        raise InputError(source, f"labels must be one-dimensional, got shape {array.shape}")
    if array.dtype == object:
        if all(isinstance(v, str) for v in array):
            array = array.astype(str)
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in array):
            if any(not UNLABELLED <= v < MAX_LABEL_ID for v in array):
                raise InputError(source, "labels must be class ids in 0..2**31 (-1: unlabelled) or class names")
            array = array.astype(np.int64)
    if array.dtype.kind == "S":  # bytes: UTF-8, any other byte kept as a surrogate escape (as file names are)
        return labels_from_values([bytes(v).decode("utf-8", "surrogateescape") for v in array], source)
    if array.dtype.kind == "U":
        return labels_from_values([str(v) for v in array], source)
    values = array.astype(np.float64) if array.dtype.kind == "f" else array  # uints compare exactly
    huge = np.flatnonzero(np.isfinite(values) & (np.abs(values) >= 2**63)) if array.dtype.kind in "uf" else []
    if len(huge):  # past int64, a cast would wrap (2**64 - 1 to -1, unlabelled) or warn and wrap
        value = array[huge[0]]
        raise InputError(
            source,
            f"label {value!s} at index {huge[0]} is "
            f"{'negative' if value < 0 else 'too large for a class id'} ({len(huge)} such labels)",
        )
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iub":
        raise InputError(source, f"labels must be integers or class names, got {array.dtype}")
    if array.size and array.min() < UNLABELLED:
        raise InputError(source, f"label {int(array.min())} is negative (-1 marks an unlabelled sample)")
    return array.astype(np.int64), None


def available_memory() -> int:
    """Bytes of memory free for new arrays (the machine's available memory; unbounded where it cannot be told)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**62


def npz_pair(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels arrays of an .npz (named images/labels or x/y, or its only two; other arrays are not
    read), each checked before it is unpacked: its header must declare a plain numeric or text array (no pickled
    objects) whose bytes fit in memory and agree with the zip member's own size, so a header that claims 90 TB or a
    small archive of zeros that unpacks to gigabytes is refused, not allocated."""
    import zipfile

    def refuse(problem: str):
        raise InputError(str(path), problem)

    def read(archive: zipfile.ZipFile, member_name: str, free: int) -> np.ndarray:
        info, name = archive.getinfo(member_name), member_name.removesuffix(".npy")
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(member)
            if dtype.hasobject:
                refuse(f"array {name!r} holds Python objects (save numbers or strings: e.g. labels.astype(str))")
            size = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if size + member.tell() != info.file_size:
                refuse(
                    f"array {name!r}: its header says {size:,} bytes, the archive holds "
                    f"{info.file_size - member.tell():,}"
                )
            if size > free // 2:
                refuse(
                    f"array {name!r} needs {size / 2**30:.1f} GiB, more than half the memory free "
                    f"({free / 2**30:.1f} GiB)"
                )
        with archive.open(info) as member:  # read_array reads the header again, from the start
            return np.lib.format.read_array(member, allow_pickle=False)

    try:
        with zipfile.ZipFile(path) as archive:
            members = {member.removesuffix(".npy"): member for member in archive.namelist()}
            names = list(members)
            pair = next(
                ((a, b) for a, b in (("images", "labels"), ("x", "y"), ("X", "y")) if {a, b} <= set(names)),
                tuple(names) if len(names) == 2 else None,
            )
            if pair is None:
                refuse(f"holds arrays {names}: name them images and labels")
            free = available_memory()
            return read(archive, members[pair[0]], free), read(archive, members[pair[1]], free)
    except FileNotFoundError:
        refuse("no such file")
    except InputError:
        raise
    except zipfile.BadZipFile as exc:
        with open(path, "rb") as f:
            if f.read(6) == b"\x93NUMPY":
                refuse("is an .npy file, not an .npz archive: name it .npy and give its labels beside it")
        refuse(f"not a readable .npz (BadZipFile: {exc})")
    except Exception as exc:  # a truncated member, a bad CRC, a damaged header: many ways
        refuse(f"not a readable .npz ({type(exc).__name__}: {exc})")


def npy_array(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except FileNotFoundError:
        raise InputError(str(path), "no such file") from None
    except Exception as exc:  # pickled objects, damaged headers, truncated data
        raise InputError(str(path), f"not a readable .npy file ({type(exc).__name__}: {exc})") from None
    if not isinstance(array, np.ndarray):
        raise InputError(str(path), "is an .npz archive, not an .npy file: name it .npz")
    return np.array(array)


def read_arrays(images_path: Path, labels_path: Path | None) -> Read:
    """An .npz holding an images array and a labels array (named images/labels or x/y, or the only two), or a
    pair of .npy files."""
    if kind_of(images_path) == "npz":  # its labels are its own: a labels path given beside it is not read
        images, labels = npz_pair(images_path)
        labels_source = images_path
    else:
        if labels_path is None or kind_of(labels_path) != "npy":
            raise InputError(str(images_path), "an .npy of images needs an .npy of labels beside it")
        images, labels = npy_array(images_path), npy_array(labels_path)
        labels_source = labels_path
    label_ids, class_names = as_labels(labels, str(labels_source))
    return Read(as_images(images, str(images_path)), label_ids, class_names)
