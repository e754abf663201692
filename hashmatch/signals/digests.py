"""MD5, SHA-1 and SHA-256 of a file's bytes: the exact hashes clearing houses share for
files of every kind (images, videos, documents). Computed from every byte of any readable
file, streamed however large it is; matched by equality."""
from __future__ import annotations

import hashlib
from typing import Any

from hashmatch.signals.base import SignalType


class _Digest(SignalType):
    content = "bytes"
    exact = True

    def new_digest(self) -> Any:
        return hashlib.new(self.name)


class MD5(_Digest):
    name = "md5"
    # python-threatexchange's photo_md5 and video_md5 are MD5 of the file's bytes too.
    aliases = ("photo_md5", "photomd5", "video_md5")
    bits = 128
    description = "MD5 of the file's bytes"


class SHA1(_Digest):
    name = "sha1"
    aliases = ("sha-1", "sha_1")
    bits = 160
    description = "SHA-1 of the file's bytes"


class SHA256(_Digest):
    name = "sha256"
    aliases = ("sha-256", "sha_256", "video_sha256")
    bits = 256
    description = "SHA-256 of the file's bytes"
