"""The package's build description: what `pip install .` and an index page see."""

import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib


@pytest.fixture(scope="module")
def metadata():
    """The keyword arguments setup.py gives setuptools.setup, without building anything."""
    import setuptools

    captured = {}
    original = setuptools.setup
    setuptools.setup = lambda **kwargs: captured.update(kwargs)
    try:
        sys.path.insert(0, str(ROOT))
        runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup = original
        sys.path.remove(str(ROOT))
    return captured


def test_pyproject_names_the_build_system_only():
    document = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(document) == {"build-system"}  # the metadata stays in setup.py, in one place
    assert document["build-system"]["build-backend"] == "setuptools.build_meta"


def test_metadata_has_a_licence_authors_and_a_self_contained_description(metadata):
    assert metadata["license"] == "MIT" and "MIT License" in (ROOT / "LICENSE").read_text()
    assert metadata["author"] == "minigan contributors"
    description = metadata["long_description"]
    assert "# minigan" in description and "minigan train" in description
    assert "![" not in description  # README's pictures are repository paths


def test_extras_say_what_they_are_for(metadata):
    extras = metadata["extras_require"]
    assert {"cuda", "test", "bench"} <= set(extras)
    # the benchmark scripts are repository-only, and the README says so
    assert "benchmarks" not in " ".join(metadata["packages"])
    assert "not installed with the package" in (ROOT / "README.md").read_text()


def test_the_kernels_folder_imported_by_its_own_name_is_refused_in_one_line():
    """From the repository root `import kernels.cpu` would load the kernel files a second
    time under another module name, and Numba's cache (keyed by file) would then hold code
    that minigan's own import cannot load. It is refused at once, naming the right import."""
    import subprocess

    done = subprocess.run([sys.executable, "-c", "import kernels.cpu"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "ImportError: the kernels are the package minigan.kernels, not 'kernels'" \
        in done.stderr
