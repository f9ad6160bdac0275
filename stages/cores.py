"""The cores this process may use, and chunks of array work spread over them as threads.

Threads, not processes: numpy releases the interpreter lock inside its loops (sorts, gathers, arithmetic, matrix
products), so two threads on two cores take little more than half the time of one, and they share the arrays
instead of copying them. Each chunk computes its own part, so the answer does not depend on the thread count."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def usable_cores() -> int:
    """The cores this process may use, not the machine's count: joblib's count knows CPU affinity (`taskset -c 0,1`
    means 2) and a container's CPU quota; without joblib, the affinity alone."""
    try:
        from joblib import cpu_count
    except ImportError:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpu_count())


def map_chunks(work: Callable[[slice], T], n: int, chunk: int, threads: int | None = None) -> list[T]:
    """[work(slice(s0, s0 + chunk)) for s0 in range(0, n, chunk)], the chunks run on `threads` threads (default:
    usable_cores()). work may write to disjoint parts of shared arrays; results come back in chunk order."""
    parts = [slice(s0, min(s0 + chunk, n)) for s0 in range(0, n, chunk)]
    threads = min(len(parts), usable_cores() if threads is None else threads)
    if threads <= 1:
        return [work(part) for part in parts]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(work, parts))
