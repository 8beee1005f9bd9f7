"""Data-parallel training over MPI: one model, N processes, one all-reduce per optimizer step.

How data parallelism works (PyTorch's DistributedDataParallel, Horovod)
------------------------------------------------------------------------
N copies of the same program run at once, one per *rank* (0 .. N-1), started by a launcher
such as `mpiexec -n N`. Each rank holds a whole copy of the model and of its optimizer.

1. At the start rank 0 *broadcasts* its parameters and buffers, so every copy is the same.
2. Each step, the batch of the step (B rows) is split: rank r takes rows r*B/N .. (r+1)*B/N.
   Every rank runs forward and backward on its rows alone and gets the gradient of the mean
   loss over *its* rows.
3. The gradient of the mean loss over all B rows is the mean of those N gradients. One
   collective, *all-reduce* (sum over the ranks, the result delivered to every rank),
   followed by a division by N, gives every rank that same gradient.
4. Every rank applies the same optimizer update to the same parameters with the same
   gradient, so the copies stay equal without ever sending a parameter again.

So the only traffic of a step is one all-reduce of the gradients: P numbers for a model of
P parameters. minigan's optimizers already keep all gradients of a parameter group in one
flat array (optim.py), so that is one collective call per optimizer, not one per layer.
DDP and Horovod do the same, in buckets of a few MB overlapped with the backward pass;
minigan reduces after backward, which is simpler to read and costs the overlap.

How long an all-reduce takes: the usual ring algorithm sends each rank's array in N
pieces around a ring of the N ranks, twice (once to sum, once to spread the sums), so each
rank sends and receives 2 (N - 1) / N * bytes, whatever N, in 2 (N - 1) latency-bound
hops. The bytes term stays flat as N grows while each rank's share of the batch, and so
its compute, shrinks: data parallelism stops paying when the all-reduce takes as long as
the compute (benchmarks/RESULTS.md works this out for dcgan-mnist).

What is not the same as one process at the whole batch: BatchNorm. In training it
normalises with the statistics of the batch it sees, which here is the rank's B/N rows.
That is the default, as in DDP; nn.SyncBatchNorm all-reduces the per-channel sums and sums
of squares instead, so every rank normalises with the whole batch's statistics (and its
backward all-reduces their gradients): then N ranks compute what one process would.

In minigan
----------
`init(device)` returns the process group the trainer uses. One process (no launcher, or
`mpiexec -n 1`): a ProcessGroup whose collectives do nothing, and mpi4py is never imported
(the world size is read from the launcher's environment variables first). Several: an
MPIGroup over mpi4py, or, for device "cuda", an NCCLGroup that reduces GPU arrays with
NCCL through cupy.cuda.nccl. Besides the collectives (all_reduce, broadcast, barrier) a
group offers the few steps the trainer takes (broadcast_parameters, average_gradients,
average_record, sharded random draws). The data loader's sharding is in data/loader.py.
Rank 0 alone writes the run folder; everything a checkpoint holds is the same on every
rank, so a run resumes on any number of processes that divides its batch.
A rank that fails prints its error and calls MPI_Abort, which stops every rank. Ctrl-C
reaches every rank (mpiexec passes it on) at a different moment of its step, so after each
step the ranks agree, in one tiny all-reduce, whether any was signalled: all stop after
the same step, and rank 0 checkpoints it.

Layering: this module imports only numpy and autograd (mpi4py and CuPy lazily), so
nn.SyncBatchNorm and the trainer can both use it.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

import numpy as np

from .autograd import Function, Tensor

# Variables the launchers set in each process they start, read before any MPI import: MPICH's
# and Intel MPI's Hydra (and Slurm's PMI-2) set PMI_SIZE / PMI_RANK, Open MPI sets
# OMPI_COMM_WORLD_SIZE / _RANK, MVAPICH2 MV2_COMM_WORLD_SIZE / _RANK.
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
_LOCAL_RANK_VARIABLES = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK",
                         "MV2_COMM_WORLD_LOCAL_RANK")


def _first_number(names: tuple, default: int) -> int:
    for name in names:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return default


def launched_world_size() -> int:
    """The number of processes the MPI launcher started, from its environment variables
    (1 when not started by one). Reading it imports nothing."""
    return _first_number(_SIZE_VARIABLES, 1)


def launched_rank() -> int:
    """This process's rank as the launcher set it (0 when not started by one)."""
    return _first_number(_RANK_VARIABLES, 0)


