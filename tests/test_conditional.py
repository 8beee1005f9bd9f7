"""The conditional GAN (cdcgan-mnist): models that take labels, the trainer's label
handling, bit-exact resume, and `minigan sample --label`."""

import numpy as np
import pytest

import minigan as mg
from minigan import nn
from minigan.cli import main
from minigan.gan import ConfigError, Trainer, recipe
from minigan.gan.conditional import ConcatDiscriminator, ProjectionDiscriminator
from minigan.gan.trainer import read_metrics

TINY = dict(steps=4, batch_size=8, n_samples=20, log_every=1, sample_every=100,
            checkpoint_every=2)


def test_projection_discriminator_is_linear_readout_plus_label_projection():
    features = nn.Flatten()
    d = ProjectionDiscriminator(features, 6, 3, generator=mg.Generator(0))
    x = np.random.default_rng(0).standard_normal((4, 1, 2, 3)).astype(np.float32)
    labels = np.array([0, 2, 2, 1])
    h = x.reshape(4, 6)
    expected = (h @ d.linear.weight.numpy().T + d.linear.bias.numpy()
                + (d.embed.weight.numpy()[labels] * h).sum(1, keepdims=True))
    out = d(mg.tensor(x), mg.tensor(labels))
    # float32 sums of 6 products: a few ulps of values of size ~3
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_concat_discriminator_sees_one_hot_label_planes():
    seen = []

    class Record(nn.Module):
        def forward(self, x):
            seen.append(x.numpy())
            return x.sum(axis=(1, 2, 3)).reshape(-1, 1)

    ConcatDiscriminator(Record(), 4)(mg.zeros(2, 1, 3, 3), mg.tensor([3, 0]))
    planes = seen[0][:, 1:]
    assert seen[0].shape == (2, 5, 3, 3)
    np.testing.assert_array_equal(planes[0, 3], 1)
    np.testing.assert_array_equal(planes[1, 0], 1)
    assert planes.sum() == 2 * 9


def test_conditional_run_resumes_bit_for_bit_and_samples_a_chosen_label(tmp_path):
    config = recipe("cdcgan-mnist", **TINY)
    whole = Trainer(config, device="cpu", out=tmp_path / "whole", quiet=True)
    whole.fit()
    part = Trainer(config, device="cpu", out=tmp_path / "part", quiet=True)
    part.fit(steps=2)
    resumed = Trainer.resume(tmp_path / "part", device="cpu", quiet=True)
    resumed.fit()
    strip = [{k: v for k, v in r.items() if k != "time"}
             for r in read_metrics(tmp_path / "whole" / "metrics.jsonl")]
    assert strip == [{k: v for k, v in r.items() if k != "time"}
                     for r in read_metrics(tmp_path / "part" / "metrics.jsonl")]
    assert len(strip) == 4
    np.testing.assert_array_equal(whole.sample(3, seed=5, labels=7),
                                  resumed.sample(3, seed=5, labels=7))
    # the label reaches the generator: the same noise with another label draws another image
    assert np.abs(whole.sample(3, seed=5, labels=7) - whole.sample(3, seed=5, labels=1)).max() > 0
    assert list(whole.fixed_labels) == [i // 2 for i in range(20)]  # a row of the grid per digit


def test_config_and_data_errors_are_one_line():
    with pytest.raises(ConfigError, match="packs no samples: pack must be 1"):
        recipe("cdcgan-mnist", pack=2)
    with pytest.raises(ConfigError, match="needs labelled data; 'ring8' has no labels"):
        Trainer(recipe("mlp-ring8", n_classes=8), device="numpy", quiet=True)
    with pytest.raises(ConfigError, match="outside 0..4"):
        Trainer(recipe("cdcgan-mnist", n_classes=5, steps=1), device="numpy", quiet=True)
    with pytest.raises(ConfigError, match="conditioning must be projection or concat"):
        recipe("cdcgan-mnist", conditioning="film")


def test_cli_sample_label(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--recipe", "cdcgan-mnist", "--steps", "1", "--batch-size", "8",
                 "--device", "cpu", "--quiet", "--out", str(run), "--set", "n_samples=10"]) == 0
    capsys.readouterr()
    out = tmp_path / "sevens.npy"
    assert main(["sample", "--run", str(run), "--label", "7", "--n", "5", "--out", str(out),
                 "--device", "cpu"]) == 0
    expected = Trainer.from_checkpoint(run, device="cpu").sample(5, seed=0, labels=7)
    np.testing.assert_array_equal(np.load(out), expected)
    assert main(["sample", "--run", str(run), "--label", "10", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "minigan: error: --label must be in 0..9, got 10"
    plain = tmp_path / "plain"
    assert main(["train", "--recipe", "mlp-ring8", "--steps", "1", "--batch-size", "16",
                 "--device", "numpy", "--quiet", "--out", str(plain)]) == 0
    capsys.readouterr()
    assert main(["sample", "--run", str(plain), "--label", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("minigan: error: --label needs a conditional run") and "\n" not in err
