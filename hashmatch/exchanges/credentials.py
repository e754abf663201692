"""Reading a source's credentials file. The store records only its path; the file must be
a regular file of the user's, readable by no one else (0600 or stricter), else it is
refused with a message that says why. Its content is never logged, never put in an error
message, the audit log or `exchange show`."""
from __future__ import annotations

import os
import stat

from hashmatch.errors import ConfigurationError


def read_credentials(path: str) -> str:
    """The secret in `path` (stripped), after checking who may read it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise ConfigurationError(f"credentials file {path} does not exist") from None
    except OSError as exc:
        raise ConfigurationError(f"credentials file {path} cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigurationError(f"credentials file {path} is not a regular file")
        if info.st_uid != os.getuid():
            raise ConfigurationError(f"credentials file {path} belongs to another user; refusing to use it")
        if info.st_mode & 0o077:
            raise ConfigurationError(f"credentials file {path} is readable by others (mode "
                                     f"{stat.S_IMODE(info.st_mode):04o}); chmod 600 it")
        data = os.read(fd, 1 << 16)
    finally:
        os.close(fd)
    secret = data.decode("utf-8", "replace").strip()
    if not secret:
        raise ConfigurationError(f"credentials file {path} is empty")
    return secret