def _local_rank() -> int:
    """This process's index among the ranks on its own machine (picks its GPU)."""
    return _first_number(_LOCAL_RANK_VARIABLES, 0)


class ProcessGroup:
    """The group of one process: each collective leaves its array as it is. Subclasses
    replace the four collectives; the trainer's steps below are built on them."""

    backend = "none"
    rank = 0
    world_size = 1
    stopping_together = False  # set when all ranks agreed to stop on a signal

    # ---- the collectives
    def all_reduce(self, array, average: bool = False, op: str = "sum"):
        """Sum `array` (a contiguous NumPy or CuPy array) over the ranks, in place, then
        divide by the world size if `average` (op="max": the largest value instead); every
        rank ends with the same values."""
        return array

    def broadcast(self, array, src: int = 0):
        """Overwrite `array`, in place, with rank `src`'s."""
        return array

    def barrier(self) -> None:
        """Return only when every rank has called it."""

    def abort(self, code: int = 1) -> None:
        """Stop every rank with exit status `code`."""
        raise SystemExit(code)

    # ---- what the trainer does with them
    def broadcast_parameters(self, *modules) -> None:
        """Make every rank's parameters and buffers rank 0's (at the start, step 1 above)."""
        if self.world_size == 1:
            return
        for module in modules:
            for t in list(module.parameters()) + list(module.buffers()):
                self.broadcast(t.array)

    def average_gradients(self, optimizer) -> None:
        """Replace each parameter's .grad by the mean of all ranks' (step 3 above): one
        all-reduce of each flat gradient array of the optimizer (one per parameter group
        and dtype, so usually one)."""
        if self.world_size == 1:
            return
        for flat in optimizer.flat_grads():
            self.all_reduce(flat, average=True)

    def average_record(self, record: dict, modules=()) -> dict:
        """A step's logged numbers averaged over the ranks (the losses of the whole batch,
        as one process would log them), and the float buffers of `modules` (BatchNorm's
        running statistics) averaged in the same all-reduce, so that every rank, and so the
        checkpoint rank 0 writes, holds the same."""
        if self.world_size == 1:
            return record
        keys = sorted(k for k, v in record.items() if isinstance(v, float))
        buffers = [b.array for m in modules for b in m.buffers() if b.array.dtype.kind == "f"]
        sizes = [b.size for b in buffers]
        values = np.concatenate([np.array([record[k] for k in keys], dtype=np.float64)]
                                + [np.asarray(_to_host(b), dtype=np.float64).ravel()
                                   for b in buffers])
        self.all_reduce(values, average=True)
        start = len(keys)
        for b, size in zip(buffers, sizes):
            b[...] = _like(b, values[start:start + size].reshape(b.shape))
            start += size
        return {**record, **{k: float(values[i]) for i, k in enumerate(keys)}}

    def agree_on_signal(self, signum: int | None) -> int | None:
        """The stop signal (SIGINT, SIGTERM) any rank has received, or None: one small
        all-reduce, made by every rank after every step, so that all ranks stop after the
        same step and rank 0 can checkpoint it. mpiexec passes Ctrl-C to every rank, but
        each notices it at its own moment."""
        if self.world_size == 1:
            return signum
        flag = np.array([signum or 0], dtype=np.float64)
        self.all_reduce(flag, op="max")
        self.stopping_together = flag[0] > 0
        return int(flag[0]) or None

    def shard_rows(self, generator):
        """`generator` for the random draws of a batch split over the ranks (see
        ShardedRows); the generator itself for one process."""
        return generator if self.world_size == 1 else ShardedRows(generator, self)


