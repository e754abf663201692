"""Package-wide settings every layer may read: the version, and how many threads a
default of "all cores" means on this machine (the CPU affinity mask, not the core count:
a container or `taskset` limits it).

May import: nothing of hashmatch.
"""
from __future__ import annotations

import os

__version__ = "0.1.0"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
