"""Data-parallel training (minigan/distributed.py): the pieces in one process, and whole runs
under `mpiexec -n 2` (tests/mpi_worker.py, the minigan command) compared with one process.

The MPI tests need mpi4py and an mpiexec that starts two ranks (`pip install -e ".[mpi]"`
brings both); without them they skip and say why. Every process runs one thread, so two
ranks fit CI's two cores.

Tolerances of the equivalence checks. Two processes at batch B and one at batch 2B compute
the same sums in a different order: each rank sums its B rows (times pixels), then the
all-reduce adds the two partial sums. Reordering a float32 sum of n terms changes it by at
most (n - 1) u sum|terms|, u = 2^-24 (Higham 2002, Accuracy and Stability of Numerical
Algorithms, section 4.2): a relative error below n u for terms of one sign. SGD's update
lr * g carries that relative error into each step, whose size is bounded by the parameter's
whole change |theta_K - theta_0| over the K steps; storing the parameter rounds it by at
most u |theta| per step. Hence, per tensor,
    |theta_2proc - theta_1proc| <= K u (max|theta| + n max|theta_K - theta_0|),
with n the largest number of terms one reduction adds (rows times pixels).
The checks use SGD: Adam divides each gradient component by its own running RMS, so a
component that is rounding noise in both runs (BatchNorm makes the loss flat along some
weight directions) becomes a +-lr step whose sign is the noise's: that measures Adam's
conditioning, not the data parallelism. A wrong reduction (per-rank BatchNorm in place of
SyncBatchNorm, checked below) misses this bound by orders of magnitude.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minigan import distributed, optim, tensor
from minigan.data import Loader
from minigan.random import Generator

HERE = Path(__file__).parent
WORKER = HERE / "mpi_worker.py"
UNIT_ROUNDOFF = 2.0**-24  # float32
TIMEOUT = 180  # seconds for one mpiexec run; a hang fails the test instead of the suite


# ----------------------------------------------------------------------------- launching

def _mpiexec() -> str | None:
    """The mpiexec beside this Python (the MPICH wheel installs it into the venv's bin),
    else one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _one_thread_env(**extra) -> dict:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMBA_NUM_THREADS"):
        env[name] = "1"
    env.update(extra)
    return env


def _mpi_problem() -> str | None:
    """Why two MPI ranks cannot be started here, or None when they can."""
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install -e '.[mpi]')"
    launcher = _mpiexec()
    if launcher is None:
        return "no mpiexec beside Python or on PATH (pip install -e '.[mpi]' brings MPICH's)"
    probe = "from mpi4py import MPI; print(f'<{MPI.COMM_WORLD.Get_size()}>')"
    try:
        done = subprocess.run([launcher, "-n", "2", sys.executable, "-c", probe],
                              capture_output=True, text=True, timeout=60, env=_one_thread_env(),
                              stdin=subprocess.DEVNULL)  # mpiexec forwards stdin; CI has none
    except subprocess.TimeoutExpired:
        return f"{launcher} -n 2 did not finish a trivial program within 60 s"
    if done.returncode != 0 or done.stdout.count("<2>") != 2:  # the ranks' lines may mix
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{launcher} -n 2 could not start two MPI ranks: {last}"
    return None


@pytest.fixture(scope="module")
def mpiexec():
    problem = _mpi_problem()
    if problem:
        pytest.skip(problem)
    return _mpiexec()


def _run(command: list[str], cwd=None, expect_ok: bool = True) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                              env=_one_thread_env(), cwd=cwd, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as stuck:
        raise AssertionError(f"{' '.join(command)} still ran after {TIMEOUT} s") from stuck
    if expect_ok:
        assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return done


def _worker(mpiexec: str | None, processes: int, out: Path, *args: str):
    prefix = [mpiexec, "-n", str(processes)] if mpiexec else []
    return _run(prefix + [sys.executable, str(WORKER), "--out", str(out), *args])


def _assert_same_training(one: dict, two: dict, steps: int, terms: int) -> None:
    """two's final parameters and buffers equal one's within the bound of the docstring."""
    for key in one:
        if key.startswith("initial.") or key == "loss_d" or one[key].dtype.kind != "f":
            continue
        moved = np.abs(one[key] - one["initial." + key]).max()
        tolerance = steps * UNIT_ROUNDOFF * (np.abs(one[key]).max() + terms * moved)
        error = np.abs(one[key] - two[key]).max()
        assert error <= tolerance, f"{key}: differs by {error:.3g}, bound {tolerance:.3g}"