class MPIGroup(ProcessGroup):
    """All processes started by mpiexec (MPI_COMM_WORLD), through mpi4py."""

    backend = "mpi"

    def __init__(self):
        from mpi4py import MPI  # here, not at the top: one process never loads MPI

        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.world_size = self.comm.Get_size()

    def all_reduce(self, array, average: bool = False, op: str = "sum"):
        self.comm.Allreduce(self.MPI.IN_PLACE, array,
                            op=self.MPI.MAX if op == "max" else self.MPI.SUM)
        if average:
            array /= self.world_size
        return array

    def broadcast(self, array, src: int = 0):
        self.comm.Bcast(array, root=src)
        return array

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        # MPI_Abort makes the launcher kill every rank at once, and output it has not yet
        # forwarded from this rank is lost with it: give it a moment to pass the message on.
        time.sleep(0.5)
        self.comm.Abort(code)


class NCCLGroup(MPIGroup):
    """GPU arrays reduced with NCCL (cupy.cuda.nccl), host arrays with MPI, which also
    hands NCCL's id from rank 0 to the others. Each rank uses GPU (local rank mod GPUs).

    Untested: written without a GPU at hand (the CI machines have none); the MPI path
    beside it is what the test suite exercises. tests/test_distributed.py runs a check of it
    when CuPy and a GPU are present.
    """

    backend = "nccl"

    def __init__(self):
        super().__init__()
        import cupy
        from cupy.cuda import nccl

        cupy.cuda.Device(_local_rank() % cupy.cuda.runtime.getDeviceCount()).use()
        self.cupy, self.nccl = cupy, nccl
        unique_id = nccl.get_unique_id() if self.rank == 0 else None
        unique_id = self.comm.bcast(unique_id, root=0)
        self.communicator = nccl.NcclCommunicator(self.world_size, unique_id, self.rank)
        self.dtypes = {np.dtype(np.float32): nccl.NCCL_FLOAT32,
                       np.dtype(np.float64): nccl.NCCL_FLOAT64,
                       np.dtype(np.int64): nccl.NCCL_INT64}

    def _on_gpu(self, array) -> bool:
        return isinstance(array, self.cupy.ndarray)

    def all_reduce(self, array, average: bool = False, op: str = "sum"):
        if not self._on_gpu(array):
            return super().all_reduce(array, average, op)
        stream = self.cupy.cuda.get_current_stream()
        self.communicator.allReduce(array.data.ptr, array.data.ptr, array.size,
                                    self.dtypes[array.dtype],
                                    self.nccl.NCCL_MAX if op == "max" else self.nccl.NCCL_SUM,
                                    stream.ptr)
        if average:
            array /= self.world_size
        stream.synchronize()
        return array

    def broadcast(self, array, src: int = 0):
        if not self._on_gpu(array):
            return super().broadcast(array, src)
        stream = self.cupy.cuda.get_current_stream()
        self.communicator.bcast(array.data.ptr, array.size, self.dtypes[array.dtype], src,
                                stream.ptr)
        stream.synchronize()
        return array


class ShardedRows:
    """Random draws for a batch split over the ranks. A draw of shape (n, ...) is made for
    the whole batch, (n * world_size, ...), and this rank keeps rows rank*n .. (rank+1)*n:
    the numbers one process at the whole batch would use, and every rank's generator stays
    in the same state (so a checkpoint holds nothing rank-specific)."""

    def __init__(self, generator, group: ProcessGroup):
        self.generator, self.group = generator, group

    def _mine(self, draw, shape, *args, **kwargs):
        n = shape[0]
        values = draw((n * self.group.world_size,) + tuple(shape[1:]), *args, **kwargs)
        return values[self.group.rank * n:(self.group.rank + 1) * n]

    def normal(self, shape, *args, **kwargs):
        return self._mine(self.generator.normal, shape, *args, **kwargs)

    def uniform(self, shape, *args, **kwargs):
        return self._mine(self.generator.uniform, shape, *args, **kwargs)


