"""Write a file so that a reader sees the old content or the new, never a part."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path


def _current_umask() -> int:
    """The process's umask. Linux reports it in /proc (reading it never changes it);
    elsewhere it can only be read by setting it, so it is set straight back."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_like_open(path: Path) -> int:
    """The permissions open(path, "w") would leave: an existing file keeps its own, a new
    one gets 0o666 less the umask. (mkstemp makes its files 0o600, whatever the umask.)"""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_current_umask()


def atomic_write(path: str | os.PathLike, write: Callable[[object], None], mode: str = "wb"):
    """Call write(file) on a temporary file beside `path`, fsync it, then rename it over
    `path`. A crash part-way leaves `path` as it was. The file gets the permissions an
    ordinary open() would give it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    permissions = _mode_like_open(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            os.chmod(handle.fileno(), permissions)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)