# ----------------------------------------------------------------------------- one process

def test_world_size_and_rank_come_from_the_launchers_variables(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMI_RANK",
                 "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.launched_world_size() == 1 and distributed.launched_rank() == 0
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "3")
    assert distributed.launched_world_size() == 4 and distributed.launched_rank() == 3
    monkeypatch.setenv("PMI_SIZE", "2")
    assert distributed.launched_world_size() == 2


def test_one_process_trains_without_importing_mpi4py(tmp_path):
    done = _worker(None, 1, tmp_path / "one.npz", "--steps", "2")
    assert "world size 1, rank 0, mpi4py imported: False" in done.stdout


def test_one_process_group_changes_nothing():
    group = distributed.ProcessGroup()
    values = np.arange(4, dtype=np.float32)
    assert group.all_reduce(values, average=True) is values
    assert values.tolist() == [0, 1, 2, 3]
    generator = Generator(0)
    assert group.shard_rows(generator) is generator
    record = {"step": 3, "loss_d": 0.5}
    assert group.average_record(record) is record


def test_loader_shards_are_disjoint_and_make_up_the_whole_batches():
    x = np.arange(40)
    whole = Loader(x, 8, seed=5)
    shards = [Loader(x, 8, seed=5, rank=r, world_size=2) for r in range(2)]
    seen = []
    for _ in range(7):  # past the end of the first epoch (5 batches)
        batch = whole.next_batch()
        parts = [s.next_batch() for s in shards]
        assert np.array_equal(np.concatenate(parts), batch)
        seen.append(parts)
    first_epoch = [set(p[r].tolist()) for r in range(2) for p in [seen[i] for i in range(5)]]
    assert set().union(*first_epoch[:5]).isdisjoint(set().union(*first_epoch[5:]))
    assert shards[0].state_dict() == shards[1].state_dict() == whole.state_dict()


def test_loader_refuses_a_batch_that_does_not_split():
    with pytest.raises(ValueError, match="split evenly over 3 processes"):
        Loader(np.arange(40), 8, world_size=3, rank=0)


class _FakeRanks:
    """What ShardedRows reads of a group: its rank and world size."""

    def __init__(self, rank, world_size):
        self.rank, self.world_size = rank, world_size


def test_sharded_draws_are_the_rows_of_one_whole_draw():
    whole = Generator(3).normal((6, 2))
    generators = [Generator(3), Generator(3)]
    parts = [distributed.ShardedRows(g, _FakeRanks(r, 2)).normal((3, 2))
             for r, g in enumerate(generators)]
    assert np.array_equal(np.concatenate(parts), whole)
    assert generators[0].get_state() == generators[1].get_state()


def test_flat_grads_views_leave_the_update_unchanged():
    from minigan import nn

    def model_and_step(gather: bool):
        layer = nn.Linear(3, 2, generator=Generator(1))
        opt = optim.Adam(layer.parameters(), lr=0.1)
        layer(tensor(np.full((4, 3), 0.5, dtype=np.float32))).sum().backward()
        if gather:
            (flat,) = opt.flat_grads()
            assert flat.size == 8 and layer.weight.grad.array.base is flat
        opt.step()
        return layer.weight.array.copy()

    assert np.array_equal(model_and_step(False), model_and_step(True))


def test_sync_batch_norm_is_batch_norm_in_one_process():
    from minigan import nn

    x = tensor(Generator(2).normal((4, 3, 5, 5)) * 3 + 1)
    plain = nn.BatchNorm2d(3)
    model = nn.Sequential(nn.Conv2d(3, 3, 1, generator=Generator(0)), nn.BatchNorm2d(3),
                          nn.ReLU())
    weight = model[1].weight
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert type(converted[1]) is nn.SyncBatchNorm and converted[1].weight is weight
    assert list(converted.state_dict()) == [k for k in model.state_dict()]
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm2d(3))
    assert np.array_equal(sync(x).numpy(), plain(x).numpy())
    assert np.array_equal(sync.running_var.numpy(), plain.running_var.numpy())


# ----------------------------------------------------------------------------- two processes

