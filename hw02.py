# Author: the evil-twins project (a tool that finds mislabelled samples, above all evil twins)
# Netid: evil-twins
# Aid: PyTorch, NumPy, joblib docs; Northcutt et al., "Confident Learning"; Breiman, "Bagging Predictors"
"""Print the indices of suspected mislabelled samples: one line, ascending, joined by ', ' (empty when none).

    python3 hw02.py --data bad_digits_ubyte.gz --labels bad_labels_ubyte.gz

Runs the pipeline's stage functions (decode, group, train, aggregate) in this one process: no DVC, no cache, and no
files written. Logs go to stderr with -v. Bad input or a bad option: one line on stderr and exit code 2.
`make hw02` bundles this file and everything it runs into dist/hw02.py, which needs only numpy and torch.
"""

import time

START = time.monotonic()  # the time budget counts from here, as close to process start as Python gets

import argparse  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from dataclasses import replace  # noqa: E402

from pipeline.argv import normalize_dashes  # noqa: E402
from pipeline.runner import find_suspects  # noqa: E402
from pipeline.signals import interrupted, terminate_like_interrupt  # noqa: E402
from stages.aggregate import AggregateParams, format_indices  # noqa: E402
from stages.budget import Budget  # noqa: E402
from stages.decode import DecodeParams, decode_files  # noqa: E402
from stages.errors import InputError  # noqa: E402
from stages.params import MAX_SEED  # noqa: E402
from stages.train import TrainParams  # noqa: E402
from stages.workers import DEVICES, known_device  # noqa: E402

# A graded set is small: a count of one or two wrong labels is as likely an odd digit
# (docs: "The graded run: Wrong labels without a twin").
GRADED_AGGREGATE = AggregateParams(twinless="cautious", count_z=2.0, min_expected_wrong=2.0)


class OneLineParser(argparse.ArgumentParser):
    """A bad option gets one line on stderr and exit code 2, like a bad file (argparse adds a usage line)."""

    def error(self, message: str):
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def in_range(kind, low, high, what: str):
    """An argparse type: a number of `kind` with low <= value <= high (and finite)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{text} is not {what}")
        return value

    return parse


def given_path(text: str) -> str:
    """An argparse type: a path, never empty ("" would be the working folder)."""
    if not text:
        raise argparse.ArgumentTypeError("is empty")
    return text


def device_name(text: str) -> str:
    if known_device(text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(DEVICES)} or cuda:N")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=given_path, help="idx3 (or idx4) image file, gzipped or raw")
    parser.add_argument("--labels", required=True, type=given_path, help="idx1 label file, gzipped or raw")
    parser.add_argument(
        "--time-budget",
        type=in_range(float, 1e-3, 1e6, "a positive number of seconds"),
        default=150.0,
        help="seconds of wall time from process start; training adds no member that would end "
        "after it, leaving a margin under a 3-minute limit (default: %(default)s). With too "
        "little time for members, nearest neighbours decide the twin groups alone",
    )
    parser.add_argument(
        "--seed",
        type=in_range(int, 0, MAX_SEED, f"a seed in 0..{MAX_SEED}"),
        default=0,
        help="seed for everything random (default: %(default)s)",
    )
    parser.add_argument(
        "--num-classes",
        type=in_range(int, 1, 256, "a class count in 1..256"),
        default=10,
        help="labels must lie in 0..N-1 (default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        type=device_name,
        default="auto",
        help="where the models train: auto (a CUDA or Apple GPU where there is one, else the CPU), "
        "cpu, cuda, cuda:N or mps (default: %(default)s)",
    )
    parser.add_argument(
        "--twins-only",
        action="store_true",
        help="flag the losers of conflicting twin groups only, no sample without a twin (by default "
        "those are flagged too, on strong evidence: a graded set may lack some originals; README)",
    )
    parser.add_argument("--flag-without-twin", action="store_true", help=argparse.SUPPRESS)  # the default now
    parser.add_argument("-v", "--verbose", action="store_true", help="log each stage on stderr")
    return parser.parse_args(argv)


def print_answer(line: str) -> int:
    """The answer on stdout, flushed here so a closed or broken stdout is reported (exit 2), never lost silently."""
    if sys.stdout is None:  # started with stdout closed (>&-)
        print("error: stdout is closed: the answer has nowhere to go", file=sys.stderr)
        return 2
    try:
        print(line)
        sys.stdout.flush()
    except OSError as exc:  # BrokenPipeError among them
        try:  # nothing more to stdout: the interpreter's own flush at exit would fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        print(f"error: stdout: the answer could not be written ({exc.strerror or exc})", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str]) -> int:
    terminate_like_interrupt()
    args = parse_args(normalize_dashes(argv))
    if sys.stdout is None:
        return print_answer("")

    def log(message: str) -> None:
        if args.verbose:
            print(f"[{time.monotonic() - START:6.1f}s] {message}", file=sys.stderr, flush=True)

    try:
        images, labels = decode_files(DecodeParams(args.data, args.labels, args.num_classes))
        log(f"decode: {len(labels)} images of {images.shape[1]}x{images.shape[2]}x{images.shape[3]}")
        result = find_suspects(
            images,
            labels,
            train_params=replace(TrainParams(), seed=args.seed, device=args.device),
            aggregate_params=GRADED_AGGREGATE
            if not args.twins_only
            else replace(GRADED_AGGREGATE, flag_without_twin=False),
            budget=Budget.of_run(args.time_budget, START),
            log=log,
        )
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (pipeline/signals.py)
        word, code = interrupted(exc)
        print(word, file=sys.stderr)
        return code
    if result.decisions.note and not args.verbose:
        print(f"note: {result.decisions.note}", file=sys.stderr)
    status = print_answer(format_indices(result.decisions.flagged.nonzero()[0]))
    log(f"done in {time.monotonic() - START:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
