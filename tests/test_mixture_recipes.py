"""The 2-D mixture recipes: PacGAN's paper protocol as configured (cheap checks only; the
long runs live in benchmarks/paper_protocol.py), and spectral normalisation in the trainer."""

import numpy as np
import pytest

from minigan import nn
from minigan.cli import main
from minigan.data import load_dataset
from minigan.gan import Trainer, recipe
from minigan.gan.recipes import ConfigError

TINY = dict(steps=3, hidden=16, layers=1, log_every=1, checkpoint_every=2)


def test_paper_recipe_is_the_papers_protocol():
    config = recipe("pacgan-paper-grid25")
    # PacGAN config.py: Adam 1e-4, beta1 0.8, batch 100, 400 epochs of 1,000 iterations
    assert (config.lr_g, config.lr_d, config.betas[0]) == (1e-4, 1e-4, 0.8)
    assert (config.batch_size, config.steps, config.pack, config.z_dim) == (100, 400_000, 1, 2)
    data = load_dataset(config.data)
    assert data.x.shape == (100_000, 2) and data.mode_std == 0.05 and len(data.modes) == 25
    assert len(load_dataset("ring8-100k").modes) == 8


def test_pack_keeps_100_discriminator_inputs_per_batch():
    assert recipe("pacgan-paper-grid25", pack=4).batch_size == 400
    assert recipe("pacgan-paper-ring8", pack="3").batch_size == 300  # as --set passes it
    assert recipe("pacgan-paper-grid25", pack=4, batch_size=200).batch_size == 200
    with pytest.raises(ConfigError, match="multiple of pack"):
        recipe("pacgan-paper-grid25", pack=3, batch_size=100)


def test_paper_networks():
    trainer = Trainer(recipe("pacgan-paper-grid25", pack=4), device="cpu", quiet=True)
    g, d = trainer.generator, trainer.discriminator
    maxouts = [m for m in d.modules() if isinstance(m, nn.Maxout)]
    assert [(m.in_features, m.out_features, m.pieces) for m in maxouts] == [
        (8, 200, 5), (200, 200, 5), (200, 200, 5)]
    linears = [m for m in g.modules() if isinstance(m, nn.Linear)]
    assert [m.bias is None for m in linears] == [True] * 4 + [False]
    assert [m.weight.shape for m in linears] == [(400, 2)] + [(400, 400)] * 3 + [(2, 400)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in g.modules()) == 4
    # N(0, 0.02) weights and zero biases (pacgan_task.py): 160k draws, std within 1%
    weights = np.concatenate([m.weight.numpy().ravel() for m in linears[1:4]])
    assert abs(weights.std() - 0.02) < 2e-4
    assert not maxouts[0].bias.numpy().any() and not linears[-1].bias.numpy().any()


def test_paper_recipe_trains_through_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["train", "--recipe", "pacgan-paper-ring8", "--set", "pack=2", "--steps",
                   "2", "--quiet", "--out", str(out), "--device", "cpu"])
    assert status == 0, capsys.readouterr()
    trainer = Trainer.from_checkpoint(out)
    assert trainer.config.pack == 2 and trainer.config.batch_size == 200
    assert trainer.step_count == 2


def test_spectral_norm_in_the_trainer(tmp_path):
    config = recipe("mlp-ring8", spectral_norm=True, **TINY)
    trainer = Trainer(config, device="cpu", out=tmp_path, quiet=True)
    keys = list(trainer.discriminator.state_dict())
    assert "1.weight_orig" in keys and "1.weight_u" in keys and "1.weight" not in keys
    u = trainer.discriminator.state_dict()["1.weight_u"].copy()
    trainer.fit()
    assert not np.array_equal(trainer.discriminator.state_dict()["1.weight_u"], u)
    # the normalised weights have spectral norm ~1 (one power iteration per forward, from a
    # random start: a few steps leave it within a few percent, far below the raw weights')
    layer = trainer.discriminator[1]
    top = np.linalg.svd(layer.weight.numpy().astype(np.float64), compute_uv=False)[0]
    assert 0.5 < top < 1.5
    resumed = Trainer.resume(tmp_path, device="cpu", quiet=True)
    np.testing.assert_array_equal(resumed.discriminator.state_dict()["1.weight_u"],
                                  trainer.discriminator.state_dict()["1.weight_u"])
