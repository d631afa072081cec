"""Writing files that normsim owns, and only those: never through a symbolic link, never
over a file it did not write.

A writer first checks every file it is about to write (:func:`check`), so a refusal
leaves nothing half-written, then writes each one atomically (:func:`write`): a fresh
temporary file beside it (created exclusively, never following a link) renamed over the
name, which replaces a link rather than writing where it points. What a writer wrote is
listed in a manifest (:func:`read_manifest`, :func:`add_to_manifest`) so that the next
run may overwrite those files and nothing else; ``force`` overwrites anyway.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from sim.core.schema import ConfigError


def check(path: Path, *, owned: bool, force: bool = False) -> None:
    """Raise one ConfigError line naming ``path`` if writing it would follow a symbolic link
    or overwrite a file not ``owned`` (unless ``force``: then the link or file itself is replaced)."""
    if path.is_symlink():
        if not force:
            raise ConfigError(
                f"{path}: is a symbolic link; nothing is written through one (remove it, or --force to replace the link)"
            )
    elif path.is_dir():
        raise ConfigError(f"{path}: is a directory; a file of that name is to be written there")
    elif path.exists() and not owned and not force:
        raise ConfigError(f"{path}: exists and was not written by normsim; not overwritten (--force overwrites it)")


def ensure_dir(path: Path) -> None:
    """Create ``path`` (and its parents) unless it exists; a symbolic link there is refused."""
    if path.is_symlink():
        raise ConfigError(f"{path}: is a symbolic link; nothing is written through one (remove it)")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path}: is a file; a directory of that name is needed there")
    path.mkdir(parents=True, exist_ok=True)


def write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically through a fresh temporary file beside it."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # O_EXCL, no link followed
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp, path)  # renames over a link: the link goes, its target stays untouched
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove(path: Path) -> None:
    """Remove a file this writer listed before (a link is removed, never what it points to)."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)


def is_manifest(path: Path) -> bool:
    """Whether ``path`` is missing or a manifest (a JSON list of names): a user's file of that
    name is not overwritten as though it were one."""
    if path.is_symlink():
        return False
    if not path.exists():
        return True
    try:
        return isinstance(json.loads(path.read_text(encoding="utf-8")), list)
    except (OSError, ValueError):
        return False


def read_manifest(path: Path) -> set[str]:
    """The plain file names (no folders) listed in a manifest; empty when there is none."""
    if path.is_symlink():
        return set()
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(listed, list):
        return set()
    # Only plain names: a manifest edited by hand must not point outside its folder.
    return {n for n in listed if isinstance(n, str) and n and "/" not in n and "\\" not in n and n not in (".", "..")}


def add_to_manifest(path: Path, names: Iterable[str], *, replace: bool = False, force: bool = False) -> None:
    """List ``names`` in the manifest at ``path`` (beside those already there unless ``replace``)."""
    listed = set(names) | (set() if replace else read_manifest(path))
    check(path, owned=is_manifest(path), force=force)
    write(path, json.dumps(sorted(listed)))
