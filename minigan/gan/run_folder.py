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
    if not any(path.iterdir()):
        return
    if not is_run_folder(path):
        raise ConfigError(
            f"--out {path} is not empty and holds no minigan run (no config.json or "
            "checkpoints/), so --overwrite will not delete it; choose another folder"
        )
    shutil.rmtree(path)
