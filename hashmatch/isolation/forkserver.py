"""The process context hashing workers are started from: multiprocessing's forkserver,
with hashmatch preloaded, started so that it imports the *installed* hashmatch.

Python 3.11's forkserver is a fresh `python -c ...` process that ignores the parent's
sys.path and puts its working directory first on its own; started from a source
checkout, it would import the uncompiled package folder found there instead of the
installed one, and every worker would die on import. It is therefore started once,
under a lock, with PYTHONSAFEPATH=1 (Python >= 3.11: no working directory on sys.path)
in its environment; the variable is restored at once.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import threading
from multiprocessing import forkserver
from typing import Any

_lock = threading.Lock()


def worker_context() -> Any:
    """The forkserver context, its server running with hashmatch.isolation.workers preloaded."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["hashmatch.isolation.workers"])
    with _lock:
        previous = os.environ.get("PYTHONSAFEPATH")
        os.environ["PYTHONSAFEPATH"] = "1"
        try:
            forkserver.ensure_running()
        finally:
            if previous is None:
                os.environ.pop("PYTHONSAFEPATH", None)
            else:
                os.environ["PYTHONSAFEPATH"] = previous
    return ctx
