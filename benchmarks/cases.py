"""The test-case families every benchmark draws from, built by the planting tool from the bundled test sets."""

from __future__ import annotations

from pipeline.plant import PERTURBED, PlantSpec

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
    "notmnist-orphans": ("notmnist", dict(n_clean=150, n_evil=10, n_orphans=5)),
    "large-10k": ("mnist", dict(n_clean=10_000, n_evil=200)),
}
SMALL = [name for name in FAMILIES if not name.startswith("large")]


def spec(family: str, seed: int) -> tuple[str, PlantSpec]:
    source, fields = FAMILIES[family]
    return source, PlantSpec(**fields, seed=seed)
