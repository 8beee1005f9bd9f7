"""minigan/compilation.py: the one-time notice while Numba compiles, the compile seconds,
and a progress bar whose rate leaves them out."""

from __future__ import annotations

import io

import pytest

from minigan import compilation
from minigan.compilation import NOTICE, CompileWatch, leave_out_of_rate


@pytest.fixture
def fresh_process(monkeypatch):
    """As in a new process: the notice not yet given."""
    monkeypatch.setattr(compilation, "_announced", [])


def _new_function():
    """A Numba function never compiled before (a new closure each call: no cache)."""
    numba = pytest.importorskip("numba")

    @numba.njit
    def add_one(x):
        return x + 1

    return add_one


def test_a_compilation_is_announced_once_and_timed(fresh_process):
    said = []
    first, second = _new_function(), _new_function()
    with CompileWatch(said.append) as watch:
        assert first(1) == 2
        after_first = watch.new_seconds()
        assert second(1) == 2
    assert said == [NOTICE]  # two compilations, one notice
    assert after_first > 0 and watch.new_seconds() > 0
    assert watch.seconds >= after_first


def test_nothing_compiled_says_nothing(fresh_process):
    function = _new_function()
    function(1)  # compiled before the watch starts
    said = []
    with CompileWatch(said.append) as watch:
        assert function(2) == 3
    assert said == [] and watch.seconds == 0


def test_compilations_after_the_watch_are_not_counted(fresh_process):
    said = []
    with CompileWatch(said.append) as watch:
        pass
    _new_function()(1)
    assert said == [] and watch.seconds == 0


def test_the_bar_leaves_compile_seconds_out_of_its_rate():
    tqdm = pytest.importorskip("tqdm").tqdm
    bar = tqdm(total=100, file=io.StringIO(), mininterval=0)
    bar.start_t -= 30.0  # as if the first step had waited 30 s for the compiler
    bar.last_print_t -= 30.0
    leave_out_of_rate(bar, 29.9)
    bar.update(1)
    # one step in ~0.1 s: 99 to go at ~10 steps a second, not at one per 30 s
    elapsed = bar.format_dict["elapsed"]
    assert 0.09 <= elapsed < 1.0
    bar.close()


def test_training_says_when_it_compiles_and_its_bar_leaves_that_out(fresh_process, capsys,
                                                                   monkeypatch):
    """Trainer.fit: the notice on stderr (once, when a step compiles); the progress bar
    starts after the first step (its one-time costs stay out of the rate), and later
    compile seconds are taken off its clock."""
    from minigan.gan import Trainer, recipe
    from minigan.gan import trainer as trainer_module

    shifted = []
    monkeypatch.setattr(trainer_module, "leave_out_of_rate",
                        lambda bar, seconds: shifted.append(seconds))
    trainer = Trainer(recipe("mlp-ring8", steps=3, batch_size=16, log_every=1),
                      device="numpy", quiet=False)
    step = trainer.step
    compiles = {1: _new_function(), 3: _new_function()}  # before steps 1 and 3

    def step_that_compiles():
        function = compiles.pop(trainer.step_count + 1, None)
        if function is not None:
            function(1)
        return step()

    monkeypatch.setattr(trainer, "step", step_that_compiles)
    trainer.fit()
    err = capsys.readouterr().err
    assert err.count(NOTICE) == 1
    assert "1/3" in err and "0/3" not in err  # the bar's first count is after step 1
    assert len(shifted) == 2 and shifted[0] == 0.0 and shifted[1] > 0  # steps 2 and 3
