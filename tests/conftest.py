"""Test set-up: hypothesis profiles and markers.

Profiles: `ci` (the default: bounded examples, no deadline, since Numba compiles on first
call) and `dev` (more examples). Select with HYPOTHESIS_PROFILE=dev.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

# Without a real GPU the Numba CUDA kernels run on the CUDA simulator (slow; tiny shapes).
# It must be chosen before numba.cuda is first imported, hence here.
if "NUMBA_ENABLE_CUDASIM" not in os.environ:
    from minigan.backend import cuda_problem

    if cuda_problem():
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a real NVIDIA GPU with CuPy")
    config.addinivalue_line("markers", "slow: an end-to-end run of more than a few seconds")


def pytest_collection_modifyitems(config, items):
    from minigan.backend import cuda_problem

    problem = cuda_problem()
    if problem:
        skip = pytest.mark.skip(reason=f"needs a real GPU: {problem}")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
