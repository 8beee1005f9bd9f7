"""Fetching the full MNIST and Fashion-MNIST files, checksummed, written atomically.

`download("mnist", "data/mnist")` leaves the four official .gz files in the directory;
`load_dataset("data/mnist")` then reads them. A file already present with the right MD5
is not fetched again. A file is written under a temporary name and renamed only after
its checksum matched, so an interrupted or corrupt download never looks complete.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path


class DownloadError(RuntimeError):
    """A download failed (no network, unreachable mirror, wrong checksum); one-line reason."""


# MD5 checksums as published by torchvision (torchvision/datasets/mnist.py, MNIST and
# FashionMNIST `resources`); the Fashion-MNIST ones also match the files in the
# zalandoresearch/fashion-mnist repository.
FILES = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

# The public S3 mirror torchvision downloads MNIST from; Fashion-MNIST from the files
# committed to its GitHub repository (its README links them).
MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",),
    "fashion-mnist": (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}


def md5sum(path: str | os.PathLike) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # a checksum against corruption, not security
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, destination: Path, md5: str, timeout: float = 30.0) -> None:
    """Download url to destination, atomically, only if its MD5 is md5."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part",
                                       dir=destination.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
            except (urllib.error.URLError, OSError, ValueError) as error:
                reason = getattr(error, "reason", error)
                raise DownloadError(
                    f"cannot fetch {url} ({type(error).__name__}: {reason}); are you offline? "
                    f"You can also copy {destination.name} into {destination.parent} by hand"
                ) from None
        found = md5sum(partial)
        if found != md5:
            raise DownloadError(
                f"{url} has MD5 {found}, expected {md5}: the download is corrupt or the "
                "mirror serves a different file; nothing was written"
            )
        os.replace(partial, destination)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def download(name: str, directory: str | os.PathLike, mirrors: tuple[str, ...] | None = None,
             timeout: float = 30.0) -> Path:
    """Fetch the four official files of "mnist" or "fashion-mnist" into directory.

    mirrors: base URLs tried in turn (the official ones by default). Returns the directory,
    which load_dataset accepts. Raises DownloadError with a one-line reason on failure.
    """
    if name not in FILES:
        raise ValueError(f"download: unknown dataset {name!r}; expected one of {', '.join(FILES)}")
    directory = Path(directory)
    bases = MIRRORS[name] if mirrors is None else tuple(mirrors)
    for filename, md5 in FILES[name].items():
        target = directory / filename
        if target.exists() and md5sum(target) == md5:
            continue
        errors = []
        for base in bases:
            try:
                fetch(base.rstrip("/") + "/" + filename, target, md5, timeout)
                break
            except DownloadError as error:
                errors.append(str(error))
        else:
            raise DownloadError(f"download {name}: " + "; ".join(errors))
    return directory
