"""minigan/_environment.py: the process settings minigan makes when it is imported first,
and the user's own values always winning. Each case runs in a fresh interpreter, since the
settings only matter (and are only made) before NumPy and Numba load their libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_VARIABLES = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT",
              "OPENBLAS_CORETYPE")

# The settings after `import minigan` and after the cpu kernels started Numba's threads:
# what os.environ holds at each point, what minigan says it applied, NumPy's BLAS kernel
# family, and what a child process inherits.
_REPORT = (
    "import json, os, subprocess, sys\n"
    "import minigan, minigan._environment as e\n"
    "from threadpoolctl import threadpool_info\n"
    "names = " + repr(_VARIABLES) + "\n"
    "after_import = {k: os.environ.get(k) for k in names}\n"
    "import minigan.kernels.cpu\n"
    "after_kernels = {k: os.environ.get(k) for k in names}\n"
    "child = subprocess.run([sys.executable, '-c', 'import os, json; print(json.dumps('\n"
    "                        '{k: os.environ.get(k) for k in %r}))' % (names,)],\n"
    "                       capture_output=True, text=True, check=True).stdout\n"
    "blas = [p.get('architecture') for p in threadpool_info() if p['user_api'] == 'blas']\n"
    "import numba\n"
    "print(json.dumps({'after_import': after_import, 'after_kernels': after_kernels,\n"
    "                  'child': json.loads(child), 'set_here': e.SET_HERE,\n"
    "                  'zen4': e._is_amd_zen4(), 'blas': blas,\n"
    "                  'layer': numba.threading_layer(), 'tbb': e._load_tbb()}))\n"
)


def _report(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _VARIABLES}
    env.update(overrides)
    done = subprocess.run([sys.executable, "-c", _REPORT], env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_defaults_are_applied_recorded_and_not_left_in_the_environment():
    report = _report()
    assert report["set_here"]["OPENBLAS_THREAD_TIMEOUT"] == "4"
    # Numba's threads are TBB's where the tbb wheel is installed (a dependency on x86-64);
    # a spin count is set (and recorded) only for a GNU OpenMP pool
    assert report["layer"] == ("tbb" if report["tbb"] else "omp")
    if report["layer"] == "omp":
        assert report["set_here"]["GOMP_SPINCOUNT"] == "1000"
    else:
        assert "GOMP_SPINCOUNT" not in report["set_here"]
    # the BLAS kernel choice is made on Zen 4 only, and NumPy's OpenBLAS took it
    assert (report["set_here"].get("OPENBLAS_CORETYPE") == "Haswell") == report["zen4"]
    if report["zen4"]:
        assert report["blas"] == ["Haswell"]
    # read by the libraries as they loaded, then taken out again: nothing leaks into the
    # environment of libraries loaded later or of child processes
    for seen in ("after_import", "after_kernels", "child"):
        assert report[seen] == {name: None for name in _VARIABLES}, seen


@pytest.mark.parametrize("name, value", [("GOMP_SPINCOUNT", "0"),
                                         ("OPENBLAS_THREAD_TIMEOUT", "20"),
                                         ("OPENBLAS_CORETYPE", "SkylakeX")])
def test_a_value_the_user_set_is_kept(name, value):
    report = _report(**{name: value})
    for seen in ("after_import", "after_kernels", "child"):
        assert report[seen][name] == value, seen
    assert name not in report["set_here"]


def test_on_numbas_openmp_layer_its_threads_spin_briefly():
    """NUMBA_THREADING_LAYER=omp (the user's choice, or no TBB): GNU OpenMP's spin count
    is set while Numba's runtime loads, recorded, and not left in the environment."""
    report = _report(NUMBA_THREADING_LAYER="omp")
    assert report["layer"] == "omp"
    assert report["set_here"]["GOMP_SPINCOUNT"] == "1000"
    for seen in ("after_import", "after_kernels", "child"):
        assert report[seen]["GOMP_SPINCOUNT"] is None, seen


def test_minigan_loads_no_openmp_runtime_for_pytorch_to_share():
    """On TBB, a cpu step loads no GNU OpenMP runtime: PyTorch imported afterwards loads
    its own at its own settings (before, it shared the one minigan loaded, with minigan's
    1000-poll spin, and its small-op steps slowed down; benchmarks/RESULTS.md)."""
    code = (
        "import json, numba\n" + _CPU_STEP +
        "from threadpoolctl import threadpool_info\n"
        "print(json.dumps({'layer': numba.threading_layer(),\n"
        "                  'openmp': [p['filepath'] for p in threadpool_info()\n"
        "                             if p['user_api'] == 'openmp']}))\n"
    )
    report = _run(code)
    if report["layer"] != "tbb":
        pytest.skip(f"Numba runs on {report['layer']} here (no tbb wheel)")
    assert report["openmp"] == []


def test_a_wait_policy_the_user_chose_is_not_overridden_by_a_spin_count():
    """GNU OpenMP would let GOMP_SPINCOUNT override OMP_WAIT_POLICY: none is set then."""
    report = _report(OMP_WAIT_POLICY="PASSIVE")
    assert report["after_kernels"]["OMP_WAIT_POLICY"] == "PASSIVE"
    assert report["after_kernels"]["GOMP_SPINCOUNT"] is None
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


# One cpu training step of a linear layer whose products are big enough to run on Numba's
# threads (1024 x 256 x 256 multiply-adds: over blas.OWN_THREADS_MIN_MACS), after a call
# on one thread, so that Numba's thread pool starts inside minigan, as in a real run.
_CPU_STEP = (
    "import minigan, minigan.nn as nn\n"
    "layer = nn.Linear(256, 256).to('cpu')\n"
    "layer(minigan.randn(4, 256, device='cpu')).sum().backward()\n"
    "layer(minigan.randn(1024, 256, device='cpu')).sum().backward()\n"
)


def _run(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_minigan_and_a_cpu_step_keep_torchs_thread_count():
    """Numba starts its OpenMP threads with omp_set_num_threads, and with PyTorch loaded
    first that is PyTorch's OpenMP runtime: its thread count went from 1 back to 2.
    (PyTorch applies its own count again at its first get_num_threads call, so the user's
    check right after setting it is part of the case.)"""
    pytest.importorskip("torch")
    report = _run(
        "import json, torch\n"
        "torch.set_num_threads(1)\n"
        "assert torch.get_num_threads() == 1\n" + _CPU_STEP +
        "print(json.dumps({'torch': torch.get_num_threads()}))\n"
    )
    assert report["torch"] == 1


def test_a_cpu_step_keeps_the_blas_limits_the_user_set():
    """A BLAS thread limit set with threadpoolctl before minigan is imported still holds
    after a cpu step (the products set OpenBLAS's count to 1 while they run, then back)."""
    report = _run(
        "import json, numpy\n"
        "from threadpoolctl import threadpool_info, threadpool_limits\n"
        "threadpool_limits(1, user_api='blas')\n" + _CPU_STEP +
        "print(json.dumps({'blas': [p['num_threads'] for p in threadpool_info()\n"
        "                           if p['user_api'] == 'blas']}))\n"
    )
    assert report["blas"] and set(report["blas"]) == {1}


def test_tbb_is_not_loaded_for_a_layer_the_user_chose_without_it(monkeypatch):
    """A user's NUMBA_THREADING_LAYER that does not use TBB is left to Numba: minigan does
    not go looking for the tbb wheel then."""
    from minigan import _environment

    looked = []
    monkeypatch.setattr("importlib.metadata.files", lambda name: looked.append(name) or [])
    for layer in ("omp", "workqueue", "forksafe"):
        monkeypatch.setenv("NUMBA_THREADING_LAYER", layer)
        assert _environment._load_tbb() is False
    assert looked == []


def test_without_the_tbb_wheel_nothing_is_loaded_and_nothing_fails(monkeypatch):
    from importlib import metadata

    from minigan import _environment

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.delenv("NUMBA_THREADING_LAYER", raising=False)
    monkeypatch.setattr("importlib.metadata.files", missing)
    assert _environment._load_tbb() is False
    # a wheel without the library this platform's Numba asks for: not loaded either
    monkeypatch.setattr("importlib.metadata.files", lambda name: [])
    assert _environment._load_tbb() is False
