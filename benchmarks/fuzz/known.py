"""Known bugs the fuzz harnesses step over, so a run can look for new ones:
HASHMATCH_FUZZ_KNOWN is a comma-separated list of ExceptionType or
ExceptionType:substring-of-message. Each known exception is reported once on stderr
instead of stopping the run."""
from __future__ import annotations

import os
import sys

KNOWN = [tuple(item.split(":", 1)) if ":" in item else (item, "")
         for item in os.environ.get("HASHMATCH_FUZZ_KNOWN", "").split(",") if item.strip()]
_seen: set = set()


def is_known(exc: BaseException) -> bool:
    for name, text in KNOWN:
        if type(exc).__name__ == name and text in str(exc):
            if (name, text) not in _seen:
                _seen.add((name, text))
                print(f"known bug stepped over: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
            return True
    return False
