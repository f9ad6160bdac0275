"""SIGTERM handled as Ctrl-C is: what a harness's timeout, `kill` or `docker stop` sends ends a run the same clean way
(files all or none, temporaries removed, the members' workers stopped), with one line and exit code 143. hw02.py and
`twins` install it; the Python API leaves a program's own signal handling alone."""

from __future__ import annotations

import signal

TERMINATED_EXIT = 128 + signal.SIGTERM  # 143, as a shell reports a process SIGTERM ended
INTERRUPTED_EXIT = 128 + signal.SIGINT  # 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt, so every clean-up that Ctrl-C runs runs for it too."""


def terminate_like_interrupt() -> None:
    """From now on SIGTERM raises Terminated in the main thread (a no-op outside it, where no handler can be set)."""

    def raise_terminated(signum, frame):
        raise Terminated()

    try:
        signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread
        pass


def interrupted(exc: KeyboardInterrupt) -> tuple[str, int]:
    """The one word and the exit code for an interrupt: Ctrl-C's or SIGTERM's."""
    return ("terminated", TERMINATED_EXIT) if isinstance(exc, Terminated) else ("interrupted", INTERRUPTED_EXIT)
