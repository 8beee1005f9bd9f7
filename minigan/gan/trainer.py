"""The GAN trainer, readable top to bottom.

One generator iteration (`Trainer.step`):
    n_critic times:  x_real from the loader; z from the generator of random numbers;
                     x_fake = G(z) under no_grad; loss_D = objective(D(x_real), D(x_fake))
                     (+ gradient penalty / R1); backward; optimizer_D.step(); weight clipping
    then once:       x_fake = G(z); loss_G = objective(D(x_fake)); backward; optimizer_G.step();
                     EMA of G's weights; learning-rate schedule.
`Trainer.fit` repeats it, writing metrics.jsonl, sample grids, the loss plot and checkpoints
under the run folder at their intervals.

Other kinds of model reuse the loop, the outputs and the checkpoints, replacing the step
and what it needs: CycleGANTrainer (cyclegan.py) trains two generators and two
discriminators for unpaired image-to-image translation. kinds.py says which class trains
which kind (`make_trainer(config)`).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from .. import backend, distributed, optim
from ..autograd import Tensor, no_grad
from ..compilation import CompileWatch, leave_out_of_rate, say_above_bar
from ..creation import randn
from ..data import Loader, load_dataset
from ..io import (
    CheckpointError,
    atomic_write,
    load_checkpoint,
    save_checkpoint,
    save_image_grid,
    save_loss_plot,
    save_points_plot,
)
from ..random import Generator
from . import objectives
from .conditional import build_conditional_models
from .ema import GeneratorEMA
from .interrupt import StopSignals, TrainingInterrupted
from .models import build_models
from .recipes import KINDS, ConfigError, TrainConfig
from .run_folder import (claim_run_folder, latest_checkpoint, prune_checkpoints,
                         refuse_another_run, release_run_folder)


class TrainingDiverged(RuntimeError):
    """A loss or a gradient became NaN or infinite; the message names the step and term."""


class Trainer:
    """Trains one GAN described by a TrainConfig on one device, writing into `out`.

    The loop (`fit`), the run folder's outputs and the checkpoints are the same for every
    kind of model. What a kind changes lives in five methods a subclass replaces: `_build`
    (data, models, optimizers), `step`, `save_samples`, `state_dict` / `load_state_dict`
    and `evaluate`. This class trains kind "gan"; `make_trainer(config)` (kinds.py) picks
    the class of any kind.
    """

    kind = "gan"
    loss_plot_keys = ("loss_d", "loss_g")

    def __init__(self, config: TrainConfig, device: str | None = None, out=None,
                 quiet: bool = False):
        if config.kind != self.kind:
            raise ConfigError(
                f"{type(self).__name__} trains kind {self.kind!r}, the config is of kind "
                f"{config.kind!r}: use minigan.gan.make_trainer(config), which picks the "
                "trainer class of each kind"
            )
        self.config = config
        self.device = backend.get(device).name
        self.out = Path(out) if out is not None else None
        self.quiet = quiet
        self.random = Generator(config.seed)  # init, noise, dropout: one seed drives all
        # data parallelism (distributed.py): with one process `world` does nothing
        self.world = distributed.init(self.device)
        self.batch_random = self.world.shard_rows(self.random)
        if self.world.world_size > 1:
            _check_data_parallel(config, self.world.world_size)
            if self.world.rank != 0:  # rank 0 alone writes the run folder
                self.out, self.quiet = None, True
        self._build()
        self.schedulers = self._learning_rate_schedulers()
        self.step_count = 0
        self.history: list[dict] = []

    def _build(self) -> None:
        """The data, the models, their optimizers and the fixed noise of the sample grids."""
        config = self.config
        self.data = load_dataset(config.data, config.image_size or None, config.channels or None)
        check_data_fits(config, self.data)
        labels = _checked_labels(self.data, config.n_classes) if config.n_classes else None
        sample_shape = tuple(self.data.x.shape[1:])
        build = build_conditional_models if config.n_classes else build_models
        self.generator, self.discriminator = build(config, sample_shape, self.random)
        self.generator.to(self.device)
        self.discriminator.to(self.device)
        batched = self.data.x if labels is None else (self.data.x, labels)
        self.loader = Loader(batched, config.batch_size, shuffle=True, drop_last=True,
                             seed=config.seed, rank=self.world.rank,
                             world_size=self.world.world_size)

        # optimizers after .to(device): they pack the parameters into flat buffers
        self.optimizer_g = self._optimizer(self.generator.parameters(), config.lr_g)
        self.optimizer_d = self._optimizer(self.discriminator.parameters(), config.lr_d)
        self.world.broadcast_parameters(self.generator, self.discriminator)
        self.objective = objectives.OBJECTIVES[config.objective]
        self.ema = GeneratorEMA(self.generator, config.ema) if config.ema > 0 else None

        fixed = Generator(config.seed + 1)  # a separate stream: the sample grids never shift
        self.fixed_noise = randn(config.n_samples, config.z_dim, generator=fixed,
                                 device=self.device)
        # a conditional run's grid: the labels in equal blocks (one digit per row of 10x10)
        self.fixed_labels = None
        if config.n_classes:
            self.fixed_labels = np.arange(config.n_samples) * config.n_classes // config.n_samples

    def _optimizer(self, parameters, lr: float):
        c = self.config
        if c.optimizer == "rmsprop":
            return optim.RMSprop(parameters, lr=lr)
        return optim.Adam(parameters, lr=lr, betas=tuple(c.betas))

    # ------------------------------------------------------------------ one iteration

    def noise(self, n: int) -> Tensor:
        """z for a batch of n; each of N data-parallel ranks gets its n / N rows of it."""
        return randn(n // self.world.world_size, self.config.z_dim,
                     generator=self.batch_random, device=self.device)

    def real_batch(self) -> tuple[Tensor, Tensor | None]:
        """(images, labels); labels is None unless the GAN is conditional."""
        if not self.config.n_classes:
            return Tensor(self.loader.next_batch(), device=self.device), None
        x, labels = self.loader.next_batch()
        return Tensor(x, device=self.device), self._labels(labels)

    def random_labels(self, n: int) -> Tensor | None:
        """Labels for the G step of a conditional GAN, uniform over the classes; None (and
        no random draw) for an unconditional one."""
        if not self.config.n_classes:
            return None
        return self._labels(self.batch_random.integers(0, self.config.n_classes, n))

    def _labels(self, labels) -> Tensor:
        return Tensor(np.asarray(labels, dtype=np.int64), device=self.device, dtype=np.int64)

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.generator(z) if labels is None else self.generator(z, labels)

    def discriminate(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.discriminator(self.pack(x)) if labels is None else self.discriminator(x,
                                                                                          labels)

    def pack(self, x: Tensor) -> Tensor:
        """PacGAN: m samples become one discriminator input, concatenated along axis 1."""
        m = self.config.pack
        if m == 1:
            return x
        n = x.shape[0] // m
        return x.reshape((n, m * x.shape[1]) + x.shape[2:])

    def step(self) -> dict:
        """One generator iteration with its n_critic discriminator steps; returns the losses."""
        c, G, D = self.config, self.generator, self.discriminator
        G.train()
        D.train()
        for _ in range(c.n_critic):
            # a conditional GAN's fakes carry the real batch's labels: D sees the same
            # classes on both sides, and the penalties interpolate within one class
            x_real, labels = self.real_batch()
            with no_grad():
                x_fake = self.generate(self.noise(c.batch_size), labels)
            real_logits = self.discriminate(x_real, labels)
            fake_logits = self.discriminate(x_fake, labels)
            loss_d = self.objective.discriminator_loss(real_logits, fake_logits)
            penalty = None
            if c.gp_weight > 0:
                penalty = objectives.gradient_penalty(
                    lambda x, labels=labels: self.discriminate(x, labels), x_real, x_fake,
                    generator=self.batch_random, weight=c.gp_weight)
                loss_d = loss_d + penalty
            if c.r1_gamma > 0:
                loss_d = loss_d + objectives.r1_penalty(
                    lambda x, labels=labels: self.discriminate(x, labels), x_real, c.r1_gamma)
            self.optimizer_d.zero_grad()
            self._check_finite(loss_d, "discriminator loss")
            loss_d.backward()
            self.world.average_gradients(self.optimizer_d)  # data parallel: mean over ranks
            grad_norm_d = self._grad_norm(D.parameters(), "discriminator")
            self.optimizer_d.step()
            if c.weight_clip > 0:
                for p in D.parameters():
                    p.array[...] = clip_weights(p.array, c.weight_clip)

        # D's weights are frozen for the G step: backward then skips their gradients
        # (which the G step would throw away) and only flows through D to x_fake.
        frozen = [p for p in D.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad = False
        try:
            labels = self.random_labels(c.batch_size)
            x_fake = self.generate(self.noise(c.batch_size), labels)
            loss_g = self.objective.generator_loss(self.discriminate(x_fake, labels))
            self.optimizer_g.zero_grad()
            self._check_finite(loss_g, "generator loss")
            loss_g.backward()
        finally:
            for p in frozen:
                p.requires_grad = True
        self.world.average_gradients(self.optimizer_g)
        grad_norm_g = self._grad_norm(G.parameters(), "generator")
        self.optimizer_g.step()
        self._update_ema()
        self.step_count += 1
        self._schedule_learning_rate()

        record = {
            "step": self.step_count,
            "loss_d": float(loss_d.item()),
            "loss_g": float(loss_g.item()),
            "d_real": self._score(real_logits),
            "d_fake": self._score(fake_logits),
            "grad_norm_d": grad_norm_d,
            "grad_norm_g": grad_norm_g,
        }
        if penalty is not None:
            record["gradient_penalty"] = float(penalty.item())
        return self.world.average_record(record, (G, D))

    # ------------------------------------------------------------------ helpers of step

    def _check_finite(self, loss: Tensor, term: str) -> None:
        value = float(loss.item())
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"step {self.step_count + 1}: the {term} is {value}; training stopped before "
                "the update, so the weights and the last checkpoint are untouched "
                "(lower the learning rate, or check the data for NaN)"
            )

    def _grad_norm(self, parameters, name: str) -> float:
        total = 0.0
        for p in parameters:
            if p.grad is not None:
                total += float((p.grad.array.astype(np.float64) ** 2).sum())
        norm = math.sqrt(total)
        if not math.isfinite(norm):
            raise TrainingDiverged(
                f"step {self.step_count + 1}: the {name}'s gradient norm is {norm}; training "
                "stopped before the update, so the last checkpoint is untouched"
            )
        return norm

    def _score(self, logits: Tensor) -> float:
        """Mean D output: a probability for the logit objectives, the raw critic value else."""
        values = logits.numpy().astype(np.float64)
        if self.config.objective in ("wasserstein", "hinge", "lsgan"):
            return float(values.mean())
        return float((1.0 / (1.0 + np.exp(-np.clip(values, -60, 60)))).mean())

    def _update_ema(self) -> None:
        if self.ema is not None:
            self.ema.update(self.generator)

    def _learning_rate_schedulers(self) -> list:
        """lr_schedule 'linear' (CycleGAN's "linear" policy): the lr stays constant for the
        first half of the run, then falls linearly to 0; a LambdaLR on each optimizer,
        stepped once per generator iteration. 'constant': none."""
        c = self.config
        if c.lr_schedule != "linear":
            return []

        def factor(step: int) -> float:
            half = c.steps / 2
            return 1.0 if c.steps == 0 or step <= half else max(0.0, (c.steps - step) / half)

        return [optim.lr_scheduler.LambdaLR(optimizer, factor)
                for optimizer in (self.optimizer_g, self.optimizer_d)]

    def _schedule_learning_rate(self) -> None:
        for scheduler in self.schedulers:
            scheduler.step()

    def _load_schedulers(self, state: dict) -> None:
        saved = state.get("schedulers")
        for k, scheduler in enumerate(self.schedulers):
            if saved:
                scheduler.load_state_dict(saved[k])
            else:  # a checkpoint from before schedules were saved: the step says where
                scheduler.last_epoch = int(state["step"])

    # ------------------------------------------------------------------ sampling

    @no_grad()
    def sample(self, n: int | None = None, seed: int | None = None, noise: Tensor | None = None,
               labels=None) -> np.ndarray:
        """Generated samples as a NumPy array: (N, C, H, W) in [-1, 1] or (N, 2) points.
        Uses the EMA weights (and batch-norm statistics of their own) when the config keeps
        them. A conditional GAN draws the given labels (one int for all, or one per sample;
        default: every class in turn)."""
        if noise is None:
            generator = self.random if seed is None else Generator(seed)
            noise = randn(n or self.config.n_samples, self.config.z_dim, generator=generator,
                          device=self.device)
        labels = self._sample_labels(labels, noise.shape[0])
        G = self.generator
        was_training = G.training
        try:
            if self.ema is None:
                G.eval()
                return self.generate(noise, labels).numpy().copy()
            with self.ema.applied(G, self._ema_inputs) as averaged:
                averaged.eval()
                return self.generate(noise, labels).numpy().copy()
        finally:
            G.train(was_training)

    def _ema_inputs(self, generator: Generator, n: int) -> Tensor | tuple:
        """G's inputs for recomputing the EMA's batch-norm statistics: n noise vectors, and
        for a conditional G labels cycling through the classes (its training steps draw
        labels uniformly, so every class weighs the same)."""
        z = randn(n, self.config.z_dim, generator=generator, device=self.device)
        if not self.config.n_classes:
            return z
        return z, self._labels(np.arange(n) % self.config.n_classes)

    def _sample_labels(self, labels, n: int) -> Tensor | None:
        classes = self.config.n_classes
        if not classes:
            if labels is not None:
                raise ConfigError(f"run {self.config.name!r} is not conditional (n_classes 0): "
                                  "it draws no chosen label")
            return None
        if labels is None:
            labels = np.arange(n) % classes
        labels = np.broadcast_to(np.asarray(labels), (n,))
        if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= classes:
            raise ConfigError(f"labels must be whole numbers in 0..{classes - 1}, got "
                              f"{np.unique(labels).tolist()[:5]}")
        return self._labels(labels)

    # ------------------------------------------------------------------ the loop

    def fit(self, steps: int | None = None) -> list[dict]:
        """Train until `steps` generator iterations in total (config.steps by default),
        writing outputs under self.out at their intervals."""
        if self.out is None:
            return self._fit(steps)
        claim_run_folder(self.out)  # one process writes a run folder at a time
        try:
            return self._fit(steps)
        finally:
            release_run_folder(self.out)

    def _fit(self, steps: int | None) -> list[dict]:
        c = self.config
        total = c.steps if steps is None else steps
        if self.out is not None:
            self._prepare_output()
        bar = None  # a progress bar from the first step on (see _progress_bar)
        compiling = CompileWatch(None if self.quiet else say_above_bar).start()
        start = time.perf_counter()
        # Ctrl-C: finish the step, checkpoint (every rank of a data-parallel run listens)
        stop = StopSignals(enabled=self.out is not None or self.world.world_size > 1)
        try:
            while self.step_count < total:
                record = self.step()
                record["time"] = round(time.perf_counter() - start, 3)
                step = self.step_count
                if step % c.log_every == 0 or step == total:
                    self.history.append(record)
                    self._append_metrics(record)
                if not self.quiet:
                    if bar is None:
                        bar = self._progress_bar(total)
                        compiling.new_seconds()
                    else:
                        leave_out_of_rate(bar, compiling.new_seconds())
                        bar.update(1)
                    bar.set_postfix(loss_d=f"{record['loss_d']:.3f}",
                                    loss_g=f"{record['loss_g']:.3f}")
                if self.out is not None:
                    if step % c.sample_every == 0:
                        self.save_samples(self.out / f"samples_{step:06d}.png")
                    if step % c.checkpoint_every == 0 or step == total:
                        self.save_checkpoint()
                signum = self.world.agree_on_signal(stop.signum)  # all ranks, the same step
                if signum is not None:
                    self._stop_on_signal(signum)
        finally:
            compiling.stop()
            stop.restore()
            if bar is not None:
                bar.close()
        if self.out is not None:
            self.save_samples(self.out / "samples_final.png")
            self.save_plots()
        return self.history

    def _progress_bar(self, total: int):
        """A tqdm bar started after the first step of a run (or of a resumed one), so that
        its rate and time left leave out that step's one-time costs: compiling the kernels
        on a first run, loading them from the cache, starting threads."""
        from tqdm import tqdm

        return tqdm(total=total, initial=self.step_count, unit="step", dynamic_ncols=True,
                    desc=self.config.name)

    def _stop_on_signal(self, signum: int) -> None:
        """Keep the step just finished: checkpoint it, then say where a resume starts."""
        path = None
        if self.out is not None:  # rank 0 alone in a data-parallel run
            path = self.save_checkpoint()
            self.save_plots()
        self.world.barrier()  # the other ranks exit only once the checkpoint is written
        raise TrainingInterrupted(signum, self.step_count, path, self.out)

    # ------------------------------------------------------------------ outputs

    def _prepare_output(self) -> None:
        if self.step_count == 0:
            refuse_another_run(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "checkpoints").mkdir(exist_ok=True)
        text = json.dumps(self.config.to_dict(), indent=2)
        atomic_write(self.out / "config.json", lambda f: f.write(text), mode="w")
        metrics = self.out / "metrics.jsonl"
        if self.step_count == 0 and metrics.exists():
            metrics.unlink()

    def _append_metrics(self, record: dict) -> None:
        if self.out is None:
            return
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _all_records(self) -> list[dict]:
        return read_metrics(self.out / "metrics.jsonl")

    def save_plots(self) -> None:
        """loss.png: the losses, D(x) and D(G(z)), and the gradient norms of the run."""
        logits = self.config.objective not in ("wasserstein", "hinge", "lsgan")  # see _score
        save_loss_plot(self._all_records(), self.out / "loss.png", keys=self.loss_plot_keys,
                       score_label="mean D output, as a probability" if logits else
                       "mean critic output")

    def save_samples(self, path) -> None:
        samples = self.sample(noise=self.fixed_noise, labels=self.fixed_labels)
        if samples.ndim == 4:
            save_image_grid(samples, path)
        else:
            save_points_plot(samples, path, real=self.data.x[:2000])

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        """Everything a resumed run needs to continue exactly as if never stopped."""
        return {
            "kind": "gan",
            "step": self.step_count,
            "config": self.config.to_dict(),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "schedulers": [scheduler.state_dict() for scheduler in self.schedulers],
            "ema": None if self.ema is None else self.ema.state_dict(),
            "random": self.random.get_state(),
            "loader": self.loader.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Load a whole state; every part is checked before anything is changed."""
        if state.get("kind") != self.kind:
            raise CheckpointError(f"not a {self.kind!r} training checkpoint (kind "
                                  f"{state.get('kind')!r})")
        for key, module in (("generator", self.generator), ("discriminator", self.discriminator)):
            _check_state_matches(key, module.state_dict(), state[key])
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer_g.load_state_dict(state["optimizer_g"])
        self.optimizer_d.load_state_dict(state["optimizer_d"])
        self._load_schedulers(state)
        if state.get("ema") is not None and self.ema is not None:
            self.ema.load_state_dict(state["ema"], asarray=backend.get(self.device).asarray)
        self.random.set_state(state["random"])
        self.loader.load_state_dict(state["loader"])
        self.step_count = int(state["step"])

    def save_checkpoint(self) -> Path:
        """Write checkpoints/step_XXXXXX.npz atomically, point `latest` at it, keep the last K."""
        folder = self.out / "checkpoints"
        path = folder / f"step_{self.step_count:06d}.npz"
        save_checkpoint(path, self.state_dict())
        link = folder / "latest"
        tmp = folder / ".latest.tmp"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(path.name, tmp)
        os.replace(tmp, link)
        prune_checkpoints(self.out, self.config.keep_checkpoints, newest=path)
        return path

    @classmethod
    def from_state(cls, state: dict, device: str | None = None, quiet: bool = True,
                   steps: int | None = None, out=None) -> Trainer:
        """A trainer of this class restored from a loaded checkpoint (read_training_state)."""
        if state["kind"] != cls.kind:
            raise CheckpointError(
                f"the checkpoint trains kind {state['kind']!r}, {cls.__name__} trains "
                f"{cls.kind!r}: load it with minigan.gan.load_trainer, which picks the class"
            )
        config = TrainConfig.from_dict(state["config"])
        if steps is not None:
            config = config.replace(steps=steps)
        trainer = cls(config, device=device, out=out, quiet=quiet)
        trainer.load_state_dict(state)
        return trainer

    @classmethod
    def from_checkpoint(cls, source, device: str | None = None, quiet: bool = True,
                        steps: int | None = None, out=None) -> Trainer:
        """A trainer restored from a checkpoint file or a run folder's newest checkpoint.
        Nothing is written unless `out` is given."""
        return cls.from_state(read_training_state(source), device=device, quiet=quiet,
                              steps=steps, out=out)

    @classmethod
    def resume(cls, run, device: str | None = None, quiet: bool = False,
               steps: int | None = None, state: dict | None = None) -> Trainer:
        """Continue the run in folder `run` from its newest checkpoint (optionally to a new
        step total; `state`: that checkpoint, when already read). Metric records after the
        checkpoint's step are dropped: they will be produced again, identically."""
        source, run = Path(run), run_folder(run)
        if state is None:
            state = read_training_state(source)
        trainer = cls.from_state(state, device=device, quiet=quiet, steps=steps, out=run)
        if steps is not None and steps < trainer.step_count:
            raise ConfigError(f"{run} is at step {trainer.step_count}; steps is the total to "
                              f"train to, so it must be at least {trainer.step_count}, got "
                              f"{steps}")
        metrics = run / "metrics.jsonl"
        if metrics.exists() and trainer.out is not None:  # None on data-parallel ranks > 0
            kept = [r for r in read_metrics(metrics) if r["step"] <= trainer.step_count]
            text = "".join(json.dumps(r) + "\n" for r in kept)
            atomic_write(metrics, lambda f: f.write(text), mode="w")
            trainer.history = kept
        return trainer

    # ------------------------------------------------------------------ evaluation

    # Samples scored when no count is given, at the end of training and by `minigan eval`:
    # PacGAN's 2,500 (metrics.coverage.N_EVAL_SAMPLES) for mode coverage, 2,000 for digits.
    EVAL_SAMPLES = {"mode coverage": 2500, "digits": 2000}

    def evaluate(self, n: int | None = None, seed: int = 12345) -> dict:
        """Scores of n generated samples, with "metric" saying what was scored and why it
        applies: mode coverage on the 2-D Gaussian mixtures (PacGAN's protocol), the digit
        classifier's scores on 28x28 digits. Otherwise only "not_scored", saying why."""
        from ..metrics import digit_scores, mode_coverage
        from ..metrics.digits import digit_data_check

        data = self.data
        if data.kind == "points":
            if getattr(data, "modes", None) is None:
                return {"not_scored": f"mode coverage needs a Gaussian mixture with known "
                                      f"modes (ring8, grid25, 8gaussians, 25gaussians); "
                                      f"the data {data.name!r} has none"}
            scores = mode_coverage(self.sample(n or self.EVAL_SAMPLES["mode coverage"],
                                               seed=seed), data.modes, data.mode_std)
            return {"metric": f"mode coverage of the Gaussian mixture {data.name!r} (VEEGAN "
                              "and PacGAN's protocol: high quality within 3 std of a mode)",
                    **scores}
        applies, reason = digit_data_check(data, device=self.device)
        if not applies:
            return {"not_scored": reason}
        if n is not None and n < 2:
            raise ConfigError(f"the digit scores need at least 2 samples (a covariance), got "
                              f"{n}; 1,000 or more compare with the real-data floor")
        scores = digit_scores(self.sample(n or self.EVAL_SAMPLES["digits"], seed=seed))
        if self.config.n_classes:
            per_label = max(1, (n or self.EVAL_SAMPLES["digits"]) // self.config.n_classes)
            scores.update(self.label_accuracy(per_label, seed=seed))
        return {"metric": f"the bundled MNIST classifier's scores of the samples as digits: "
                          f"{reason}", **scores}

    def label_accuracy(self, per_label: int = 200, seed: int = 12345) -> dict:
        """A conditional GAN on digits: for each label, the share of `per_label` samples
        drawn with that label that the bundled digit classifier reads as that digit."""
        from ..metrics import classify

        shares = []
        for label in range(self.config.n_classes):
            samples = self.sample(per_label, seed=seed + label, labels=label)
            shares.append(float((classify(samples) == label).mean()))
        return {"label_accuracy": shares, "label_accuracy_mean": float(np.mean(shares)),
                "label_accuracy_min": float(min(shares)), "samples_per_label": per_label}


def read_training_state(source) -> dict:
    """The state in a checkpoint file, or in a run folder's newest checkpoint."""
    state = load_checkpoint(latest_checkpoint(source))
    if state.get("kind") not in KINDS:
        raise CheckpointError(f"{source} is not a training checkpoint (kind "
                              f"{state.get('kind')!r})")
    return state


def run_folder(run) -> Path:
    """The run folder of `run`: itself, or for a checkpoint file the folder two levels up."""
    run = Path(run)
    return run.resolve().parent.parent if run.is_file() else run


def _checked_labels(data, n_classes: int) -> np.ndarray:
    """The data's labels for a conditional GAN, checked against n_classes."""
    if data.y is None:
        raise ConfigError(f"a conditional GAN (n_classes {n_classes}) needs labelled data; "
                          f"{data.name!r} has no labels")
    if data.y.min() < 0 or data.y.max() >= n_classes:
        raise ConfigError(f"data {data.name!r} has labels {int(data.y.min())}..{int(data.y.max())}"
                          f", outside 0..{n_classes - 1} (n_classes {n_classes})")
    return data.y


def check_batch_fits(batch_size: int, n: int, what: str) -> None:
    """The loaders form only full batches: refuse a batch larger than the data."""
    if batch_size > n:
        raise ConfigError(f"batch_size {batch_size} is larger than {what} ({n} samples): use "
                          f"a batch size of at most {n} (--batch-size)")


def check_data_fits(config: TrainConfig, data) -> None:
    """Refuse, before any model is built, settings the data cannot honour."""
    check_batch_fits(config.batch_size, len(data), f"the data {config.data!r}")
    if data.kind == "points" and (config.image_size or config.channels):
        raise ConfigError(f"image_size and channels resize and convert images; the data "
                          f"{config.data!r} holds 2-D points")


def _check_data_parallel(config: TrainConfig, world_size: int) -> None:
    """What a data-parallel run needs: the GAN trainer, and a batch that splits evenly."""
    if config.kind != "gan":
        raise ConfigError(f"data-parallel training runs kind 'gan'; run kind {config.kind!r} "
                          "on one process")
    if config.n_classes:
        raise ConfigError("data-parallel training of a conditional GAN (n_classes > 0) is not "
                          "supported; run it on one process")
    if config.batch_size % (world_size * config.pack):
        raise ConfigError(
            f"batch_size {config.batch_size} does not split over {world_size} processes"
            + (f" in packs of {config.pack}" if config.pack > 1 else "")
            + f": use a multiple of {world_size * config.pack}")


def clip_weights(weights, limit: float):
    """WGAN (Arjovsky et al. 2017, Algorithm 1): clip every critic weight to [-c, c]."""
    return weights.clip(-limit, limit)


def _check_state_matches(name: str, expected: dict, found: dict) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint's {name} does not match this model: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    for key, value in expected.items():
        if tuple(np.shape(value)) != tuple(np.shape(found[key])):
            raise CheckpointError(
                f"checkpoint's {name}.{key} has shape {tuple(np.shape(found[key]))}, "
                f"the model has {tuple(np.shape(value))}"
            )


def read_metrics(path) -> list[dict]:
    """The records of a metrics.jsonl; a torn last line (a crash mid-write) is skipped."""
    records = []
    path = Path(path)
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
