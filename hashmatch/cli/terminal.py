"""Text bound for a terminal. File, list and entry names come from untrusted places (a
seized drive, a shared list), so their control characters are shown escaped, never sent
raw: a carriage return could hide a match line, an escape sequence rewrite the screen, a
bidirectional override reverse a name. Reports and JSON output keep names exact."""
from __future__ import annotations

import re

# C0 and C1 controls, DEL, bidirectional marks and overrides, and the lone surrogates
# that stand for the undecodable bytes of a non-UTF-8 name (os.fsdecode).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a name that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: object) -> str:
    """`text` with every control character escaped (\\r -> \\x0d, ESC -> \\x1b)."""
    return _UNSAFE.sub(_escape, str(text))
