"""The planting tool: evil-twin test cases made from a clean data set, with the truth alongside.

A case holds `n_clean` distinct clean samples, then adds
- evil twins: a copy of a clean sample carrying a different label (the copy is the wrong one),
- two-evil groups: two copies of one clean sample sharing one wrong label (the majority of the group is wrong),
- benign duplicates: a copy carrying the same label (nothing to flag),
- orphans: extra distinct samples whose label is changed, with no twin at all,
then shuffles. Copies may be perturbed: Gaussian pixel noise, a brightness/contrast change, a one-pixel shift.
Everything is drawn from one seed, so a case is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SOURCES = {
    "mnist": ("mnist-t10k-images-idx3-ubyte.gz", "mnist-t10k-labels-idx1-ubyte.gz"),
    "notmnist": ("notmnist-t10k-images-idx3-ubyte.gz", "notmnist-t10k-labels-idx1-ubyte.gz"),
    "cifar20": ("cifar10-20-images-idx4-ubyte.gz", "cifar10-20-labels-idx1-ubyte.gz"),  # 20 colour photos
}
# The strongest perturbations a near-identical copy gets in our test cases (docs: "How it works: group").
PERTURBED = {"noise_sigma": 8.0, "brightness": 0.12, "shift": 1}


@dataclass(frozen=True)
class PlantSpec:
    """What goes into a case. noise_sigma (grey levels), brightness (fraction) and shift (pixels) are the
    largest perturbation a copy gets; each copy draws its own within them; all zero gives exact copies."""

    n_clean: int = 150
    n_evil: int = 15
    n_two_evil: int = 0
    n_benign: int = 0
    n_orphans: int = 0
    noise_sigma: float = 0.0
    brightness: float = 0.0
    shift: int = 0
    seed: int = 0

    def __post_init__(self):
        counts = (self.n_clean, self.n_evil, self.n_two_evil, self.n_benign, self.n_orphans)
        if min(counts) < 0:
            raise ValueError("counts must not be negative")
        if self.n_clean + self.n_orphans == 0:
            raise ValueError("a case needs at least one sample: n_clean + n_orphans must be at least 1")
        if self.n_evil + self.n_two_evil + self.n_benign > self.n_clean:
            raise ValueError("every twin needs its own clean original: n_evil + n_two_evil + n_benign > n_clean")
        if self.noise_sigma < 0 or not 0 <= self.brightness < 1 or self.shift < 0:
            raise ValueError("perturbations must be non-negative (brightness below 1)")


@dataclass
class PlantedCase:
    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray  # int64 (N,)
    truth: np.ndarray  # sorted indices whose label is wrong (evil copies and orphans)
    source: np.ndarray  # index of each sample in the source set
    role: np.ndarray  # "clean", "original", "evil", "benign" or "orphan"


def load_source(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A bundled clean data set by name (a key of SOURCES): (images (N, H, W, C) uint8, labels)."""
    from stages.decode_idx import read_images, read_labels

    images_file, labels_file = SOURCES[name]
    return read_images(DATA_DIR / images_file), read_labels(DATA_DIR / labels_file)


