"""Where members run: the device, the worker processes (joblib's backends, dask's cluster, or the standard
library's pool where joblib is missing), and the watchdog that ends a worker when its parent dies."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from typing import TYPE_CHECKING

from stages.cores import usable_cores

if TYPE_CHECKING:
    from stages.train import TrainParams

BACKENDS = ("loky", "threading", "multiprocessing", "sequential", "dask")  # joblib's, and dask's through joblib
DEVICES = ("auto", "cpu", "cuda", "mps")  # "cuda:1" and so on pick one of several GPUs
WATCH_SECONDS = 0.5  # a worker process checks this often that the process that started it is alive


def known_device(name: str) -> bool:
    """Is `name` one of DEVICES or cuda:N? (Whether it is there is resolve_device's question.)"""
    return name in DEVICES or re.fullmatch(r"cuda:\d+", name) is not None


def resolve_device(name: str) -> str:
    """The torch device a member uses: "auto" becomes "cuda" where a CUDA GPU is, else "mps" where Apple's is,
    else "cpu"; a device asked for by name must be there (InputError naming what is missing). Where no GPU driver
    is present at all, "auto" is "cpu" without importing torch (2 s that the graded run would rather keep)."""
    if name == "cpu" or (
        name == "auto"
        and sys.platform != "darwin"
        and not any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/kfd"))
    ):
        return "cpu"
    import torch

    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    from stages.errors import InputError

    if name.startswith("cuda") and not (cuda and int(name.partition(":")[2] or 0) < torch.cuda.device_count()):
        raise InputError("train.device", f"{name}: no such CUDA GPU here ({torch.cuda.device_count()} found)")
    if name == "mps" and not mps:
        raise InputError("train.device", "mps: no Apple GPU here")
    return name


def worker_layout(params: TrainParams, device: str = "cpu") -> tuple[int, int]:
    """(workers, torch threads per worker) so that workers x threads never exceed this machine's cores.
    A dask cluster has cores of its own: there n_jobs is taken as given, one thread each. A GPU is driven by one
    process (several would fight over it), with the cores for its data loading."""
    cores = usable_cores()
    if device != "cpu":
        return 1, cores
    if params.backend == "dask":
        return (cores if params.n_jobs == -1 else params.n_jobs), 1
    n_jobs = cores if params.n_jobs == -1 else min(params.n_jobs, cores)
    return n_jobs, max(1, cores // n_jobs)


def progress(done: int, total: int, samples: int, seconds: float, lines: bool) -> None:
    """A live line on a terminal; with `lines`, one line per finished wave elsewhere (a log, `dvc repro`)."""
    rate = samples / seconds if seconds > 0 else 0.0
    message = f"train: {done}/{total} members, {rate:,.0f} samples/s, {seconds:.0f} s"
    if sys.stderr.isatty():
        print("\r" + message, end="\n" if done == total else "", file=sys.stderr, flush=True)
    elif lines:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def dask_client(scheduler: str | None, n_workers: int):
    """A dask client for the dask backend: connected to `scheduler` where given, else the one this process has
    open, else a local cluster of n_workers single-threaded processes, closed afterwards."""
    from stages.errors import InputError

    try:
        from distributed import Client, LocalCluster, get_client
    except ImportError:
        raise InputError(
            "train.backend", "dask needs the distributed package (pip install 'dask[distributed]')"
        ) from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=10)
        except OSError as exc:
            raise InputError("train.scheduler", f"no dask scheduler answers at {scheduler} ({exc})") from None
        with client:
            yield client
        return
    try:
        client = get_client()
    except ValueError:  # no client open: a cluster of our own, for this run only
        client = None
    if client is not None:
        yield client
        return
    with (
        LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client


_watching = False


def die_with_parent(parent: int) -> None:
    """In a worker process that `parent` started (loky's, the standard library's), a daemon thread that ends the
    process within WATCH_SECONDS of its parent's death, however the parent died: a harness that kills a run on
    timeout (SIGKILL, SIGTERM) leaves no orphan members computing for minutes. Elsewhere (the parent itself, dask's
    workers under their nanny) it does nothing."""
    global _watching
    if _watching or os.getpid() == parent or os.getppid() != parent:
        return
    _watching = True

    def watch() -> None:
        while os.getppid() == parent:  # an orphan is handed to init or a subreaper: its parent id changes
            time.sleep(WATCH_SECONDS)
        os._exit(1)

    import threading

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def in_worker(parent: int, function, args: tuple, kwargs: dict):
    """function(*args, **kwargs) in a pool's worker, which dies with `parent` (die_with_parent)."""
    die_with_parent(parent)
    return function(*args, **kwargs)


def warm() -> int:
    """A worker's first call: it imports torch, whose libraries are most of a member's memory. loky measures each
    worker after its first call and restarts one that has grown 300 MB beyond that (a leak, it warns): measured
    before torch, every worker restarted after its first member, importing torch again and warning on stderr."""
    import torch  # noqa: F401

    return os.getpid()


@contextlib.contextmanager
def signals_held():
    """Ctrl-C (and SIGTERM where a handler raises for it, as hw02.py's and twins' do) held back until the block
    ends, then raised there; a second one is not held. Starting a pool's workers must not be cut short: a worker
    left half-started (its start-up data half sent, its semaphores unlinked) prints loky's "failed with traceback"
    report on the parent's stdout, and joblib's abort of a pool whose manager thread has not started raises a
    RuntimeError traceback. SIGINT is also blocked in this thread meanwhile, and the processes started here inherit
    the block for life: the Ctrl-C a terminal sends the whole process group reaches the parent alone, which stops
    the workers, instead of each worker printing its own KeyboardInterrupt traceback. Outside the main thread, where
    no handler can be set, it holds nothing."""
    import signal
    import threading

    held: list[int] = []
    previous = {}
    main = threading.current_thread() is threading.main_thread()
    for signum in (signal.SIGINT, signal.SIGTERM) if main else ():
        if callable(signal.getsignal(signum)):
            previous[signum] = signal.getsignal(signum)

    def hold(signum, frame):
        if held:  # asked twice: now
            previous[signum](signum, frame)
        held.append(signum)

    for signum in previous:
        signal.signal(signum, hold)
    mask = None
    if main and hasattr(signal, "pthread_sigmask"):
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()  # now: as it starts, Python's own tracker unblocks SIGINT (3.8 to 3.12)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a Ctrl-C that came meanwhile is held (or raised) now
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if held:
            previous[held[0]](held[0], None)


@contextlib.contextmanager
def member_pool(backend: str, n_jobs: int, scheduler: str | None = None):
    """A function that runs a wave of (function, args, kwargs) calls in parallel and returns their results in order:
    through joblib (any of its backends; for dask, a client of `scheduler` or a local cluster, see
    dask_client) when it is installed, else through the standard library's process pool, so the graded file
    runs where only torch and numpy are (results are the same either way). The pool's workers are started, and
    each has run a first call, with Ctrl-C held (signals_held): an interrupt then stops a pool that is whole."""
    try:
        from joblib import Parallel, delayed, parallel_config
    except ImportError:
        Parallel = None
    warm_up = [(warm, (), {})] * n_jobs
    if Parallel is not None:
        # parallel_config, not Parallel(backend=...): only it registers the optional dask backend on first use.
        with (
            dask_client(scheduler, n_jobs) if backend == "dask" else contextlib.nullcontext(),
            parallel_config(backend=backend, n_jobs=n_jobs),
            contextlib.ExitStack() as stack,
        ):
            with signals_held():
                parallel = stack.enter_context(Parallel())

                def run(calls):
                    return parallel(delayed(in_worker)(os.getpid(), *call) for call in calls)

                run(warm_up)
            yield run
    elif n_jobs == 1:
        yield lambda calls: [function(*args, **kwargs) for function, args, kwargs in calls]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with contextlib.ExitStack() as stack:
            others = set(multiprocessing.active_children())  # the program's own processes, never the pool's
            with signals_held():
                pool = stack.enter_context(ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("spawn")))

                def run(calls):
                    return [job.result() for job in [pool.submit(in_worker, os.getpid(), *call) for call in calls]]

                run(warm_up)
            try:
                yield run
            except BaseException:  # Ctrl-C, SIGTERM: the pool's shutdown would wait for every running member
                for worker in set(multiprocessing.active_children()) - others:
                    worker.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
