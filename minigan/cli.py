"""The `minigan` command: train | sample | eval | export | translate | info | download | bench.

Bad arguments, bad config files and bad data give a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from .distributed import stop_all_ranks_on_failure
from .io.atomic import atomic_write

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in what the user asked for: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, status 2
        raise UsageError(message)


def at_least(minimum: int):
    """An argparse type: a whole number >= minimum, refused by the option's name (the
    benchmark scripts use it too)."""
    what = "a positive whole number" if minimum == 1 else f"a whole number >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type by it in some messages
    return parse


_positive_int = at_least(1)


def _parse_set(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UsageError(f"--set expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        if key.strip() == "betas":
            try:
                value = [float(v) for v in value.strip("()[] ").split(",")]
            except ValueError:
                raise UsageError(f"--set betas expects two numbers, as betas=0.5,0.999; got "
                                 f"{value!r}") from None
        overrides[key.strip().replace("-", "_")] = value
    return overrides


def _new_run_folder(name: str) -> Path:
    """runs/NAME, or runs/NAME-2, -3, ... when that already holds a run or another process
    is starting one there; claimed for this process (run_folder.claim_run_folder)."""
    from .distributed import launched_rank
    from .gan.run_folder import has_contents, release_run_folder

    base = Path("runs") / name
    candidate, i = base, 1
    while True:
        if not (candidate.exists() and has_contents(candidate)):
            if launched_rank() != 0:  # a data-parallel rank that writes nothing: any will do
                return candidate
            try:
                _claim(candidate)
            except UsageError:  # another process writes there
                pass
            else:
                if not has_contents(candidate):  # still empty, now that it is ours
                    return candidate
                release_run_folder(_claimed.pop())
        i += 1
        candidate = Path(f"{base}-{i}")


def _apply_threads(args) -> None:
    if getattr(args, "threads", None) is not None:
        from .backend import set_num_threads

        set_num_threads(args.threads)


# `minigan train` with neither --recipe nor --data: the class-conditional DCGAN on the
# bundled digits, whose samples read as the digits asked for (README, "Two commands");
# with --data (which may hold no labels), the unconditional DCGAN.
DEFAULT_RECIPE = "cdcgan-mnist"
UNLABELLED_DEFAULT_RECIPE = "dcgan-mnist"

# What a resumed run takes from its checkpoint, so a resume cannot honour these options.
FIXED_ON_RESUME = ("recipe", "data", "data_a", "data_b", "batch_size", "seed", "set", "config",
                   "out", "overwrite", "objective", "n_critic", "pack")
# Options that only say where outputs go or how often: a resume honours them.
OUTPUT_FIELDS = ("checkpoint_every", "sample_every")


def cmd_train(args) -> int:
    from .distributed import only_rank_zero_prints

    _apply_threads(args)
    only_rank_zero_prints()  # under mpiexec -n N; errors still show on every rank
    try:
        trainer = _resume_run(args) if args.resume else _start_run(args)
        started = time.perf_counter()
        trainer.fit()
        seconds = time.perf_counter() - started
        if trainer.out is None:  # a data-parallel rank other than 0: rank 0 evaluates, writes
            return 0
        text = _scores_json(trainer.evaluate())
        atomic_write(trainer.out / "eval.json", lambda f: f.write(text + "\n"), mode="w")
    finally:
        _release_claims()
    print(f"done in {seconds:.0f} s; samples: {trainer.out / 'samples_final.png'}")
    print(f"eval ({trainer.out / 'eval.json'}): " + json.dumps(json.loads(text)))
    return 0


# Why a score is not a finite number, for the scores that can be infinite.
_NOT_FINITE = {"reverse_kl": "infinite: no generated sample lies within 3 std of a mode"}


def _scores_json(scores: dict) -> str:
    """Scores as strict JSON: a value that is not a finite number becomes null, and
    "null_because" says why (JSON has no Infinity or NaN)."""
    scores, reasons = dict(scores), {}
    for key, value in scores.items():
        if isinstance(value, float) and not math.isfinite(value):
            scores[key] = None
            reasons[key] = _NOT_FINITE.get(key, f"not a finite number ({value})")
    if reasons:
        scores["null_because"] = reasons
    return json.dumps(scores, indent=2, allow_nan=False)


def _start_run(args):
    """A new run in an empty folder (or in the folder of an old run, deleted first with
    --overwrite)."""
    from .distributed import launched_rank
    from .gan import load_config_file, make_trainer, recipe
    from .gan.run_folder import clear_run_folder

    overrides = load_config_file(args.config) if args.config else {}
    overrides.update(_parse_set(args.set))
    for field in ("data", "data_a", "data_b", "steps", "batch_size", "seed", "objective",
                  "n_critic", "pack") + OUTPUT_FIELDS:
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    name = overrides.pop("recipe", None)
    default = UNLABELLED_DEFAULT_RECIPE if "data" in overrides else DEFAULT_RECIPE
    config = recipe(args.recipe or name or default, **overrides)
    if args.out:
        out = Path(args.out)
        _check_new_run_folder(out, args.overwrite)
        if launched_rank() == 0:  # the process that writes (rank 0 of a data-parallel run)
            # this command's until it ends; checked again now that no other can start
            _claim(out)
            _check_new_run_folder(out, args.overwrite)
    else:
        out = Path("runs") / config.name if args.overwrite else _new_run_folder(config.name)
    trainer = make_trainer(config, device=args.device, out=out, quiet=args.quiet)
    # only now: a mistake in the options above leaves the old run alone; and only where the
    # run is written (rank 0 of a data-parallel run)
    if args.overwrite and trainer.out is not None:
        clear_run_folder(out)
    print(f"training {config.name} on {trainer.device} for {config.steps} steps -> {out}")
    return trainer


_claimed: list[Path] = []  # run folders this command claimed (run_folder.claim_run_folder)


def _claim(out: Path) -> None:
    """Make run folder `out` this command's alone until it ends (a one-line error if another
    process writes there)."""
    from .gan.recipes import ConfigError
    from .gan.run_folder import claim_run_folder

    try:
        claim_run_folder(out)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    _claimed.append(out)


def _release_claims() -> None:
    from .gan.run_folder import release_run_folder

    while _claimed:
        release_run_folder(_claimed.pop())


def _other_checkpoints(run, message: str) -> str:
    """For a run whose newest checkpoint cannot be read: the others it holds, newest first,
    and how to continue from one (a checkpoint file is a RUN for --resume)."""
    from .gan.run_folder import checkpoints_by_step

    if not Path(run).is_dir():
        return ""
    others = [path for _, path in reversed(checkpoints_by_step(run)) if str(path) not in message]
    if not others:
        return ""
    names = ", ".join(path.name for path in others[:5]) + (", ..." if len(others) > 5 else "")
    return (f"; the run's other checkpoints: {names}; continue from one with --resume "
            f"{others[0]}")


def _check_new_run_folder(out: Path, overwrite: bool) -> None:
    """Refuse to mix two runs in one folder: a new run needs an empty folder, or
    --overwrite to delete the run that is there."""
    from .gan.run_folder import checkpoints_by_step, has_contents, is_run_folder

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder for the run")
    if not out.is_dir() or not has_contents(out):
        return
    if not is_run_folder(out):
        raise UsageError(f"--out {out} is not empty and holds no minigan run; choose a new "
                         "or empty folder")
    if overwrite:
        return
    found = checkpoints_by_step(out)
    where = f" (a run at step {found[-1][0]})" if found else " (a run)"
    raise UsageError(f"--out {out} is not empty{where}; continue it with --resume {out}, "
                     "start again there with --overwrite (deletes it), or choose a new folder")


def _resume_run(args):
    """The run in folder args.resume, continued from its newest checkpoint."""
    from .distributed import launched_rank
    from .gan import resume_trainer
    from .gan.trainer import run_folder
    from .io import CheckpointError

    given = [f"--{name.replace('_', '-')}" for name in FIXED_ON_RESUME
             if getattr(args, name, None) not in (None, False, [])]
    if given:
        raise UsageError(
            f"--resume continues the run with the settings saved in its checkpoint, so it "
            f"cannot honour {', '.join(given)}; drop {'it' if len(given) == 1 else 'them'}, "
            "or start a new run with --out NEW_FOLDER"
        )
    if launched_rank() == 0 and Path(args.resume).exists():
        _claim(run_folder(args.resume))  # no other process resumes it meanwhile
    try:
        trainer = resume_trainer(args.resume, device=args.device, quiet=args.quiet,
                                 steps=args.steps)
    except CheckpointError as error:
        raise CheckpointError(f"{error}{_other_checkpoints(args.resume, str(error))}") from None
    changes = {name: getattr(args, name) for name in OUTPUT_FIELDS
               if getattr(args, name) is not None}
    if changes:
        trainer.config = trainer.config.replace(**changes)
    print(f"resuming {args.resume} at step {trainer.step_count} of {trainer.config.steps}")
    return trainer


def source_of(args) -> str:
    return args.run or args.checkpoint  # argparse refuses both at once


def _trainer_from(args):
    from .gan import load_trainer

    source = source_of(args)
    if not source:
        raise UsageError("give --run RUN_FOLDER or --checkpoint FILE")
    return load_trainer(source, device=args.device)


SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy")


def cmd_sample(args) -> int:
    import numpy as np

    from .io import save_image_grid, save_points_plot

    out = Path(args.out)
    if out.suffix.lower() not in SAMPLE_SUFFIXES:
        raise UsageError(f"--out {out}: expected a picture (.png, .jpg, .jpeg) or raw samples "
                         f"(.npy), got {out.suffix or 'no suffix'!r}")
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name such as {out / 'grid.png'}")
    _apply_threads(args)
    trainer = _trainer_from(args)
    if trainer.kind == "cyclegan":
        raise UsageError("a CycleGAN run translates images rather than sampling them: use "
                         "minigan translate --run RUN --direction a2b --input X --out Y")
    if args.label is not None and not trainer.config.n_classes:
        raise UsageError(f"--label needs a conditional run; {source_of(args)} was trained "
                         "without labels (n_classes 0)")
    if args.label is not None and not 0 <= args.label < trainer.config.n_classes:
        raise UsageError(f"--label must be in 0..{trainer.config.n_classes - 1}, got "
                         f"{args.label}")
    samples = trainer.sample(args.n, seed=args.seed, labels=args.label)
    if out.suffix == ".npy":
        atomic_write(out, lambda f: np.save(f, samples))
    elif samples.ndim == 4:
        save_image_grid(samples, out)
    else:
        save_points_plot(samples, out, real=trainer.data.x[:2000])
    print(f"wrote {len(samples)} samples to {out}")
    return 0


def cmd_eval(args) -> int:
    _apply_threads(args)
    trainer = _trainer_from(args)
    options = {} if args.seed is None else {"seed": args.seed}
    print(_scores_json(trainer.evaluate(args.n, **options)))
    return 0


def cmd_export(args) -> int:
    from .gan.export import export_generator

    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise UsageError(f"--out must name a .safetensors file, got {args.out!r}")
    trainer = _trainer_from(args)
    if trainer.kind != "gan":
        raise UsageError(f"export writes the generator of a GAN run; {source_of(args)} is a "
                         f"{trainer.kind!r} run with two generators")
    export_generator(trainer, out)
    weights = "EMA weights" if trainer.ema is not None else "weights"
    print(f"wrote the generator's {weights} (step {trainer.step_count}) to {out}")
    return 0


def cmd_translate(args) -> int:
    from .gan.cyclegan_io import translate_files

    written = translate_files(args.run, args.direction, args.input, args.out,
                              device=args.device)
    where = args.out if len(written) != 1 else written[0]
    print(f"translated {args.input} ({args.direction}) -> {where}")
    return 0


def cmd_info(args) -> int:
    import platform

    import numpy

    from . import __version__, backend

    print(f"minigan {__version__}  Python {platform.python_version()}  "
          f"NumPy {numpy.__version__}")
    try:
        import numba

        print(f"Numba {numba.__version__}: device 'cpu' available")
    except ImportError:
        print("Numba: not installed (device 'cpu' unavailable)")
    problem = backend.cuda_problem()
    if problem:
        print(f"device 'cuda' unavailable: {problem}")
    else:
        import cupy

        name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        print(f"CuPy {cupy.__version__}: device 'cuda' available ({name})")
    print(f"devices: {', '.join(backend.available_devices())}; "
          f"default: {backend.default_device()}")
    print(_threads_line())
    from .distributed import describe

    print(describe())
    return 0


def _threads_line() -> str:
    """BLAS library, kernel family and threads; Numba threads; what minigan set itself."""
    from threadpoolctl import threadpool_info

    from . import _environment

    parts = [f"BLAS {pool.get('internal_api')} {pool.get('version')} "
             f"({pool.get('architecture')}, {pool.get('num_threads')} threads)"
             for pool in threadpool_info() if pool.get("user_api") == "blas"]
    try:
        import numba

        _environment.start_numba_threads()
        parts.append(f"Numba {numba.get_num_threads()} threads ({numba.threading_layer()})")
        from .kernels.cpu import blas

        parts.append("cpu device products on Numba's threads (one OpenBLAS call per thread)"
                     if blas.uses_numba_threads() else
                     "cpu device products on the BLAS library's threads")
    except ImportError:
        pass
    if _environment.SET_HERE:
        settings = " ".join(f"{k}={v}" for k, v in sorted(_environment.SET_HERE.items()))
        parts.append(f"set by minigan: {settings}")
    return "threads: " + "; ".join(parts)


def cmd_download(args) -> int:
    from .data import download

    paths = download(args.name, args.directory)
    print(f"downloaded {args.name} to {args.directory} ({len(paths)} files)")
    return 0


def cmd_bench(args) -> int:
    """Time training iterations of a recipe on one device (side-by-side PyTorch timings
    are in the repository's benchmarks/ folder)."""
    from .distributed import only_rank_zero_prints
    from .gan import make_trainer, recipe

    _apply_threads(args)
    only_rank_zero_prints()  # under mpiexec it times data-parallel steps; rank 0 reports
    config = recipe(args.recipe, batch_size=args.batch_size or recipe(args.recipe).batch_size)
    trainer = make_trainer(config, device=args.device, out=None, quiet=True)
    for _ in range(args.warmup):
        trainer.step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        trainer.step()
        times.append(time.perf_counter() - start)
    times.sort()
    print(f"{config.name} batch {config.batch_size} on {trainer.device}: median "
          f"{1000 * times[len(times) // 2]:.1f} ms/iteration over {len(times)} iterations")
    return 0


DEVICES = ["numpy", "cpu", "cuda"]
DEVICE_HELP = "numpy (reference kernels), cpu (Numba) or cuda (default: the fastest present)"
THREADS_HELP = ("threads for matrix products and cpu loops (default: all cores; 1 is often "
                "faster when other jobs share the cores)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="minigan", description="A minimal GAN engine built from scratch.")
    parser.add_argument("--version", action="version", version=f"minigan {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for add in (_add_train, _add_sample, _add_eval, _add_export, _add_translate, _add_info,
                _add_download, _add_bench):
        add(sub)
    return parser


def _add_train(sub) -> None:
    from .gan import RECIPES

    train = sub.add_parser(
        "train", help="train a GAN (default: a class-conditional DCGAN on the bundled MNIST "
                      "subset)",
        description="Train a GAN into a run folder. Options not given come from the recipe; "
                    "the recipe's fields are in minigan/gan/recipes.py.")
    train.add_argument("--recipe", choices=sorted(RECIPES), metavar="NAME",
                       help=f"one of {', '.join(sorted(RECIPES))} (default: the config "
                            f"file's recipe, else {DEFAULT_RECIPE}, or {UNLABELLED_DEFAULT_RECIPE}"
                            " with --data)")
    train.add_argument("--data", metavar="SOURCE",
                       help="a built-in name (mnist5k, digits8x8, ring8, grid25, 8gaussians, "
                            "25gaussians, swissroll), an IDX file or folder, a folder of "
                            "images, an .npz or an .npy (default: the recipe's)")
    train.add_argument("--data-a", metavar="SOURCE",
                       help="CycleGAN domain A, any --data source (default: the recipe's)")
    train.add_argument("--data-b", metavar="SOURCE",
                       help="CycleGAN domain B, any --data source (default: the recipe's)")
    train.add_argument("--steps", type=int, metavar="N",
                       help="generator iterations in total; with --resume, the new total "
                            "(default: the recipe's, or the run's)")
    train.add_argument("--batch-size", type=int, metavar="B",
                       help="samples per batch (default: the recipe's)")
    train.add_argument("--device", choices=DEVICES, help=DEVICE_HELP)
    train.add_argument("--out", metavar="DIR",
                       help="run folder, new or empty (default: runs/RECIPE, or runs/RECIPE-2, "
                            "-3, ... when that holds a run)")
    train.add_argument("--overwrite", action="store_true",
                       help="delete the run already in --out and start again (default: refuse "
                            "a folder that is not empty)")
    train.add_argument("--seed", type=int, metavar="S",
                       help="seed of weights, noise and batch order (default: the recipe's, 0)")
    train.add_argument("--config", metavar="FILE",
                       help="TOML or JSON file: one flat table of config fields, plus "
                            "recipe = NAME (default: none)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override any config field, e.g. --set image_size=32; repeatable "
                            "(default: none)")
    train.add_argument("--objective", metavar="NAME",
                       help="minimax, non_saturating, wasserstein, hinge or lsgan (default: "
                            "the recipe's)")
    train.add_argument("--n-critic", type=int, metavar="K",
                       help="discriminator steps per generator step (default: the recipe's)")
    train.add_argument("--pack", type=int, metavar="M",
                       help="PacGAN: samples the discriminator sees at once (default: the "
                            "recipe's, 1)")
    train.add_argument("--checkpoint-every", type=int, metavar="N",
                       help="steps between checkpoints (default: the recipe's)")
    train.add_argument("--sample-every", type=int, metavar="N",
                       help="steps between sample pictures (default: the recipe's)")
    train.add_argument("--resume", metavar="RUN",
                       help="continue the run in this folder with its saved settings (only "
                            "--steps, --device, the intervals, --threads and --quiet may be "
                            "given with it; default: a new run)")
    train.add_argument("--quiet", action="store_true",
                       help="no progress bar (default: a progress bar)")
    train.add_argument("--threads", type=_positive_int, metavar="N", help=THREADS_HELP)
    train.set_defaults(handler=cmd_train)


def _add_run_source(parser) -> None:
    """--run or --checkpoint (not both), --device and --threads: sample's and eval's."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run", metavar="DIR",
                        help="run folder, read from its newest checkpoint (no default: give "
                             "--run or --checkpoint)")
    source.add_argument("--checkpoint", metavar="FILE",
                        help="a checkpoint file, instead of --run (no default)")
    parser.add_argument("--device", choices=DEVICES, help=DEVICE_HELP)
    parser.add_argument("--threads", type=_positive_int, metavar="N", help=THREADS_HELP)


def _add_sample(sub) -> None:
    sample = sub.add_parser("sample", help="write samples of a trained run")
    _add_run_source(sample)
    sample.add_argument("--n", type=_positive_int, default=64, metavar="N",
                        help="number of samples (default: 64)")
    sample.add_argument("--seed", type=int, default=0, metavar="S",
                        help="seed of the noise (default: 0)")
    sample.add_argument("--out", required=True, metavar="FILE",
                        help="a picture (.png, .jpg, .jpeg: a grid of images, or a scatter of "
                             "2-D points over the real data) or raw samples (.npy, in [-1, 1] "
                             "for images)")
    sample.add_argument("--label", type=int, metavar="N",
                        help="a conditional run (e.g. cdcgan-mnist): draw class N only "
                             "(default: every class in turn)")
    sample.set_defaults(handler=cmd_sample)


def _add_export(sub) -> None:
    export = sub.add_parser("export", help="write a run's generator as .safetensors "
                                           "(PyTorch loads it)")
    _add_run_source(export)
    export.add_argument("--out", required=True, metavar="FILE",
                        help="the .safetensors file to write")
    export.set_defaults(handler=cmd_export)


def _add_eval(sub) -> None:
    evaluate = sub.add_parser(
        "eval", help="score a trained run",
        description="Score a trained run as the end of training does (same sample count and "
                    "seed, so one run has one score). Prints JSON: 'metric' says what was "
                    "scored and why it applies, or 'not_scored' says why nothing applies.")
    _add_run_source(evaluate)
    evaluate.add_argument("--n", type=_positive_int, metavar="N",
                          help="samples to score (default: 2500 for mode coverage, PacGAN's "
                               "protocol; 2000 for the digit scores; every held-out image "
                               "for CycleGAN)")
    evaluate.add_argument("--seed", type=int, metavar="S",
                          help="seed of the noise (default: the one the end of training uses)")
    evaluate.set_defaults(handler=cmd_eval)


def _add_translate(sub) -> None:
    translate = sub.add_parser("translate", help="translate images with a trained CycleGAN run")
    translate.add_argument("--run", required=True, metavar="RUN",
                           help="CycleGAN run folder or checkpoint")
    translate.add_argument("--direction", required=True, choices=["a2b", "b2a"],
                           help="a2b: domain A to B; b2a: B to A")
    translate.add_argument("--input", required=True, metavar="PATH",
                           help="an image, a folder of images, or a .npy of (N, C, H, W) in "
                                "[-1, 1]")
    translate.add_argument("--out", required=True, metavar="PATH",
                           help="an image file (one input image), a folder, or a .npy")
    translate.add_argument("--device", choices=DEVICES, help=DEVICE_HELP)
    translate.set_defaults(handler=cmd_translate)


def _add_info(sub) -> None:
    info = sub.add_parser("info", help="versions, devices, GPU, threads")
    info.set_defaults(handler=cmd_info)


def _add_download(sub) -> None:
    download = sub.add_parser("download", help="fetch MNIST or Fashion-MNIST")
    download.add_argument("name", choices=["mnist", "fashion-mnist"], help="the dataset")
    download.add_argument("directory", help="folder to write its IDX files into")
    download.set_defaults(handler=cmd_download)


def _add_bench(sub) -> None:
    from .gan import RECIPES

    bench = sub.add_parser("bench", help="time training iterations of a recipe")
    bench.add_argument("--recipe", default=UNLABELLED_DEFAULT_RECIPE, choices=sorted(RECIPES),
                       metavar="NAME",
                       help=f"the recipe to time (default: {UNLABELLED_DEFAULT_RECIPE})")
    bench.add_argument("--device", choices=DEVICES, help=DEVICE_HELP)
    bench.add_argument("--batch-size", type=_positive_int, metavar="B",
                       help="samples per batch (default: the recipe's)")
    bench.add_argument("--steps", type=_positive_int, default=10, metavar="N",
                       help="timed iterations (default: 10)")
    bench.add_argument("--warmup", type=int, default=2, metavar="N",
                       help="untimed iterations first, which compile the kernels (default: 2)")
    bench.add_argument("--threads", type=_positive_int, metavar="N", help=THREADS_HELP)
    bench.set_defaults(handler=cmd_bench)


@stop_all_ranks_on_failure  # under mpiexec: one rank's error stops them all, no hang
def main(argv: list[str] | None = None) -> int:
    from .backend import DeviceUnavailable
    from .data import DataFormatError, DownloadError
    from .gan import ConfigError, TrainingDiverged
    from .gan.interrupt import TrainingInterrupted
    from .io import CheckpointError

    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "command", None):
            raise UsageError("choose a command: train, sample, eval, export, translate, info, "
                             "download, bench (minigan --help)")
        return args.handler(args)
    except (UsageError, ConfigError, DataFormatError, DownloadError, CheckpointError,
            DeviceUnavailable, OSError) as error:  # OSError: a file that cannot be written
        print(f"minigan: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingInterrupted as error:
        if error.checkpoint is not None:  # None on the data-parallel ranks that write nothing
            print(f"minigan: {error}", file=sys.stderr)
        return error.exit_status
    except TrainingDiverged as error:
        print(f"minigan: training diverged: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("minigan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
