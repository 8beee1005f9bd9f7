"""The generator EMA: the bias-corrected closed form, batch-norm statistics that belong to the
averaged weights, the live state restored after sampling, and exact resume with EMA on."""

import numpy as np
import pytest

from minigan import nn
from minigan.creation import randn
from minigan.gan import Trainer, recipe
from minigan.gan import ema as ema_module
from minigan.gan.ema import GeneratorEMA
from minigan.gan.models import dcgan28_generator
from minigan.random import Generator

DECAY = 0.9


def _noise(generator, n):
    return randn(n, 3, generator=generator, device="cpu")


def _small_generator():
    """z(3) -> Linear -> BatchNorm1d -> ReLU -> Linear(2): the smallest model with BN."""
    return nn.Sequential(nn.Linear(3, 4, generator=Generator(1)), nn.BatchNorm1d(4), nn.ReLU(),
                         nn.Linear(4, 2, generator=Generator(2))).to("cpu")


def _closed_form(history, decay):
    """sum_i (1 - d) d^(k-i) w_i / (1 - d^k), in float64."""
    k = len(history)
    total = sum((1 - decay) * decay ** (k - i) * w.astype(np.float64)
                for i, w in enumerate(history, start=1))
    return total / (1 - decay**k)


def _set_weights(module, rng):
    for p in module.parameters():
        p.array[...] = rng.normal(size=p.shape).astype(np.float32)


@pytest.mark.parametrize("batch_norm", ["recompute", "average"])
def test_average_after_k_updates_is_the_bias_corrected_closed_form(batch_norm):
    module = _small_generator()
    ema = GeneratorEMA(module, DECAY, batch_norm=batch_norm)
    rng = np.random.default_rng(0)
    history = []
    for _ in range(7):
        _set_weights(module, rng)
        for m in module.modules():  # buffers change too, as BN's running statistics do
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.array[...] = rng.normal(size=4).astype(np.float32)
        history.append(module.state_dict())
        ema.update(module)
        averaged = ema.averaged()
        names = [n for n, _ in module.named_parameters()]
        if batch_norm == "average":
            names += ["1.running_mean", "1.running_var"]
        assert sorted(averaged) == sorted(names)
        for name in names:
            expected = _closed_form([h[name] for h in history], DECAY)
            # 7 float32 multiply-adds of values of size ~1, then one division: a few ulps
            np.testing.assert_allclose(averaged[name], expected, rtol=1e-5, atol=1e-6,
                                       err_msg=name)
    # after one update the average is exactly the weights of that step: no pull towards
    # the initial weights (which a plain EMA started at them would keep for ~1/(1-d) steps)
    fresh = GeneratorEMA(module, 0.999)
    fresh.update(module)
    for name, value in fresh.averaged().items():
        np.testing.assert_allclose(value, module.state_dict()[name], rtol=1e-6, atol=0)