def test_two_processes_at_batch_b_train_like_one_at_2b(mpiexec, tmp_path):
    """MLP GAN, no BatchNorm: 2 ranks x 8 rows against 1 process x 16 rows, 4 SGD steps."""
    args = ("--recipe", "mlp-ring8", "--set", "hidden=16", "--set", "layers=2",
            "--batch-size", "16", "--steps", "4", "--sgd", "0.05")
    done = _worker(mpiexec, 2, tmp_path / "two.npz", *args)
    assert "world size 2, rank 1" in done.stdout
    _worker(None, 1, tmp_path / "one.npz", *args)
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    one, two = {k: one[k] for k in one.files}, {k: two[k] for k in two.files}
    _assert_same_training(one, two, steps=4, terms=16)
    # the logged losses are the whole batch's (the mean of the ranks' means)
    np.testing.assert_allclose(two["loss_d"], one["loss_d"], rtol=16 * UNIT_ROUNDOFF * 4)


def test_sync_batch_norm_makes_two_processes_train_a_dcgan_like_one(mpiexec, tmp_path):
    """DCGAN-28 (BatchNorm in G and D): 2 ranks x 4 rows with SyncBatchNorm against one
    process x 8 rows with BatchNorm, 2 SGD steps; per-rank BatchNorm misses the bound."""
    args = ("--recipe", "dcgan-mnist", "--batch-size", "8", "--steps", "2", "--sgd", "0.01")
    _worker(None, 1, tmp_path / "one.npz", *args)
    _worker(mpiexec, 2, tmp_path / "sync.npz", *args, "--set", "sync_batch_norm=true")
    _worker(mpiexec, 2, tmp_path / "per_rank.npz", *args)
    one, sync, per_rank = ({k: f[k] for k in f.files} for f in
                           (np.load(tmp_path / n) for n in ("one.npz", "sync.npz",
                                                            "per_rank.npz")))
    terms = 8 * 28 * 28  # the largest reduction: rows times pixels of the last layer
    _assert_same_training(one, sync, steps=2, terms=terms)
    with pytest.raises(AssertionError, match="differs by"):
        _assert_same_training(one, per_rank, steps=2, terms=terms)


def test_a_failing_rank_stops_every_rank_with_its_message(mpiexec, tmp_path):
    done = _run([mpiexec, "-n", "2", sys.executable, str(WORKER), "--fail-on-rank", "1",
                 "--steps", "50"], expect_ok=False)
    assert done.returncode != 0
    assert "rank 1 fails on purpose" in done.stderr
    assert "world size" not in done.stdout  # rank 0 did not go on to finish its run


def test_a_bad_batch_under_mpiexec_is_a_one_line_error(mpiexec, tmp_path):
    done = _run([mpiexec, "-n", "2", sys.executable, "-m", "minigan.cli", "train",
                 "--recipe", "mlp-ring8", "--batch-size", "15", "--steps", "1", "--quiet",
                 "--out", str(tmp_path / "run")], expect_ok=False)
    assert done.returncode == 2, done.stderr
    assert "batch_size 15 does not split over 2 processes" in done.stderr
    assert "Traceback" not in done.stderr


# ----------------------------------------------------------------------------- resuming

# A constant learning rate: the recipe's linear decay is spread over the run's total steps,
# so a run first told to stop at step 2 would decay differently from a straight 4-step run.
_TINY_RUN = ("--recipe", "mlp-ring8", "--set", "hidden=16", "--set", "layers=2",
             "--set", "lr_schedule=constant", "--batch-size", "16", "--quiet", "--threads", "1")


def _train(mpiexec: str | None, processes: int, *args: str):
    prefix = [mpiexec, "-n", str(processes)] if processes > 1 else []
    return _run(prefix + [sys.executable, "-m", "minigan.cli", "train", *args])


def _final_state(run: Path) -> dict:
    from minigan.gan.trainer import latest_checkpoint
    from minigan.io import load_checkpoint

    state = load_checkpoint(latest_checkpoint(run))
    values = {f"{m}.{k}": np.asarray(v) for m in ("generator", "discriminator")
              for k, v in state[m].items()}
    return state, values


@pytest.fixture(scope="module")
def straight_run(mpiexec, tmp_path_factory) -> Path:
    """The reference: 4 uninterrupted steps on 2 processes."""
    run = tmp_path_factory.mktemp("straight") / "run"
    _train(mpiexec, 2, *_TINY_RUN, "--steps", "4", "--out", str(run))
    return run


