"""PyTorch's side of a benchmark, in a process of its own.

minigan sets OpenMP's spin count when its cpu kernels start Numba's threads
(minigan/_environment.py), and one process has one GNU OpenMP runtime: PyTorch imported
after that would run with minigan's setting, not its own (with OMP_WAIT_POLICY=PASSIVE,
MLP-2D 7.9 ms instead of 4.0, benchmarks/RESULTS.md). So
the benchmarks time PyTorch here, in a child started without the variables minigan set,
with PyTorch imported before anything else, and interleave its calls with minigan's.

Protocol, one JSON object per line: the parent sends {"module", "factory", "args"}; the
worker calls module.factory(torch, *args), which returns {name: callable}, and answers
{"names": [...]}. Then each {"run": name, "count": n} is answered with {"seconds": [...]},
the time of each of n calls, measured here (no pipe latency inside).
"""

import torch  # first: its OpenMP runtime reads the environment when it loads

import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402


def main() -> None:
    if "OMP_NUM_THREADS" in os.environ:  # the parent's thread count (benchmarks/common.py)
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    spec = json.loads(sys.stdin.readline())
    module = importlib.import_module(spec["module"])
    calls = getattr(module, spec["factory"])(torch, *spec["args"])
    print(json.dumps({"names": list(calls)}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        function = calls[request["run"]]
        seconds = []
        for _ in range(request["count"]):
            start = time.perf_counter()
            function()
            seconds.append(time.perf_counter() - start)
        print(json.dumps({"seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