def test_recomputed_batch_norm_statistics_are_those_of_the_averaged_weights():
    module = _small_generator()
    ema = GeneratorEMA(module, DECAY)
    rng = np.random.default_rng(1)
    for _ in range(3):
        _set_weights(module, rng)
        ema.update(module)
    live = module.state_dict()
    averaged = ema.averaged()
    # the statistics by hand: the first layer's outputs for the averaged weights on the
    # recompute noise; batch means averaged, unbiased batch variances averaged
    generator = Generator(ema_module.RECOMPUTE_SEED)
    means, variances = [], []
    for _ in range(ema_module.RECOMPUTE_BATCHES):
        z = _noise(generator, ema_module.RECOMPUTE_BATCH_SIZE).numpy().astype(np.float64)
        h = z @ averaged["0.weight"].T.astype(np.float64) + averaged["0.bias"]
        means.append(h.mean(axis=0))
        variances.append(h.var(axis=0, ddof=1))
    with ema.applied(module, _noise) as inside:
        state = inside.state_dict()
        for name in ("0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"):
            np.testing.assert_array_equal(state[name], averaged[name])
        # float32 batch statistics of 256 values of size ~3: relative error ~1e-6
        np.testing.assert_allclose(state["1.running_mean"], np.mean(means, axis=0),
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(state["1.running_var"], np.mean(variances, axis=0),
                                   rtol=1e-4, atol=1e-5)
        assert not np.allclose(state["1.running_mean"], live["1.running_mean"])
    for name, value in module.state_dict().items():  # the live state is back, bit for bit
        np.testing.assert_array_equal(value, live[name], err_msg=name)


def test_trainer_samples_with_the_averaged_weights_and_their_own_statistics(monkeypatch):
    monkeypatch.setattr(ema_module, "RECOMPUTE_BATCHES", 2)
    monkeypatch.setattr(ema_module, "RECOMPUTE_BATCH_SIZE", 16)
    config = recipe("dcgan-mnist", steps=3, batch_size=8, n_samples=4, ema=0.99)
    trainer = Trainer(config, device="cpu", quiet=True)
    history = []
    for _ in range(3):
        trainer.step()
        history.append(trainer.generator.state_dict())
    live = trainer.generator.state_dict()
    samples = trainer.sample(4, seed=5)

    # the same samples from a copy of G holding the closed-form average and the statistics
    # recomputed for it
    copy = dcgan28_generator(config.z_dim, 1, config.ngf).to("cpu")
    names = [n for n, _ in copy.named_parameters()]
    copy.load_state_dict({**live, **{n: _closed_form([h[n] for h in history], 0.99)
                                     .astype(np.float32) for n in names}})
    ema_module.recompute_batch_norm_stats(copy, trainer._ema_inputs)
    noise = randn(4, config.z_dim, generator=Generator(5), device="cpu")
    copy.eval()
    expected = copy(noise).numpy()
    # float32 average (3 updates) vs float64 closed form, through 3 layers: ~1e-6 relative
    np.testing.assert_allclose(samples, expected, rtol=1e-4, atol=1e-5)

    # with the live generator's statistics instead (what sampling used before), it differs
    copy.load_state_dict({**live, **{n: copy.state_dict()[n] for n in names}})
    copy.eval()
    assert np.abs(copy(noise).numpy() - samples).max() > 1e-3
    for name, value in trainer.generator.state_dict().items():
        np.testing.assert_array_equal(value, live[name], err_msg=name)


def test_resume_with_ema_is_bit_exact(tmp_path):
    config = recipe("mlp-ring8", steps=6, batch_size=32, hidden=16, layers=1, log_every=1,
                    sample_every=3, checkpoint_every=2, keep_checkpoints=2, ema=0.9)
    whole = Trainer(config, device="cpu", out=tmp_path / "whole", quiet=True)
    whole.fit()
    part = Trainer(config, device="cpu", out=tmp_path / "part", quiet=True)
    part.fit(steps=4)
    resumed = Trainer.resume(tmp_path / "part", device="cpu", quiet=True)
    assert resumed.ema.steps == 4
    resumed.fit()
    assert resumed.ema.steps == whole.ema.steps == 6
    for name, value in whole.ema.shadow.items():
        np.testing.assert_array_equal(resumed.ema.shadow[name], value, err_msg=name)
    np.testing.assert_array_equal(whole.sample(16, seed=3), resumed.sample(16, seed=3))


def test_bad_decay_and_mode_are_named():
    with pytest.raises(ValueError, match="decay"):
        GeneratorEMA(_small_generator(), 1.0)
    with pytest.raises(ValueError, match="batch_norm"):
        GeneratorEMA(_small_generator(), 0.9, batch_norm="live")


def test_conditional_generator_recomputes_its_statistics_with_labels(monkeypatch):
    monkeypatch.setattr(ema_module, "RECOMPUTE_BATCHES", 2)
    monkeypatch.setattr(ema_module, "RECOMPUTE_BATCH_SIZE", 20)
    config = recipe("cdcgan-mnist", steps=3, batch_size=8, n_samples=10, ema=0.99, ngf=4, ndf=4)
    trainer = Trainer(config, device="cpu", quiet=True)
    for _ in range(3):
        trainer.step()
    averaged = trainer.ema.averaged()
    assert "embed.weight" in averaged  # the label embedding is averaged with the rest

    def first_norm_means(labels_of):
        """The first BatchNorm's input, channel means, for the averaged weights on the
        recompute noise: ConvT on a 1x1 map is cat(z, embed(label)) times its weight."""
        generator, means = Generator(ema_module.RECOMPUTE_SEED), []
        for _ in range(2):
            z = randn(20, config.z_dim, generator=generator, device="cpu").numpy()
            joined = np.concatenate([z, averaged["embed.weight"][labels_of(20)]], 1)
            h = np.einsum("nk,kcij->ncij", joined.astype(np.float64), averaged["body.1.weight"])
            means.append(h.mean(axis=(0, 2, 3)))
        return np.mean(means, axis=0)

    with trainer.ema.applied(trainer.generator, trainer._ema_inputs) as inside:
        recomputed = inside.state_dict()["body.2.running_mean"]
    # float32 sums of 110 products of size ~0.1, averaged over 980 values: ~1e-6 relative
    expected = first_norm_means(lambda n: np.arange(n) % config.n_classes)
    np.testing.assert_allclose(recomputed, expected, rtol=1e-4, atol=1e-6)
    # the labels reach the recomputation: with every label 0 the statistics would differ
    assert np.abs(first_norm_means(lambda n: np.zeros(n, dtype=int)) - expected).max() > 1e-4
    live = trainer.generator.state_dict()
    sevens = trainer.sample(10, seed=1, labels=7)
    assert sevens.shape == (10, 1, 28, 28) and np.isfinite(sevens).all()
    for name, value in trainer.generator.state_dict().items():
        np.testing.assert_array_equal(value, live[name], err_msg=name)