class AllReduceSum(Function):
    """The inputs (tensors of one shape) stacked and summed over the ranks: a (k, ...)
    tensor, the same on every rank. Its adjoint is itself: the gradient of every rank's
    loss with respect to rank r's input is the sum over the ranks of their output
    gradients. nn.SyncBatchNorm reduces its statistics through it."""

    def forward(self, *arrays, group):
        self.group = group
        stacked = self.xp.stack(arrays)
        return group.all_reduce(self.xp.ascontiguousarray(stacked))

    def backward(self, g):
        summed = AllReduceSum.apply(*[g[i] for i in range(g.shape[0])], group=self.group)
        return tuple(summed[i] for i in range(g.shape[0]))


def all_reduce_sum(*tensors: Tensor) -> Tensor:
    """Differentiable sum over the ranks of the current group: see AllReduceSum."""
    return AllReduceSum.apply(*tensors, group=current())


def _to_host(array):
    return array.get() if hasattr(array, "get") else array


def _like(target, values: np.ndarray):
    """`values` as an array of `target`'s kind (NumPy or CuPy) and dtype."""
    if hasattr(target, "get"):  # CuPy
        import cupy

        return cupy.asarray(values, dtype=target.dtype)
    return values.astype(target.dtype)


# ----------------------------------------------------------------------------- the group

_group: ProcessGroup | None = None


def init(device: str = "cpu") -> ProcessGroup:
    """The process group of this run, made on the first call: MPI (NCCL for device "cuda")
    when an MPI launcher started more than one process, else the one-process group."""
    global _group
    if _group is None:
        if launched_world_size() <= 1:
            _group = ProcessGroup()
        else:
            _group = NCCLGroup() if device == "cuda" else MPIGroup()
            _stop_all_ranks_on_uncaught_errors(_group)
    return _group


def current() -> ProcessGroup:
    """The group init() made, or the one-process group if it was not called."""
    return _group if _group is not None else ProcessGroup()


def get_rank() -> int:
    return current().rank


def get_world_size() -> int:
    return current().world_size


def _stop_all_ranks_on_uncaught_errors(group: ProcessGroup) -> None:
    """An exception no one catches prints its traceback and then aborts the whole job:
    otherwise the other ranks would wait for this one in their next collective, for ever."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        group.abort(1)

    sys.excepthook = hook


def stop_all_ranks_on_failure(main):
    """Wrap a command's main(): when it fails (an exception, or a non-zero exit status)
    on one rank of several, print the message there and abort every rank. A stop all ranks
    agreed on (a signal, see agree_on_signal) exits normally, with its status."""

    def wrapper(*args, **kwargs):
        try:
            code = main(*args, **kwargs)
        except SystemExit as stop:
            code = stop.code
            if code in (0, None) or _group is None or _group.world_size == 1:
                raise
        except BaseException:
            if _group is None or _group.world_size == 1:
                raise
            traceback.print_exc()
            code = 1
        if (code not in (0, None) and _group is not None and _group.world_size > 1
                and not _group.stopping_together):
            print(f"minigan: rank {_group.rank} of {_group.world_size} failed (exit status "
                  f"{code}); stopping all ranks", file=sys.stderr)
            _group.abort(code if isinstance(code, int) else 1)
        return code

    wrapper.__doc__, wrapper.__name__ = main.__doc__, main.__name__
    return wrapper


def only_rank_zero_prints() -> None:
    """Silence standard output on ranks other than 0 (errors, on stderr, still show)."""
    if launched_rank() != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def describe() -> str:
    """One line for `minigan info`: is MPI usable, and how many processes run."""
    size = launched_world_size()
    try:
        from importlib.metadata import version

        mpi4py_version = version("mpi4py")
    except Exception:
        return (f"MPI: mpi4py not installed (pip install 'minigan[mpi]'); world size {size}")
    try:
        from mpi4py import MPI

        library = " ".join(MPI.Get_library_version().splitlines()[0].split())
    except Exception as error:  # mpi4py present but no MPI library it can load
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"MPI: mpi4py {mpi4py_version} cannot load an MPI library ({first}); " \
               f"world size {size}"
    return (f"MPI: mpi4py {mpi4py_version} with {library}: data-parallel training available "
            f"(mpiexec -n N minigan train); world size {size}")
