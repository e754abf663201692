"""The registry of signal types: the built-in ones (PDQ, pHash, dHash, aHash, MD5, SHA-1,
SHA-256, vPDQ) and those installed packages declare under the ``hashmatch.signal_types`` entry
point, loaded once, lazily, thread-safely, before the first lookup.

A plug-in package declares, in its pyproject.toml::

    [project.entry-points."hashmatch.signal_types"]
    whash = "hashmatch_whash:WHash"

where ``WHash`` is a SignalType subclass (signals/base.py) or an instance of one. Every
part of hashmatch (hash, lists, store, lookup, scan, the API) then knows it by name.

The package also holds hasher.py (Hasher: one decode, every requested signal type, threads)
and base.py (the SignalType interface plug-ins implement). May import: hashmatch.video,
hashmatch.decode, hashmatch._native and the layers below.
"""
from __future__ import annotations

import logging
import threading

from hashmatch.errors import ConfigurationError
from hashmatch.signals.base import HashOptions, ImageContext, SignalType
from hashmatch.signals.digests import MD5, SHA1, SHA256
from hashmatch.signals.imagehash_family import AHash, DHash, PHash
from hashmatch.signals.pdq import PDQ
from hashmatch.signals.vpdq import VPDQ

ENTRY_POINT_GROUP = "hashmatch.signal_types"
#: The signal types hashmatch ships, in the order they are listed.
BUILTIN: tuple[SignalType, ...] = (PDQ(), PHash(), DHash(), AHash(), MD5(), SHA1(), SHA256(), VPDQ())

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_types: dict[str, SignalType] = {}
_aliases: dict[str, str] = {}
_loaded = False


def register(signal: SignalType | type[SignalType]) -> SignalType:
    """Add a signal type (plug-ins do this through their entry point; tests and embedding
    code may call it directly). A name already taken is an error."""
    instance = signal() if isinstance(signal, type) else signal
    if not isinstance(instance, SignalType):
        raise ConfigurationError(f"{signal!r} is not a hashmatch SignalType")
    name = getattr(instance, "name", "")
    if not name or name != name.lower() or not name.replace("_", "").isalnum():
        raise ConfigurationError(f"signal type name {name!r}: lowercase letters, digits and underscores")
    if not isinstance(getattr(instance, "bits", None), int) or instance.bits <= 0 or instance.bits % 8:
        raise ConfigurationError(f"signal type {name}: bits must be a positive multiple of 8")
    if instance.content not in ("image", "bytes", "video"):
        raise ConfigurationError(f"signal type {name}: content must be 'image', 'bytes' or 'video'")
    with _lock:
        if name in _types and _types[name] is not instance:
            raise ConfigurationError(f"a signal type named {name!r} is already registered")
        _types[name] = instance
        for alias in (name, *instance.aliases):
            _aliases.setdefault(alias.lower(), name)
    return instance


for _builtin in BUILTIN:
    _types[_builtin.name] = _builtin
    for _alias in (_builtin.name, *_builtin.aliases):
        _aliases[_alias] = _builtin.name


def _load() -> None:
    """Load the plug-ins (once, thread-safely). Lookups of built-in names never need them
    (a plug-in cannot take a built-in name), so a run that uses only built-in types never
    pays for scanning the installed packages' entry points."""
    global _loaded
    if _loaded:
        return
    from importlib.metadata import entry_points

    with _lock:
        if _loaded:
            return
        plugins = list(entry_points(group=ENTRY_POINT_GROUP))
        _loaded = True
    for point in plugins:
        try:
            register(point.load())
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not take hashmatch down
            _log.warning("signal type plug-in %s (%s) not loaded: %s", point.name, point.value, exc)


def get(name: str) -> SignalType:
    """The signal type called `name` (or one of its aliases, any case)."""
    found = _aliases.get(name.strip().lower())
    if found is None:
        _load()
        found = _aliases.get(name.strip().lower())
    if found is None:
        raise ConfigurationError(f"unknown algorithm {name!r}; choose from {', '.join(names())}")
    return _types[found]


def find(name: str) -> SignalType | None:
    """Like get(), or None for an unknown name."""
    found = _aliases.get(name.strip().lower())
    if found is None:
        _load()
        found = _aliases.get(name.strip().lower())
    return _types[found] if found else None


def names() -> tuple[str, ...]:
    """Every known signal type name: the built-in ones first, then plug-ins."""
    _load()
    return tuple(_types)


__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "HashOptions", "ImageContext", "SignalType", "find", "get", "names",
           "register"]
