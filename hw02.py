# Author: the evil-twins project (a tool that finds mislabelled samples, above all evil twins)
# Netid: evil-twins
# Aid: PyTorch, NumPy and joblib documentation; C. Northcutt et al., "Confident Learning" (cleanlab), for the idea
#      of judging labels by out-of-sample predictions; L. Breiman, "Bagging Predictors", for out-of-bag estimates.
"""Print the indices of suspected mislabelled samples: one line, ascending, joined by ', ' (empty when none).

    python3 hw02.py --data bad_digits_ubyte.gz --labels bad_labels_ubyte.gz

Runs the pipeline's stage functions (decode, group, train, aggregate) in this one process: no DVC, no cache, and no
files written. Logs go to stderr with -v. Bad input: one line on stderr and exit code 2.
"""
import time

START = time.monotonic()  # the time budget counts from here, as close to process start as Python gets

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

DASHES = ("\u2013", "\u2014", "\u2212")  # en dash, em dash, minus: what a PDF makes of "--"


def normalize_dashes(argv: list[str]) -> list[str]:
    """'–data' or '—data' (pasted from a PDF) mean '--data'."""
    out = []
    for arg in argv:
        stripped = arg.lstrip("".join(DASHES) + "-")
        if arg[:1] in DASHES and stripped:
            arg = "--" + stripped
        out.append(arg)
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="idx3 (or idx4) image file, gzipped or raw")
    parser.add_argument("--labels", required=True, help="idx1 label file, gzipped or raw")
    parser.add_argument("--time-budget", type=float, default=150.0,
                        help="seconds of wall time from process start; training adds no member that would end "
                             "after it, leaving a margin under a 3-minute limit (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed for everything random (default: %(default)s)")
    parser.add_argument("--num-classes", type=int, default=10,
                        help="labels must lie in 0..N-1 (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each stage on stderr")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(normalize_dashes(argv))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pipeline.errors import InputError
    from pipeline.plant import format_indices

    def log(message: str) -> None:
        if args.verbose:
            print(f"[{time.monotonic() - START:6.1f}s] {message}", file=sys.stderr, flush=True)

    try:
        from dataclasses import replace

        from pipeline.runner import find_suspects
        from stages.decode import DecodeParams, decode_files
        from stages.train import TrainParams

        images, labels = decode_files(DecodeParams(args.data, args.labels, args.num_classes))
        log(f"decode: {len(labels)} images of {images.shape[1]}x{images.shape[2]}x{images.shape[3]}")
        # The last member's predictions and the aggregation take a moment: keep them inside the budget too.
        deadline = START + args.time_budget - 5.0
        result = find_suspects(images, labels, train_params=replace(TrainParams(), seed=args.seed),
                               deadline=deadline, log=log)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.decisions.note and not args.verbose:
        print(f"note: {result.decisions.note}", file=sys.stderr)
    print(format_indices(result.decisions.flagged.nonzero()[0]))
    log(f"done in {time.monotonic() - START:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
