"""Speed, memory and accuracy of the group stage at N = 1k, 5k, 10k, 20k images.

Each N is a planted case, half from MNIST and half from notMNIST (letters relabelled 10..19), 10% of it copies
with the strongest perturbations (noise sigma 8, brightness/contrast 12%, one-pixel shift). Every measurement
runs in a fresh child process, so its peak memory (resource.getrusage ru_maxrss: the child's peak resident
set, Python, numpy and the loaded data included) is its own. CPU s (user + system, this process) shows the
cost when the machine is shared and wall time suffers.

    python benchmarks/group_speed.py [--sizes 1000 5000 10000 20000]

It first groups the two bundled test sets as they are (MNIST, notMNIST; 10,000 images each).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.machine import cpu_model  # noqa: E402 (needs ROOT on the path when run as a script)


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
    baseline, peak = before.ru_maxrss, after.ru_maxrss
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime

    copies = np.flatnonzero(np.isin(role, ["evil", "benign"]))
    original_of = {identity[i]: i for i in np.flatnonzero(role == "original")}
    originals = np.array([original_of[identity[i]] for i in copies])
    # groups holding copies of more than one clean image (notMNIST's own duplicates count here), and the
    # false merges among them: groups whose images' true classes differ
    merged = np.bincount(np.unique(np.stack([result.group, identity]), axis=1)[0]) > 1
    false_merges = np.bincount(np.unique(np.stack([result.group, truth]), axis=1)[0]) > 1
    planted = np.unique(result.group[role == "evil"])
    summary = summarize(result.group, labels)
    return {
        "n": int(len(images)),
        "seconds": seconds,
        "cpu": cpu,
        "peak_mb": peak / 1024,
        "baseline_mb": baseline / 1024,
        "groups": summary["groups"],
        "conflicting": summary["conflicting_groups"],
        "conflicting_planted": int(len(planted)),
        "merged_distinct": int(merged.sum()),
        "false_merges": int(false_merges.sum()),
        "copies": int(len(copies)),
        "recall": float((result.group[copies] == result.group[originals]).mean()),
        "threshold": result.threshold,
    }


def test_set(name: str) -> dict:
    """A bundled real test set as it is: every merge there is a false one unless the labels agree."""
    import numpy as np

    from pipeline.plant import load_source
    from stages.group import GroupParams, group_images, summarize

    images, labels = load_source(name)
    start = time.perf_counter()
    result = group_images(images, GroupParams())
    seconds = time.perf_counter() - start
    summary = summarize(result.group, labels)
    exact = np.bincount(result.exact)
    return {
        "name": name,
        "seconds": seconds,
        "groups": summary["groups"],
        "sizes": summary["groups_by_size"],
        "conflicting": summary["conflicting_groups"],
        "exact_groups": int((exact > 1).sum()),
        "largest_exact": int(exact.max()),
        "largest": int(np.bincount(result.group).max()),
        "blank": int(result.blank.sum()),
        "threshold": result.threshold,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000, 20000])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(test_set(args.child) if args.child in ("mnist", "notmnist") else measure(int(args.child))))
        return

    def child(what) -> dict:
        # a fresh process per measurement; this parent stays small, because Linux carries ru_maxrss over exec
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(what)], capture_output=True, text=True, check=True, cwd=ROOT
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    # other work on the machine slows every row: say how busy it was
    print(f"# load average before: {os.getloadavg()[0]:.2f}")
    print(
        "| test set | wall s | groups | groups by size | conflicting groups | exact-copy groups (largest) "
        "| largest group | blank images | threshold |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for name in ("mnist", "notmnist"):
        r = child(name)
        sizes = ", ".join(f"{k}: {v}" for k, v in r["sizes"].items())
        print(
            f"| {name} | {r['seconds']:.2f} | {r['groups']} | {sizes} | {r['conflicting']} "
            f"| {r['exact_groups']} ({r['largest_exact']}) | {r['largest']} | {r['blank']} | {r['threshold']:.3f} |",
            flush=True,
        )
    print()

    print(f"# planted cases, {cpu_model()}, {os.cpu_count()} cores, one fresh process per N")
    print(
        "| N | wall s | CPU s | peak RSS MB (before grouping) | groups | conflicting groups (holding a planted evil "
        "twin) | groups holding >1 clean image | false merges (true classes differ) "
        "| perturbed copies with their original | threshold |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        r = child(n)
        print(
            f"| {r['n']} | {r['seconds']:.2f} | {r['cpu']:.2f} | {r['peak_mb']:.0f} ({r['baseline_mb']:.0f}) "
            f"| {r['groups']} | {r['conflicting']} ({r['conflicting_planted']}) | {r['merged_distinct']} "
            f"| {r['false_merges']} "
            f"| {r['recall']:.4f} of {r['copies']} | {r['threshold']:.3f} |",
            flush=True,
        )
    print(f"# load average after: {os.getloadavg()[0]:.2f} (1 minute)")


if __name__ == "__main__":
    main()
