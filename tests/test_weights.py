"""mg.save / mg.load in the safetensors format, and `minigan export`, whose file PyTorch
loads into the same architecture (strict) and draws the same images with."""

import json

import numpy as np
import pytest

import minigan as mg
from minigan import nn
from minigan.cli import main
from minigan.gan import load_trainer
from minigan.io import load_metadata


def test_save_load_round_trip_keeps_names_dtypes_and_shapes(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4, generator=mg.Generator(0)), nn.BatchNorm1d(4))
    path = tmp_path / "m.safetensors"
    mg.save(model.state_dict(), path, metadata={"note": "hello"})
    loaded = mg.load(path)
    assert set(loaded) == set(model.state_dict())  # (in the file's order, as safetensors keeps)
    for name, value in model.state_dict().items():
        assert isinstance(loaded[name], mg.Tensor) and loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name].numpy(), value)  # bytes as stored
    assert loaded["1.num_batches_tracked"].shape == ()  # a 0-d count stays 0-d
    other = nn.Sequential(nn.Linear(3, 4, generator=mg.Generator(1)), nn.BatchNorm1d(4))
    other.load_state_dict(loaded)
    np.testing.assert_array_equal(other[0].weight.numpy(), model[0].weight.numpy())
    assert load_metadata(path) == {"note": "hello"}
    # tensors too, float64 kept (not the default dtype)
    mg.save({"x": mg.tensor(np.arange(3.0), dtype=np.float64)}, tmp_path / "x.safetensors")
    assert mg.load(tmp_path / "x.safetensors")["x"].dtype == np.float64


@pytest.mark.parametrize("call, error, message", [
    (lambda p: mg.save({"w": np.zeros(2)}, p / "g.pt"), ValueError,
     "does not end in .safetensors"),
    (lambda p: mg.save({"w": {"nested": np.zeros(2)}}, p / "g.safetensors"), TypeError,
     "the value under 'w' is a dict; expected a flat dict of name -> Tensor"),
    (lambda p: mg.save([np.zeros(2)], p / "g.safetensors"), TypeError,
     "expected a dict of name -> Tensor"),
    (lambda p: mg.load(p / "missing.safetensors"), FileNotFoundError, "does not exist"),
    (lambda p: mg.load(p / "g.pth"), ValueError, "does not end in .safetensors"),
])
def test_bad_paths_and_objects_give_one_line_errors(tmp_path, call, error, message):
    with pytest.raises(error) as raised:
        call(tmp_path)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_damaged_file_is_refused(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ValueError, match="is not a readable safetensors file"):
        mg.load(path)


def test_torch_reads_what_minigan_saves(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    from safetensors.torch import load_file

    model = nn.Conv2d(2, 3, 3, generator=mg.Generator(0))
    mg.save(model.state_dict(), tmp_path / "c.safetensors")
    theirs = load_file(str(tmp_path / "c.safetensors"))
    np.testing.assert_array_equal(theirs["weight"].numpy(), model.weight.numpy())


# ----------------------------------------------------------------------------- export


def _torch_dcgan28_generator(torch, z_dim, width, channels=1):
    """models.dcgan28_generator written in PyTorch."""
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Unflatten(1, (z_dim, 1, 1)),
        tnn.ConvTranspose2d(z_dim, 4 * width, 7, 1, 0, bias=False), tnn.BatchNorm2d(4 * width),
        tnn.ReLU(),
        tnn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False),
        tnn.BatchNorm2d(2 * width), tnn.ReLU(),
        tnn.ConvTranspose2d(2 * width, channels, 4, 2, 1), tnn.Tanh())


def _train(tmp_path, name, *settings):
    run = tmp_path / name
    argv = ["train", "--recipe", settings[0], "--steps", "2", "--batch-size", "8", "--device",
            "cpu", "--quiet", "--out", str(run)]
    for setting in settings[1:]:
        argv += ["--set", setting]
    assert main(argv) == 0
    return run


def test_exported_generator_loads_into_torch_strict_and_draws_the_same_images(tmp_path,
                                                                               capsys):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from safetensors.torch import load_file

    run = _train(tmp_path, "ema", "dcgan-mnist", "z_dim=8", "ema=0.9", "n_samples=4")
    out = tmp_path / "G.safetensors"
    assert main(["export", "--run", str(run), "--out", str(out), "--device", "cpu"]) == 0
    assert "EMA weights (step 2)" in capsys.readouterr().out
    metadata = load_metadata(out)
    assert metadata["minigan_weights"] == "ema"
    assert json.loads(metadata["minigan_config"])["z_dim"] == 8

    G = _torch_dcgan28_generator(torch, 8, json.loads(metadata["minigan_config"])["ngf"])
    G.load_state_dict(load_file(str(out)), strict=True)
    G.eval()
    trainer = load_trainer(run, device="cpu")
    z = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    expected = trainer.sample(noise=mg.tensor(z, device="cpu"))  # EMA weights, eval mode
    with torch.no_grad():
        theirs = G(torch.tensor(z)).numpy()
    # float32 transposed convolutions summing up to 256 x 16 products in another order,
    # then tanh (slope <= 1): agreement to a few 1e-6 of values in [-1, 1]
    np.testing.assert_allclose(theirs, expected, rtol=0, atol=2e-5)


def test_exported_conditional_generator_matches_in_torch(tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from safetensors.torch import load_file

    run = _train(tmp_path, "cgan", "cdcgan-mnist", "z_dim=6", "n_samples=10")
    out = tmp_path / "cG.safetensors"
    assert main(["export", "--run", str(run), "--out", str(out), "--device", "cpu"]) == 0
    width = json.loads(load_metadata(out)["minigan_config"])["ngf"]

    class ConditionalGenerator(torch.nn.Module):  # conditional.ConditionalGenerator
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, 10)
            self.body = _torch_dcgan28_generator(torch, 6 + 10, width)

        def forward(self, z, labels):
            return self.body(torch.cat([z, self.embed(labels)], 1))

    G = ConditionalGenerator()
    G.load_state_dict(load_file(str(out)), strict=True)
    G.eval()
    z = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    labels = np.array([7, 7, 0, 3])
    expected = load_trainer(run, device="cpu").sample(noise=mg.tensor(z, device="cpu"),
                                                      labels=labels)
    with torch.no_grad():
        theirs = G(torch.tensor(z), torch.tensor(labels)).numpy()
    np.testing.assert_allclose(theirs, expected, rtol=0, atol=2e-5)  # as above


def test_export_refuses_bad_output_names_and_cyclegan_runs(tmp_path, capsys):
    run = _train(tmp_path, "plain", "mlp-ring8", "hidden=8", "layers=1")
    capsys.readouterr()
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "G.pt")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"minigan: error: --out must name a .safetensors file, got '{tmp_path / 'G.pt'}'")
    assert main(["export", "--run", str(tmp_path / "nothing"), "--out",
                 str(tmp_path / "G.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("minigan: error:") and "\n" not in err
