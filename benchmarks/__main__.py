"""The benchmarks' one entry point.

python -m benchmarks                      # the benchmarks, one line each
python -m benchmarks NAME [options]       # run one: prints its tables, writes benchmarks/results/NAME.json
python -m benchmarks NAME --help          # what it measures and its options
python -m benchmarks render               # BENCHMARKS.md from benchmarks/results/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.harness import catalogue
from benchmarks.harness.data import MissingData
from benchmarks.harness.record import RESULTS, Report, configuration


def parser_for(name: str) -> argparse.ArgumentParser:
    module = catalogue.load(name)
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks {name}",
        description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.options(parser)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the results file goes")
    return parser


def run(name: str, argv: list[str]) -> Path | None:
    """Run a benchmark with its command-line options; the results file it wrote (None: it made no table)."""
    parser = parser_for(name)
    args = parser.parse_args(argv)
    report = Report(name, argv, configuration(parser, args), args.results)
    catalogue.load(name).run(args, report)
    return report.write()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(catalogue.listing())
        return 0
    if argv[0] == "render":
        text = catalogue.render()
        catalogue.DOCUMENT.write_text(text, encoding="utf-8")
        print(f"{catalogue.DOCUMENT}: {len(text.encode()) / 1000:.1f} kB")
        return 0
    if argv[0] not in catalogue.names():
        print(f"python -m benchmarks: no benchmark {argv[0]!r}; `python -m benchmarks` lists them", file=sys.stderr)
        return 2
    try:
        run(argv[0], argv[1:])
    except MissingData as exc:
        print(f"python -m benchmarks {argv[0]}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
