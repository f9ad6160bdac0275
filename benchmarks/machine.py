"""One line that says when and where a benchmark ran, for the table it prints: timings mean little without it."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> str:
    """Date, CPU, usable cores, Python, and the 1-minute load average (other work on the machine slows a run)."""
    load = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"# {datetime.date.today().isoformat()}, {cpu_model()}, {cores} cores, Python {platform.python_version()}, "
        f"load average {load}"
    )
