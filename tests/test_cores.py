"""The cores this process may use, and chunked work spread over them."""

import os
import threading

import numpy as np
import pytest

from stages.cores import map_chunks, usable_cores


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this platform")
def test_usable_cores_never_exceed_the_cores_this_process_is_pinned_to():
    assert 1 <= usable_cores() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize("threads", [1, 3])
def test_chunks_cover_every_item_once_and_come_back_in_order(threads):
    seen = np.zeros(103, int)

    def work(part):
        seen[part] += 1
        return part.start, part.stop

    assert map_chunks(work, 103, 10, threads) == [(s, min(s + 10, 103)) for s in range(0, 103, 10)]
    assert np.all(seen == 1)
    assert map_chunks(work, 0, 10, threads) == []


def test_chunks_run_on_several_threads_when_asked():
    names = set()
    barrier = threading.Barrier(2, timeout=10)  # both chunks must be running at once to pass it

    def work(part):
        barrier.wait()
        names.add(threading.current_thread().name)

    map_chunks(work, 2, 1, threads=2)
    assert len(names) == 2
