"""The benchmark scripts refuse a bad count or name by the option's name (argparse's exit
status 2 and a one-line message), instead of a traceback or a table of nan later."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from minigan.cli import at_least

ROOT = Path(__file__).resolve().parents[1]


def test_at_least_parses_and_refuses():
    parse = at_least(1)
    assert parse("3") == 3
    for bad, why in (("0", "positive whole number, got '0'"),
                     ("-2", "positive whole number, got '-2'"),
                     ("two", "positive whole number, got 'two'")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            parse(bad)
    assert at_least(0)("0") == 0
    with pytest.raises(argparse.ArgumentTypeError, match="whole number >= 0, got '-1'"):
        at_least(0)("-1")


@pytest.mark.parametrize("args, message", [
    (["benchmarks.train_step", "--repeats", "0"],
     "argument --repeats: expected a positive whole number"),
    (["benchmarks.train_step", "--devices", "torch"], "argument --devices: invalid choice"),
    (["benchmarks.ab", ".", ".", "--processes", "0"], "argument --processes"),
    (["benchmarks.startup", "--recipes", "nope"], "argument --recipes: invalid choice: 'nope'"),
    (["benchmarks.region_wake", "--gaps", "-5"], "argument --gaps: expected microseconds >= 0"),
    (["benchmarks.region_wake", "--calls", "0"], "argument --calls: expected a positive"),
])
def test_benchmark_scripts_refuse_bad_options(args, message):
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