def perturb(
    image: np.ndarray, rng: np.random.Generator, noise_sigma: float, brightness: float, shift: int
) -> np.ndarray:
    """One near-identical copy of a uint8 (H, W, C) image."""
    out = image.astype(np.float32)
    if shift:
        dy, dx = 0, 0
        while dy == 0 and dx == 0:
            dy, dx = rng.integers(-shift, shift + 1, size=2)
        h, w = out.shape[:2]
        padded = np.pad(out, ((shift, shift), (shift, shift), (0, 0)), mode="edge")
        out = padded[shift - dy : shift - dy + h, shift - dx : shift - dx + w]
    if brightness:
        contrast = 1 + rng.uniform(-brightness, brightness)
        offset = 255 * rng.uniform(-brightness, brightness)
        out = out * contrast + offset
    if noise_sigma:
        out = out + rng.normal(0, rng.uniform(noise_sigma / 2, noise_sigma), size=out.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def plant(images: np.ndarray, labels: np.ndarray, spec: PlantSpec) -> PlantedCase:
    """Build one case from a clean source set (uint8 (N, H, W, C) images and their labels)."""
    rng = np.random.default_rng(spec.seed)
    classes = np.unique(labels)
    n_distinct = spec.n_clean + spec.n_orphans
    if n_distinct > len(images):
        raise ValueError(f"the source holds {len(images)} samples, the case needs {n_distinct} distinct ones")
    if (spec.n_evil or spec.n_two_evil or spec.n_orphans) and len(classes) < 2:
        raise ValueError("a wrong label needs at least two classes in the source")
    picks = rng.choice(len(images), n_distinct, replace=False)
    clean, orphans = picks[: spec.n_clean], picks[spec.n_clean :]

    def wrong_label(true_label: int) -> int:
        return int(rng.choice(classes[classes != true_label]))

    rows: list[tuple[int, int, str, bool]] = [(int(i), int(labels[i]), "clean", False) for i in clean]
    n_originals = spec.n_evil + spec.n_two_evil + spec.n_benign
    originals = rng.choice(spec.n_clean, n_originals, replace=False)
    for k, row in enumerate(originals):
        src = rows[row][0]
        rows[row] = (src, rows[row][1], "original", False)
        true_label = int(labels[src])
        if k < spec.n_evil:
            rows.append((src, wrong_label(true_label), "evil", True))
        elif k < spec.n_evil + spec.n_two_evil:
            bad = wrong_label(true_label)
            rows += [(src, bad, "evil", True), (src, bad, "evil", True)]
        else:
            rows.append((src, true_label, "benign", True))
    rows += [(int(i), wrong_label(int(labels[i])), "orphan", False) for i in orphans]

    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    out = np.stack(
        [
            perturb(images[src], rng, spec.noise_sigma, spec.brightness, spec.shift) if is_copy else images[src]
            for src, _, _, is_copy in rows
        ]
    )
    role = np.array([r for _, _, r, _ in rows])
    return PlantedCase(
        images=out,
        labels=np.array([lab for _, lab, _, _ in rows], dtype=np.int64),
        truth=np.flatnonzero(np.isin(role, ["evil", "orphan"])),
        source=np.array([src for src, _, _, _ in rows], dtype=np.int64),
        role=role,
    )


def copies_and_originals(case: PlantedCase) -> tuple[np.ndarray, np.ndarray]:
    """Index of every planted copy (evil or benign) and of the original it was made from."""
    original = {src: i for i, (src, role) in enumerate(zip(case.source, case.role)) if role == "original"}
    copies = np.flatnonzero(np.isin(case.role, ["evil", "benign"]))
    return copies, np.array([original[case.source[i]] for i in copies], dtype=np.int64)


def random_label_copies(
    images: np.ndarray, labels: np.ndarray, alpha: int, rng: np.random.Generator, n_classes: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rolnick et al.'s (2017) NoisyLabelDataset: every image, then alpha copies of it with uniformly random labels
    (item i is image i // (alpha + 1)). Returns (images, given labels, true labels, group id = source image)."""
    block = np.repeat(np.arange(len(labels)), alpha + 1)
    given = labels[block].copy()
    copies = np.arange(len(block)) % (alpha + 1) != 0
    given[copies] = rng.integers(0, n_classes, copies.sum())
    return images[block], given, labels[block], block


def write_case(case: PlantedCase, out_dir: str | Path) -> None:
    """images-idx3-ubyte.gz (colour: images-idx4-ubyte.gz), labels-idx1-ubyte.gz and truth.txt (the line a
    perfect run prints)."""
    from pipeline.artifacts import atomic_write_text, write_idx, write_images
    from stages.aggregate import format_indices

    out_dir = Path(out_dir)
    write_images(out_dir / f"images-idx{3 if case.images.shape[-1] == 1 else 4}-ubyte.gz", case.images)
    write_idx(out_dir / "labels-idx1-ubyte.gz", case.labels.astype(np.uint8))
    atomic_write_text(out_dir / "truth.txt", format_indices(case.truth) + "\n")
