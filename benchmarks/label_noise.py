"""Rolnick et al.'s label-noise experiment (2017) with this tool in the loop.

Test accuracy of the model zoo trained on digits with alpha random-label copies each, and on what the tool keeps;
the flags' precision and recall.

    python -m benchmarks label_noise                       # 500 digits, alpha 0..50: ~40 min on 2 cores
    python -m benchmarks label_noise --distinct 300 --alphas 0 5 --models linear cnn   # a quick look

Data: `--distinct` digits drawn from the real MNIST training set in ../shared/data (60,000; not shipped with the
repo), each followed by alpha copies with uniformly random labels (NoisyLabelDataset: item i is digit
i // (alpha + 1)); 1,000 further training digits with their true labels for early stopping; the 10,000 MNIST test
digits for accuracy. The paper trains on all 60,000 digits; 2 cores cannot afford 51 x 60,000 images, so this
subsamples (--distinct) and says so in its output.
Each zoo model (linear, MLP, CNN, Conv4: pipeline/models.py) trains with AdamW at batch 128 for at most
--max-steps steps, checked on the validation digits every 100 steps; the best checkpoint is tested. The tool runs
through pipeline.api.find_issues with the defaults params.yaml mirrors and --time-budget seconds; its flags'
precision and recall count a flag right when the flagged label is wrong. It draws a plot in the manner of the
paper's Figure 1 (--plot; by default beside the results file).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np

from benchmarks.harness.data import shared

MODELS = ("linear", "mlp", "cnn", "conv4")
ALPHAS = (0, 1, 5, 10, 20, 50)
BATCH = 128
CHECK_EVERY = 100


def mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = shared("mnist", split)
    return images.copy(), labels  # torch wants writable arrays


def accuracy(model, x, y) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        right = sum(
            int((model(chunk).argmax(1) == target).sum()) for chunk, target in zip(x.split(2048), y.split(2048))
        )
    model.train()
    return right / len(y)


def train_and_test(kind: str, images, labels, *, valid, test, max_steps: int, seed: int) -> float:
    """Test accuracy of `kind` trained on (images, labels), the checkpoint best on the validation digits."""
    import torch

    from stages.train_models import build_model, standardize

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x, y = standardize(images), torch.as_tensor(labels)
    xv, yv = standardize(valid[0]), torch.as_tensor(valid[1])
    model = build_model(kind, 1, 28, 28, 10)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    best, best_state, patience = -1.0, None, 0
    for step in range(1, max_steps + 1):
        batch = torch.randint(0, len(y), (BATCH,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if step % CHECK_EVERY == 0:
            score = accuracy(model, xv, yv)
            if score > best:
                best, best_state, patience = score, copy.deepcopy(model.state_dict()), 0
            else:
                patience += 1
                if patience == 5:
                    break
    model.load_state_dict(best_state)
    return accuracy(model, standardize(test[0]), torch.as_tensor(test[1]))


def options(parser) -> None:
    parser.add_argument("--distinct", type=int, default=500, help="distinct training digits (the paper: 60,000)")
    parser.add_argument("--alphas", type=int, nargs="+", default=list(ALPHAS))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--time-budget", type=float, default=150.0, help="seconds for the tool's own run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, help="where the plot goes (default: beside the results file)")


COLUMNS = {
    "alpha": "d",
    "N": "d",
    "wrong labels": "d",
    "model": "",
    "test acc. noisy": ".3f",
    "test acc. cleaned": ".3f",
    "flags precision": ".3f",
    "flags recall": ".3f",
    "tool s": ".0f",
}


def run(args, report) -> None:
    import torch

    from pipeline.api import find_issues
    from pipeline.plant import random_label_copies

    torch.set_num_threads(2)
    rng = np.random.default_rng(args.seed)
    images, labels = mnist("train")
    order = rng.permutation(len(labels))
    train_idx, valid_idx = order[: args.distinct], order[args.distinct : args.distinct + 1000]
    valid, test = (images[valid_idx], labels[valid_idx]), mnist("t10k")
    report.note(
        f"{args.distinct} distinct MNIST training digits (subsampled from 60,000: 2 cores cannot afford the "
        f"paper's full set x 51), 1,000 clean validation digits, 10,000 test digits; seed {args.seed}"
    )
    index = ["alpha", "N", "wrong labels", "flags precision", "flags recall", "tool s"]
    wide = (index, "model", ["test acc. noisy", "test acc. cleaned"])
    table = report.table(
        COLUMNS, "Test accuracy by model, trained on the noisy set and on what the tool keeps", wide=wide
    )
    curves = {}
    for alpha in args.alphas:
        x, given, truth, _ = random_label_copies(images[train_idx], labels[train_idx], alpha, rng)
        start = time.perf_counter()
        flagged = find_issues(x, given, time_budget_s=args.time_budget).flagged
        seconds = time.perf_counter() - start
        wrong = given != truth
        precision = (flagged & wrong).sum() / max(flagged.sum(), 1)
        recall = (flagged & wrong).sum() / max(wrong.sum(), 1)
        for kind in args.models:
            held = dict(valid=valid, test=test, max_steps=args.max_steps, seed=args.seed)
            noisy = train_and_test(kind, x, given, **held)
            cleaned = train_and_test(kind, x[~flagged], given[~flagged], **held)
            curves.setdefault(kind, []).append((alpha, noisy, cleaned))
            values = [alpha, len(given), wrong.sum(), kind, noisy, cleaned, precision, recall, seconds]
            table.add(dict(zip(COLUMNS, values)))
    plot(curves, args.distinct, args.plot or report.beside(".png"))
    report.file(args.plot or report.beside(".png"))


def plot(curves: dict, distinct: int, path: Path) -> None:
    """Test accuracy against alpha per model, trained on the noisy set (dashed) and on what the tool keeps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for k, (kind, points) in enumerate(curves.items()):
        a, noisy, cleaned = map(np.array, zip(*points))
        ax.plot(a, noisy * 100, "--o", color=f"C{k}", label=f"{kind}, noisy")
        ax.plot(a, cleaned * 100, "-s", color=f"C{k}", label=f"{kind}, flags removed")
    ax.set_xlabel("alpha: random-label copies per clean digit")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"MNIST, {distinct} distinct digits")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
