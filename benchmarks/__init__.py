"""The benchmarks: each module here measures one thing and runs through `python -m benchmarks NAME`
(`python -m benchmarks` lists them); benchmarks/harness/ holds what they share, benchmarks/results/ their latest
figures, from which `python -m benchmarks render` makes BENCHMARKS.md."""
