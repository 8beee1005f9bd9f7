"""A run folder's checkpoints, and the rules that keep two runs from ever sharing one folder.

checkpoints/step_XXXXXX.npz are ordered by the step number in their name (never by the
name's text: step_1000000 comes after step_999999), `latest` is a link to the newest, and
pruning never removes the checkpoint just written. A `latest` that points at a missing file
means the folder was damaged or mixed with another run: that is an error, never a reason
to pick some other checkpoint quietly.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

from ..io import CheckpointError
from .recipes import ConfigError

_CHECKPOINT_NAME = re.compile(r"step_(\d+)\.npz")


def checkpoints_by_step(out) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint of run folder `out`, oldest step first."""
    folder = Path(out) / "checkpoints"
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _CHECKPOINT_NAME.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def prune_checkpoints(out, keep: int, newest: Path) -> None:
    """Keep `newest` (the checkpoint just written) and the keep - 1 others of highest step."""
    others = [path for _, path in checkpoints_by_step(out) if path.name != newest.name]
    for path in others[: max(0, len(others) - (keep - 1))]:
        path.unlink()


def latest_checkpoint(out) -> Path:
    """The newest checkpoint of a run folder (or the file itself when given one)."""
    out = Path(out)
    if out.is_file():
        return out
    if not out.is_dir():
        raise CheckpointError(f"no checkpoint: {out} does not exist")
    link = out / "checkpoints" / "latest"
    if link.is_symlink() and not link.exists():
        found = ", ".join(path.name for _, path in checkpoints_by_step(out)) or "none"
        raise CheckpointError(
            f"{link} points at {os.readlink(link)}, which does not exist, so the folder is "
            f"damaged or was reused by another run; checkpoints present: {found} (pass one "
            "with --checkpoint FILE if you know it belongs to the run you want)"
        )
    if link.exists():
        return link.resolve()
    found = checkpoints_by_step(out)
    if not found:  # `latest` may be lost where links are not kept (some copies, archives)
        raise CheckpointError(f"{out} holds no checkpoint (looked for {link})")
    return found[-1][1]


def refuse_another_run(out) -> None:
    """A new run (at step 0) must not write into a folder that holds another run's
    checkpoints: pruning, `latest` and metrics.jsonl would mix the two."""
    found = checkpoints_by_step(out)
    if found:
        raise ConfigError(
            f"{out} already holds a run (checkpoints up to step {found[-1][0]}); continue it "
            "with --resume (Trainer.resume), or choose another folder (the CLI's --overwrite "
            "deletes the old run first)"
        )


# ----------------------------------------------------------------------------- one writer

# A process writing a run holds an exclusive lock on this file in the run folder for as long
# as it writes (an OS lock: it goes with the process, so a crash leaves nothing to clean).
# A second process that would start, resume or overwrite a run there is refused, naming the
# first; without it two runs started at once with one --out (or two plain `minigan train`s
# picking the same runs/NAME) both passed the "folder is empty" check and wrote into it.
LOCK_NAME = ".run.lock"

# resolved folder -> [open lock file, claims in this process, folders the first one made]
_held: dict[str, list] = {}
_held_guard = threading.Lock()


def claim_run_folder(out) -> None:
    """Make `out` (created if missing) this process's to write, or refuse with the pid of the
    process that writes there. Claims nest within a process; release_run_folder undoes one,
    and the last one removes the folders this claim made if no run was written in them."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file, not a run folder")
    made, folder = [], out  # innermost first
    while not folder.exists():
        made.append(folder)
        folder = folder.parent
    out.mkdir(parents=True, exist_ok=True)
    key = str(out.resolve())
    with _held_guard:
        if key in _held:
            _held[key][1] += 1
            return
        handle = open(out / LOCK_NAME, "a+", encoding="utf-8")
        if not _lock(handle):
            try:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
            except OSError:  # Windows: the holder's locked byte cannot be read
                holder = "unknown"
            handle.close()
            raise ConfigError(
                f"run folder {out} is in use: another minigan process (pid {holder}) is "
                "writing a run there; wait for it to finish, or choose another folder"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        _held[key] = [handle, 1, made]


def release_run_folder(out) -> None:
    """Undo one claim_run_folder of this process; the last one lets other processes in, and
    takes away its lock file, and the folders its claim made, when nothing was written there
    (a command that failed before its first write, a bad --data say, leaves nothing)."""
    out = Path(out)
    key = str(out.resolve())
    with _held_guard:
        entry = _held.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _held[key]
        handle, _, made = entry
        if not has_contents(out):  # no run here: the lock file goes too
            try:  # while still locked: a process opening it now makes a new lock file
                (out / LOCK_NAME).unlink()
            except OSError:  # (Windows keeps an open file)
                made = []
        handle.close()  # closing the file releases the lock
        for folder in made:
            try:
                folder.rmdir()
            except OSError:  # another process's run there now, or something of the user's
                break


def _lock(handle) -> bool:
    """An exclusive lock on the open file, without waiting: False if another process holds
    one. (flock on POSIX; a lock of the first byte on Windows.)"""
    try:
        import fcntl
    except ImportError:
        import msvcrt

        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def has_contents(path) -> bool:
    """Whether folder `path` holds anything besides a run's lock file."""
    return any(entry.name != LOCK_NAME for entry in Path(path).iterdir())


def is_run_folder(path) -> bool:
    """Whether `path` holds a minigan run: its config.json or its checkpoints/ folder."""
    path = Path(path)
    return (path / "config.json").is_file() or (path / "checkpoints").is_dir()


def clear_run_folder(path) -> None:
    """Delete an old run so that a new one starts clean in the same folder. Only a minigan
    run folder (or an empty one) is deleted: never a folder of other files."""
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise ConfigError(f"--out {path} is a file, not a run folder")
    if not has_contents(path):
        return
    if not is_run_folder(path):
        raise ConfigError(
            f"--out {path} is not empty and holds no minigan run (no config.json or "
            "checkpoints/), so --overwrite will not delete it; choose another folder"
        )
    claim_run_folder(path)  # never under a process that is writing there
    try:
        for entry in path.iterdir():  # all but the lock, which must stay the one file
            if entry.name == LOCK_NAME:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    finally:
        release_run_folder(path)