@pytest.mark.parametrize("before, after", [(2, 1), (1, 2)])
def test_a_run_resumes_on_another_number_of_processes(mpiexec, straight_run, tmp_path,
                                                      before, after):
    """2 steps on `before` processes, resumed for 2 more on `after`, against 4 steps on 2.
    The checkpoint's loader and random states are those of a one-process run: nothing in
    it depends on the rank or the number of ranks."""
    split = tmp_path / "split"
    _train(mpiexec, before, *_TINY_RUN, "--steps", "2", "--out", str(split))
    halfway, _ = _final_state(split)
    assert halfway["step"] == 2 and not list(split.glob("*rank*"))
    _train(mpiexec, after, "--resume", str(split), "--steps", "4", "--quiet", "--threads", "1")
    resumed, resumed_values = _final_state(split)
    reference, reference_values = _final_state(straight_run)
    assert resumed["step"] == 4
    assert resumed["loader"] == reference["loader"]
    assert resumed["random"] == reference["random"]
    # Adam here (the recipe's optimizer) on a model without BatchNorm: the two runs differ
    # only by the reordered sums of the docstring's bound (16 rows), which they meet.
    initial = _untrained_state()
    for key, value in reference_values.items():
        moved = np.abs(value - initial[key]).max()
        tolerance = 4 * UNIT_ROUNDOFF * (np.abs(value).max() + 16 * moved)
        error = np.abs(resumed_values[key] - value).max()
        assert error <= tolerance, f"{key}: differs by {error:.3g}, bound {tolerance:.3g}"


def _untrained_state() -> dict:
    """The parameters a run of _TINY_RUN starts from (its seed fixes them)."""
    from minigan.gan import Trainer, recipe

    trainer = Trainer(recipe("mlp-ring8", hidden=16, layers=2, batch_size=16), out=None,
                      quiet=True)
    return {f"{m}.{k}": np.asarray(v) for m, module in (("generator", trainer.generator),
                                                         ("discriminator", trainer.discriminator))
            for k, v in module.state_dict().items()}


# ----------------------------------------------------------------------------- reporting, GPU

def test_info_says_whether_mpi_is_usable_and_the_world_size(capsys, monkeypatch):
    from minigan.cli import main

    # MVAPICH2's variable: read by minigan, ignored by the MPICH this process may load
    monkeypatch.setenv("MV2_COMM_WORLD_SIZE", "3")
    assert main(["info"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("MPI:")]
    assert len(line) == 1 and line[0].endswith("world size 3")
    usable = _mpi_problem() is None
    assert ("data-parallel training available" in line[0]) == usable, line[0]


def _two_gpus_problem() -> str | None:
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CuPy missing, or no driver
        return f"the NCCL path needs CuPy and GPUs ({type(error).__name__}); untested here"
    return None if count >= 2 else f"the NCCL path needs 2 GPUs, found {count}"


def test_nccl_group_averages_gpu_arrays(mpiexec, tmp_path):
    problem = _two_gpus_problem()
    if problem:
        pytest.skip(problem)
    code = ("import cupy; from minigan import distributed; g = distributed.init('cuda'); "
            "a = cupy.full(5, g.rank + 1.0, dtype=cupy.float32); g.all_reduce(a, average=True); "
            "assert g.backend == 'nccl' and float(a[0]) == 1.5, a; print('<ok>')")
    done = _run([mpiexec, "-n", "2", sys.executable, "-c", code])
    assert done.stdout.count("<ok>") == 2


def test_ctrl_c_on_mpiexec_stops_every_rank_after_one_step_with_a_checkpoint(mpiexec, tmp_path):
    """mpiexec passes SIGINT to both ranks, which notice it at different moments; they
    agree on the step to stop after, rank 0 checkpoints it, and the run resumes elsewhere."""
    import signal
    import time

    from minigan.gan.trainer import read_metrics

    run = tmp_path / "run"
    command = [mpiexec, "-n", "2", sys.executable, "-m", "minigan.cli", "train", *_TINY_RUN,
               "--set", "log_every=1", "--steps", "100000", "--checkpoint-every", "100000",
               "--sample-every", "100000", "--out", str(run)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True, env=_one_thread_env())
    try:
        deadline = time.monotonic() + TIMEOUT
        while not read_metrics(run / "metrics.jsonl") and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert stderr.count("stopped by SIGINT after step") == 1, stderr  # rank 0 reports
    state, _ = _final_state(run)
    step = state["step"]
    assert step >= 1 and read_metrics(run / "metrics.jsonl")[-1]["step"] == step
    _train(mpiexec, 1, "--resume", str(run), "--steps", str(step + 1), "--quiet",
           "--threads", "1")
    assert _final_state(run)[0]["step"] == step + 1
