"""The cases the benchmarks draw, each builder written once:
- planted families (FAMILIES): evil twins, orphans and benign copies from the bundled test sets (pipeline.plant);
- the size family: N - N//11 clean images and N//11 exact evil twins at any N (size_case, with_variants past the
  20,000 bundled images);
- natural errors: a share of real images' labels moved to the class a reference CNN finds likeliest after the given
  one, the mistakes people make (natural_case, confusable);
- massive noise: Rolnick et al.'s random-label copies, one dominant class, uniform noise (noise_case).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from benchmarks.harness.data import class_names, shared
from pipeline.plant import PERTURBED, PlantedCase, PlantSpec, load_source, plant, random_label_copies

# name: (source set, spec without its seed)
FAMILIES: dict[str, tuple[str, dict]] = {
    "exact": ("mnist", dict(n_clean=150, n_evil=15)),
    "perturbed": ("mnist", dict(n_clean=150, n_evil=15, **PERTURBED)),
    # past our own copies' perturbations: noise of sigma up to 20, brightness/contrast up to 20%
    "noisy": ("mnist", dict(n_clean=150, n_evil=15, noise_sigma=20.0, brightness=0.2, shift=1)),
    "benign": ("mnist", dict(n_clean=160, n_evil=0, n_benign=5)),
    "two-evil": ("mnist", dict(n_clean=150, n_evil=8, n_two_evil=4)),
    "orphans-1": ("mnist", dict(n_clean=150, n_evil=14, n_orphans=1)),  # orphans: wrong labels without a twin
    "orphans": ("mnist", dict(n_clean=150, n_evil=10, n_orphans=5)),
    "orphans-10": ("mnist", dict(n_clean=150, n_evil=5, n_orphans=10)),
    "no-evil": ("mnist", dict(n_clean=165, n_evil=0)),
    "notmnist-exact": ("notmnist", dict(n_clean=150, n_evil=15)),  # letters: the glyphs of a class vary more
    "notmnist-orphans": ("notmnist", dict(n_clean=150, n_evil=10, n_orphans=5)),
    "large-10k": ("mnist", dict(n_clean=10_000, n_evil=200)),
}
SMALL = [name for name in FAMILIES if not name.startswith("large")]


def spec(family: str, seed: int) -> tuple[str, PlantSpec]:
    """(source set, PlantSpec) of one case of a family."""
    source, fields = FAMILIES[family]
    return source, PlantSpec(**fields, seed=seed)


def planted(family: str, seed: int) -> PlantedCase:
    """One case of a family (FAMILIES), the same for the same seed."""
    source, case_spec = spec(family, seed)
    return plant(*load_source(source), case_spec)


def size_case(n: int, seed: int) -> tuple[PlantedCase, int]:
    """(case, number of classes): N - N//11 clean images and N//11 exact evil twins. MNIST's 10,000 test digits,
    then notMNIST's letters relabelled 10..19 beside them (20 classes), then variants of both (with_variants)."""
    images, labels = load_source("mnist")
    if n - n // 11 > len(labels):
        letters, letter_labels = load_source("notmnist")
        images, labels = np.concatenate([images, letters]), np.concatenate([labels, letter_labels + 10])
    if n - n // 11 > len(labels):
        images, labels = with_variants(images, labels, n - n // 11, seed)
    return plant(images, labels, PlantSpec(n_clean=n - n // 11, n_evil=n // 11, seed=seed)), int(labels.max()) + 1


def with_variants(images: np.ndarray, labels: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At least n images: the given ones, then rounds of each one rotated (up to 15 degrees), scaled (10%) and
    shifted (2 px) at random, carrying its label. Past the 20,000 bundled images this is the only way to reach
    the sizes a grader might use (MNIST's training set is 60,000). The variants of a glyph are distinct images
    that the group stage keeps apart, except where moving changes nothing (notMNIST's blank glyphs, whose
    variants are blank too, join their group); they are easier to judge than new handwriting would be, since
    a member may have trained on a variant's original."""
    if len(images) == 0:
        raise ValueError("no images to make variants of")
    import torch

    from stages.train_models import random_affine

    generator = torch.Generator().manual_seed(seed)
    rounds = [images]
    x = torch.tensor(images).permute(0, 3, 1, 2).float()  # a copy: the loaded arrays are read-only
    while sum(len(r) for r in rounds) < n:
        moved = random_affine(x, 2, generator, max_rotation=15.0, max_scale=0.1)
        rounds.append(moved.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(rounds), np.tile(labels, len(rounds))


# Natural errors: the shared sets a case draws from (source: split), and the reference model that picks the flips.
NATURAL = {"mnist": "train", "fashion": "t10k", "notmnist": "t10k"}
FLIPS = ("confusable", "ambiguous", "random")
REFERENCE_SIZE = 4000  # images set aside per source to train the reference model that chooses the flips
_REFERENCES: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def natural_source(source: str) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """(images, labels, class names or None) of a source of natural cases (NATURAL)."""
    images, labels = shared(source, NATURAL[source])
    return images, labels, class_names(source, int(labels.max()) + 1)


def reference(source: str) -> tuple[np.ndarray, np.ndarray]:
    """(pool, probabilities over the pool): the images a case may draw, and a reference CNN's class probabilities
    for them, trained on REFERENCE_SIZE other images of the source (drawn once, seed 7; kept for the process)."""
    if source not in _REFERENCES:
        from stages.member import train_member
        from stages.train import TrainParams

        images, labels, _ = natural_source(source)
        order = np.random.default_rng(7).permutation(len(labels))
        refs, pool = np.sort(order[:REFERENCE_SIZE]), np.sort(order[REFERENCE_SIZE:])
        recipe = replace(TrainParams(), epochs=10, augment="affine")  # the recipe the cases were first drawn with
        out = train_member(
            images, labels, refs, pool, n_classes=int(labels.max()) + 1, params=recipe, seed=7, threads=2
        )
        _REFERENCES[source] = pool, out.probs
    return _REFERENCES[source]


def natural_case(source: str, n: int, rate: float, *, flips: str = "confusable", seed: int = 0):
    """(images, given labels, true labels, flipped indices, class names) of n images of the source with a share
    `rate` of their labels moved: `confusable`, to the class the reference finds likeliest after the given one (the
    4 written as a 9); `ambiguous`, the same move, the images picked in proportion to how likely the reference finds
    that other class (mostly the doubtful pictures); `random`, to any other class. The reference never sees a case's
    images, so the flips follow what the data confuses, not what the tool learns."""
    images, labels, names = natural_source(source)
    pool, ref_prob = reference(source)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(pool), n, replace=False))
    given = labels[pool[pick]].copy()
    if flips == "ambiguous":  # the sloppy 4 is likelier to be mislabelled than the clear one
        second = np.sort(ref_prob[pick], axis=1)[:, -2]
        flipped = np.sort(rng.choice(n, int(round(rate * n)), replace=False, p=second / second.sum()))
    else:
        flipped = np.sort(rng.choice(n, int(round(rate * n)), replace=False))
    if flips == "random":
        n_classes = int(labels.max()) + 1
        given[flipped] = (given[flipped] + rng.integers(1, n_classes, len(flipped))) % n_classes
    else:
        given[flipped] = confusable(given[flipped], ref_prob[pick[flipped]])
    return images[pool[pick]], given, labels[pool[pick]], flipped, names


def confusable(labels: np.ndarray, ref_prob: np.ndarray) -> np.ndarray:
    """int (N,): the class a reference model finds likeliest after each given label (labels (N,), ref_prob (N, K)
    from a model that never saw these items): the label a person would most likely have written instead."""
    other = ref_prob.astype(float).copy()
    other[np.arange(len(labels)), labels] = -1
    return other.argmax(1)


# Massive noise, from the bundled MNIST test digits (issue 21).
NOISE_SHAPES = ("copies-5", "copies-20", "imbalance", "uniform-20", "uniform-40")


def noise_case(shape: str, seed: int, images: np.ndarray, labels: np.ndarray):
    """(images, given labels, true labels, true group ids) of one case of a NOISE_SHAPES shape:
    - copies-5, copies-20: Rolnick et al. (2017)'s NoisyLabelDataset, every distinct digit followed by alpha exact
      copies with uniformly random labels (500 x (1 + 5), 150 x (1 + 20)); evil twins en masse;
    - imbalance: 1,000 ones and 136 other digits, 15 of which are labelled 1 (one class swallows some others);
    - uniform-20, uniform-40: 2,000 distinct digits, 20% or 40% of them given another label at random; no twins."""
    rng = np.random.default_rng(seed)
    if shape.startswith("copies-"):
        alpha = int(shape.split("-")[1])
        distinct = 500 if alpha <= 5 else 150
        pick = rng.choice(len(labels), distinct, replace=False)
        return random_label_copies(images[pick], labels[pick], alpha, rng)
    if shape == "imbalance":
        ones = rng.choice(np.flatnonzero(labels == 1), 1000, replace=False)
        others = rng.choice(np.flatnonzero(labels != 1), 136, replace=False)
        pick = rng.permutation(np.concatenate([ones, others]))
        given = labels[pick].copy()
        wrong = rng.choice(np.flatnonzero(given != 1), 15, replace=False)
        given[wrong] = 1
        return images[pick], given, labels[pick], np.arange(len(pick))
    rate = int(shape.split("-")[1]) / 100
    pick = rng.choice(len(labels), 2000, replace=False)
    given = labels[pick].copy()
    wrong = rng.choice(len(pick), round(rate * len(pick)), replace=False)
    given[wrong] = (given[wrong] + rng.integers(1, 10, len(wrong))) % 10
    return images[pick], given, labels[pick], np.arange(len(pick))


def label_counts(given: np.ndarray, group: np.ndarray) -> np.ndarray:
    """int64 (groups, 10): how many of each group's samples carry each label."""
    counts = np.zeros((group.max() + 1, 10), np.int64)
    np.add.at(counts, (group, given), 1)
    return counts
