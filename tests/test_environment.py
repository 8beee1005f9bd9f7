"""minigan/_environment.py: the process settings minigan makes when it is imported first,
and the user's own values always winning. Each case runs in a fresh interpreter, since the
settings only matter (and are only made) before NumPy and Numba load their libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_REPORT = (
    "import json, os, minigan, minigan._environment as e; "
    "print(json.dumps({'env': {k: os.environ.get(k) for k in "
    "('GOMP_SPINCOUNT', 'OMP_WAIT_POLICY', 'OPENBLAS_THREAD_TIMEOUT', 'OPENBLAS_CORETYPE')}, "
    "'set_here': e.SET_HERE, 'zen4': e._is_amd_zen4()}))"
)


def _report(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT",
                         "OPENBLAS_CORETYPE")}
    env.update(overrides)
    done = subprocess.run([sys.executable, "-c", _REPORT], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def test_defaults_are_set_and_recorded():
    report = _report()
    assert report["env"]["GOMP_SPINCOUNT"] == "100000"
    assert report["env"]["OPENBLAS_THREAD_TIMEOUT"] == "4"
    assert report["set_here"]["GOMP_SPINCOUNT"] == "100000"
    # the BLAS kernel choice is made on Zen 4 only
    assert (report["env"]["OPENBLAS_CORETYPE"] == "Haswell") == report["zen4"]


@pytest.mark.parametrize("name, value", [("GOMP_SPINCOUNT", "0"),
                                         ("OPENBLAS_THREAD_TIMEOUT", "20"),
                                         ("OPENBLAS_CORETYPE", "SkylakeX")])
def test_a_value_the_user_set_is_kept(name, value):
    report = _report(**{name: value})
    assert report["env"][name] == value
    assert name not in report["set_here"]


def test_a_wait_policy_the_user_chose_is_not_overridden_by_a_spin_count():
    """GNU OpenMP would let GOMP_SPINCOUNT override OMP_WAIT_POLICY: none is set then."""
    report = _report(OMP_WAIT_POLICY="PASSIVE")
    assert report["env"]["OMP_WAIT_POLICY"] == "PASSIVE"
    assert report["env"]["GOMP_SPINCOUNT"] is None
    assert "GOMP_SPINCOUNT" not in report["set_here"]


def test_set_num_threads_limits_blas_and_numba():
    """minigan.set_num_threads(1) (the --threads option): one BLAS thread and one Numba
    thread afterwards; a bad count is refused with the value in the message."""
    code = (
        "import json, minigan, numba\n"
        "from threadpoolctl import threadpool_info\n"
        "minigan.set_num_threads(1)\n"
        "blas = [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']\n"
        "try:\n"
        "    minigan.set_num_threads(0)\n"
        "    refused = ''\n"
        "except ValueError as error:\n"
        "    refused = str(error)\n"
        "print(json.dumps({'blas': blas, 'numba': numba.get_num_threads(),\n"
        "                  'refused': refused}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    report = json.loads(done.stdout)
    assert report["blas"] and set(report["blas"]) == {1}
    assert report["numba"] == 1
    assert "expected a positive whole number of threads, got 0" in report["refused"]
