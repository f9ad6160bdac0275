"""What the benchmarks share, written once: where the data is (data), the cases they plant (cases), how a method
runs on a case, as a command or in this process (runs, peers), how its answer is scored (scores), and what a run
leaves behind, its tables with command, commit and machine (record), from which BENCHMARKS.md is made (catalogue).
"""
