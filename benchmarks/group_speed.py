"""Speed, memory and accuracy of the group stage at 1k to 20k images.

Wall and CPU seconds, peak memory, false merges and copies found, on planted digits and letters; first the two
bundled test sets as they are.

    python -m benchmarks group_speed [--sizes 1000 5000 10000 20000]

Each N is a planted case, half from MNIST and half from notMNIST (letters relabelled 10..19), 10% of it copies with
the strongest perturbations (noise sigma 8, brightness/contrast 12%, one-pixel shift). Every measurement runs in a
fresh child process, so its peak memory (resource.getrusage ru_maxrss: the child's peak resident set, Python, numpy
and the loaded data included) is its own. CPU s (user + system, the child's) shows the cost when the machine is
shared and wall time suffers.
"""

from __future__ import annotations

import resource
import time

from benchmarks.harness.runs import in_fresh_process

TEST_SETS = {
    "test set": "",
    "wall s": ".2f",
    "groups": "d",
    "groups by size": "",
    "conflicting groups": "d",
    "exact-copy groups": "d",
    "largest exact-copy group": "d",
    "largest group": "d",
    "blank images": "d",
    "threshold": ".3f",
}
PLANTED = {
    "N": "d",
    "wall s": ".2f",
    "CPU s": ".2f",
    "peak RSS MB": ".0f",
    "before grouping MB": ".0f",
    "groups": "d",
    "conflicting groups": "d",
    "holding a planted evil twin": "d",
    "groups holding >1 clean image": "d",
    "false merges (true classes differ)": "d",
    "perturbed copies with their original": ".4f",
    "perturbed copies": "d",
    "threshold": ".3f",
}


def options(parser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000, 20000])


def planted_half(source: str, n: int, seed: int):
    """A case of n images from one source, 10% of them perturbed copies (evil, two-evil pairs and benign),
    and the true (source) label of every image."""
    from pipeline.plant import PERTURBED, PlantSpec, load_source, plant

    copies = n // 10
    n_two_evil, n_benign = copies // 10, copies // 5
    n_evil = copies - 2 * n_two_evil - n_benign
    images, labels = load_source(source)
    case = plant(
        images,
        labels,
        PlantSpec(n_clean=n - copies, n_evil=n_evil, n_two_evil=n_two_evil, n_benign=n_benign, **PERTURBED, seed=seed),
    )
    return case, labels[case.source]


def measure(n: int) -> dict:
    """One row of the planted table, in a fresh process."""
    import numpy as np

    from stages.group import GroupParams, group_images, summarize

    (digits, digit_truth), (letters, letter_truth) = (
        planted_half("mnist", n // 2, seed=n),
        planted_half("notmnist", n - n // 2, seed=n + 1),
    )
    halves = [digits, letters]
    images = np.concatenate([h.images for h in halves])
    labels = np.concatenate([digits.labels, letters.labels + 10])
    truth = np.concatenate([digit_truth, letter_truth + 10])
    identity = np.concatenate([halves[0].source, halves[1].source + 100_000])  # which clean image each copies
    role = np.concatenate([h.role for h in halves])
    before = resource.getrusage(resource.RUSAGE_SELF)

    start = time.perf_counter()
    result = group_images(images, GroupParams())
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime

    copies = np.flatnonzero(np.isin(role, ["evil", "benign"]))
    original_of = {identity[i]: i for i in np.flatnonzero(role == "original")}
    originals = np.array([original_of[identity[i]] for i in copies])
    # groups holding copies of more than one clean image (notMNIST's own duplicates count here), and the
    # false merges among them: groups whose images' true classes differ
    merged = np.bincount(np.unique(np.stack([result.group, identity]), axis=1)[0]) > 1
    false_merges = np.bincount(np.unique(np.stack([result.group, truth]), axis=1)[0]) > 1
    summary = summarize(result.group, labels)
    values = [len(images), seconds, cpu, after.ru_maxrss / 1024, before.ru_maxrss / 1024, summary["groups"]]
    values += [summary["conflicting_groups"], len(np.unique(result.group[role == "evil"])), int(merged.sum())]
    values += [int(false_merges.sum()), float((result.group[copies] == result.group[originals]).mean())]
    return dict(zip(PLANTED, [*values, len(copies), result.threshold]))


def test_set(name: str) -> dict:
    """One row of the test-set table, in a fresh process: every merge there is a false one unless the labels agree."""
    import numpy as np

    from pipeline.plant import load_source
    from stages.group import GroupParams, group_images, summarize

    images, labels = load_source(name)
    start = time.perf_counter()
    result = group_images(images, GroupParams())
    seconds = time.perf_counter() - start
    summary = summarize(result.group, labels)
    exact = np.bincount(result.exact)
    sizes = ", ".join(f"{k}: {v}" for k, v in summary["groups_by_size"].items())
    values = [name, seconds, summary["groups"], sizes, summary["conflicting_groups"], int((exact > 1).sum())]
    values += [int(exact.max()), int(np.bincount(result.group).max()), int(result.blank.sum()), result.threshold]
    return dict(zip(TEST_SETS, values))


def run(args, report) -> None:
    table = report.table(TEST_SETS, "The bundled test sets as they are")
    for name in ("mnist", "notmnist"):
        table.add(in_fresh_process("benchmarks.group_speed.test_set", name))
    table = report.table(PLANTED, "Planted cases, one fresh process per N")
    for n in args.sizes:
        table.add(in_fresh_process("benchmarks.group_speed.measure", n))
