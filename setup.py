"""minigan: a minimal, from-scratch GAN engine.

The one place for the package's metadata and layout; pyproject.toml only names the build
system.
"""
import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent


def long_description() -> str:
    """README.md without its pictures: their paths are relative to the repository, and a
    package index page shows the text without the repository's files."""
    text = (HERE / "README.md").read_text(encoding="utf-8")
    return re.sub(r"^!\[[^\]]*\]\((?!https?://)[^)]*\)\n\n?", "", text, flags=re.MULTILINE)


setup(
    name="minigan",
    version="0.1.0",
    description="A minimal GAN engine from scratch: tensors, autograd with gradients of "
    "gradients, NumPy/Numba/CUDA kernels, GAN objectives and a trainer.",
    long_description=long_description(),
    long_description_content_type="text/markdown",
    author="minigan contributors",
    license="MIT",
    license_files=["LICENSE"],
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: OS Independent",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    python_requires=">=3.10",
    packages=[
        "minigan",
        "minigan.nn",
        "minigan.optim",
        "minigan.functional",
        "minigan.gan",
        "minigan.data",
        "minigan.metrics",
        "minigan.io",
        "minigan.utils",
        "minigan.kernels",
        "minigan.kernels.reference",
        "minigan.kernels.cpu",
        "minigan.kernels.cuda",
    ],
    # The repository folder kernels/ is the subpackage minigan.kernels: a top-level
    # package named "kernels" would collide with an unrelated package on PyPI.
    package_dir={"minigan.kernels": "kernels"},
    package_data={"minigan.data": ["*.npz", "LICENSE-DATA.md"], "minigan.metrics": ["*.npz"]},
    install_requires=[
        "numpy>=1.24",
        "numba>=0.58",
        "tqdm>=4.60",
        "pillow>=9.0",
        "threadpoolctl>=3.0",
        "safetensors>=0.4",  # mg.save / mg.load and minigan export (weights PyTorch reads)
        "tomli>=1.1; python_version < '3.11'",
        # Intel TBB for Numba's threads (minigan/_environment.py): a pool of minigan's own,
        # apart from the GNU OpenMP runtime PyTorch uses in the same process. Wheels exist
        # for x86-64 Linux and Windows; elsewhere Numba runs on OpenMP.
        "tbb>=2021.6; (sys_platform == 'linux' or sys_platform == 'win32')"
        " and (platform_machine == 'x86_64' or platform_machine == 'AMD64')",
    ],
    extras_require={
        "cuda": ["cupy-cuda12x"],
        "test": ["pytest>=7", "hypothesis>=6.80"],
        # PyTorch, the outside reference of the side-by-side timings. The scripts that use
        # it live in the repository's benchmarks/ folder and are not installed with the
        # package: install this extra in a clone (pip install -e ".[bench]"). The installed
        # `minigan bench` needs no extra.
        "bench": ["torch"],
        # Data-parallel training (minigan/distributed.py): mpi4py and MPICH as PyPI wheels,
        # no system MPI. MPICH rather than Open MPI: its mpiexec runs as root and starts more
        # ranks than cores without extra flags (Open MPI needs --allow-run-as-root and
        # --oversubscribe), which is how CI and small machines run it; mpi4py's wheels load
        # either. The wheel puts mpiexec into the environment's bin/.
        "mpi": ["mpi4py>=4.1", "mpich>=5.0"],
    },
    entry_points={"console_scripts": ["minigan=minigan.cli:main"]},
)
