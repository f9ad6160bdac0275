"""The benchmarks: each module here measures one thing and runs through `python -m benchmarks NAME`
(`python -m benchmarks` lists them); benchmarks/harness/ holds what they share, benchmarks/results/ their latest
figures, from which `python -m benchmarks render` makes BENCHMARKS.md."""

import sys

# `python -m benchmarks.NAME`, as benchmarks ran before they had one entry point, would import the module and do
# nothing: say how they run now instead (harness modules that are commands, as harness.peers, run as they are).
_ARGV = getattr(sys, "orig_argv", [])
_MODULE = _ARGV[_ARGV.index("-m") + 1] if "-m" in _ARGV[:-1] else ""
if _MODULE.startswith("benchmarks.") and not _MODULE.startswith(("benchmarks.harness.", "benchmarks.__main__")):
    print(f"python -m {_MODULE}: run it as `python -m benchmarks {_MODULE.split('.', 1)[1]}`", file=sys.stderr)
    sys.exit(2)
