"""CycleGAN: its modules' gradients, the history pool, training, exact resume, translating
files, the translation scores, and the errors a user can meet."""

import json

import numpy as np
import pytest
from PIL import Image

import minigan as mg
from minigan.cli import main
from minigan.gan import ConfigError, Trainer, make_trainer, recipe, resume_trainer
from minigan.gan.cyclegan import CycleGANTrainer, HistoryPool
from minigan.gan.cyclegan_data import load_domains
from minigan.gan.cyclegan_io import read_translation_input
from minigan.gan.cyclegan_models import ResidualBlock, patch_discriminator, resnet_generator
from minigan.gan.trainer import read_metrics
from minigan.metrics import translation
from minigan.random import Generator
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import random_array

# Tiny networks on 8x8 versions of the built-in domains: each step takes milliseconds.
TINY = dict(image_size=8, ngf=2, n_blocks=1, ndf=2, d_layers=1, batch_size=4, steps=6,
            log_every=1, sample_every=3, checkpoint_every=2, keep_checkpoints=2, n_samples=4)


def _tiny(**overrides):
    return recipe("cyclegan-mnist-inverted", **{**TINY, **overrides})


# ----------------------------------------------------------------------------- modules


@pytest.mark.parametrize("upsample", ["transpose", "resize"])
def test_generator_keeps_the_image_shape_and_range(upsample):
    for size in (28, 32):
        g = resnet_generator(3, 3, ngf=4, n_blocks=2, upsample=upsample, generator=Generator(0))
        y = g(mg.tensor(random_array(0, (2, 3, size, size), np.float32)))
        assert y.shape == (2, 3, size, size)
        assert np.abs(y.numpy()).max() <= 1.0  # ends in tanh


def test_residual_block_pads_by_the_kernel_half_width_not_the_channel_count():
    # With 64 channels a pad of 64 would fail on a 7x7 input (reflection needs pad < size).
    block = ResidualBlock(64, generator=Generator(0))
    assert [m.padding for m in block.body if hasattr(m, "padding") and
            type(m).__name__ == "ReflectionPad2d"] == [(1, 1, 1, 1)] * 2
    assert block(mg.tensor(random_array(1, (1, 64, 7, 7), np.float32))).shape == (1, 64, 7, 7)


@pytest.mark.parametrize("layers, grid", [(1, 12), (2, 5), (3, 6)])
def test_patch_discriminator_scores_a_grid_of_patches(layers, grid):
    size = {1: 28, 2: 28, 3: 64}[layers]
    d = patch_discriminator(1, ndf=2, n_layers=layers, generator=Generator(0))
    assert d(mg.tensor(random_array(0, (2, 1, size, size), np.float32))).shape == (2, 1, grid,
                                                                                    grid)


def _double(module):
    """float64 on the reference kernels, where the finite differences are run."""
    return module.to("numpy", dtype=np.float64)


def test_residual_block_gradients_and_gradients_of_gradients():
    block = _double(ResidualBlock(2, generator=Generator(0)))
    x = random_array(2, (2, 2, 4, 4))
    check_gradients(block, x)
    check_double_gradients(block, x)


@pytest.mark.parametrize("upsample", ["transpose", "resize"])
def test_generator_and_discriminator_gradients(upsample):
    g = _double(resnet_generator(1, 1, ngf=2, n_blocks=1, upsample=upsample,
                                 generator=Generator(0)))
    d = _double(patch_discriminator(1, ndf=2, n_layers=1, generator=Generator(1)))
    for module in (g, d):  # N(0, 0.02) weights give tiny gradients: scale them up
        for p in module.parameters():
            p.array *= 20.0
    x = random_array(3, (1, 1, 8, 8))
    check_gradients(g, x)
    check_double_gradients(lambda t: d(g(t)), x)  # what a gradient penalty through G needs


# ----------------------------------------------------------------------------- pool


def test_history_pool_fills_then_swaps_half_the_time():
    pool = HistoryPool(50, Generator(7))
    batches = [mg.tensor(np.full((5, 1, 2, 2), i, np.float32)) for i in range(400)]
    for batch in batches[:10]:  # the first 50 images are stored and returned as they are
        np.testing.assert_array_equal(pool.query(batch).numpy(), batch.numpy())
    assert len(pool.images) == 50
    twin = np.random.Generator(np.random.PCG64(7))  # the pool's draws, replayed
    stored = [float(i) for i in range(10) for _ in range(5)]
    swapped = 0
    for i, batch in enumerate(batches[10:], start=10):
        out = pool.query(batch).numpy()[:, 0, 0, 0]
        for k in range(5):
            if twin.uniform(0, 1) > 0.5:
                index = twin.integers(0, 50)
                assert out[k] == stored[index]  # an older image comes back...
                stored[index] = float(i)  # ...and the new one takes its place
                swapped += 1
            else:
                assert out[k] == i
    assert len(pool.images) == 50
    assert sorted(float(a[0, 0, 0]) for a in pool.images) == sorted(stored)
    # 1950 fair coin flips: the share of swaps is within 4 standard deviations of 1/2
    assert abs(swapped / 1950 - 0.5) < 4 * 0.5 / np.sqrt(1950)


def test_history_pool_of_size_zero_and_its_state():
    batch = mg.tensor(random_array(0, (3, 1, 2, 2), np.float32))
    assert HistoryPool(0, Generator(0)).query(batch) is batch
    pool = HistoryPool(4, Generator(1))
    pool.query(batch)
    copy = HistoryPool(4, Generator(1))
    copy.load_state_dict(pool.state_dict(), batch._backend)
    copy.generator.set_state(pool.generator.get_state())
    for seed in range(5):
        more = mg.tensor(random_array(seed, (3, 1, 2, 2), np.float32))
        np.testing.assert_array_equal(pool.query(more).numpy(), copy.query(more).numpy())


# ----------------------------------------------------------------------------- training


def test_built_in_domains_are_disjoint_unpaired_halves():
    a, b = load_domains(_tiny(image_size=0))
    assert a.train.shape == b.train.shape == (2000, 1, 28, 28)
    np.testing.assert_array_equal(b.test, -a.test)  # held out: the same digits, inverted
    flat_a = {row.tobytes() for row in a.train.reshape(2000, -1)}
    assert not any((-row).tobytes() in flat_a for row in b.train.reshape(2000, -1))


def test_short_seeded_run_lowers_the_cycle_loss():
    trainer = make_trainer(_tiny(steps=40, ngf=4, lr_schedule="constant", lr_g=1e-3, lr_d=1e-3),
                      device="numpy", quiet=True)
    assert isinstance(trainer, CycleGANTrainer)
    cycle = [r["loss_cycle"] for r in trainer.fit()]
    assert np.mean(cycle[-5:]) < 0.7 * np.mean(cycle[:5]), cycle


def test_the_trainer_class_is_chosen_by_kind_in_one_visible_place(tiny_run):
    config = _tiny()
    assert type(make_trainer(config, device="numpy", quiet=True)) is CycleGANTrainer
    with pytest.raises(ConfigError, match="Trainer trains kind 'gan', the config is of kind "
                                          "'cyclegan': use minigan.gan.make_trainer"):
        Trainer(config, device="numpy", quiet=True)
    with pytest.raises(mg.io.CheckpointError, match="load it with minigan.gan.load_trainer"):
        Trainer.from_checkpoint(tiny_run, device="numpy")
    assert type(mg.gan.load_trainer(tiny_run, device="numpy")) is CycleGANTrainer
    gan = recipe("mlp-ring8", steps=2, batch_size=16, hidden=8, layers=1)
    assert type(make_trainer(gan, device="numpy", quiet=True)) is Trainer


def _without_time(run):
    records = read_metrics(run / "metrics.jsonl")
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


def test_resumed_run_equals_uninterrupted_bit_for_bit(tmp_path):
    config = _tiny(pool_size=3)  # the pool fills at step 1 and swaps afterwards
    whole = CycleGANTrainer(config, device="cpu", out=tmp_path / "whole", quiet=True)
    whole.fit()
    part = CycleGANTrainer(config, device="cpu", out=tmp_path / "part", quiet=True)
    part.fit(steps=4)
    resumed = resume_trainer(tmp_path / "part", device="cpu", quiet=True)
    assert isinstance(resumed, CycleGANTrainer) and resumed.step_count == 4
    resumed.fit()
    assert _without_time(tmp_path / "part") == _without_time(tmp_path / "whole")
    for name in CycleGANTrainer.MODEL_NAMES:
        for key, value in getattr(whole, name).state_dict().items():
            np.testing.assert_array_equal(getattr(resumed, name).state_dict()[key], value,
                                          err_msg=f"{name}.{key}")
    for a, b in zip(whole.pool_b.images, resumed.pool_b.images):
        np.testing.assert_array_equal(a, b)
    names = {p.name for p in (tmp_path / "whole").iterdir()}
    assert {"samples_000003.png", "samples_final.png", "loss.png", "metrics.jsonl"} <= names
    # the picture: 4 rows of input | translated | reconstructed for A, then for B, enlarged
    # 7 times (8x8 images: 56 pixels a column, room for its name) under the columns' names
    width, height = Image.open(tmp_path / "whole" / "samples_final.png").size
    assert width == 7 * (6 * 10 + 2) and height > 7 * (4 * 10 + 2)


# ----------------------------------------------------------------------------- translate


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """`minigan train` of a tiny CycleGAN, evaluated with quickly trained classifiers."""
    out, cache = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("cache")
    argv = ["train", "--recipe", "cyclegan-mnist-inverted", "--steps", "2", "--batch-size",
            "4", "--device", "numpy", "--quiet", "--out", str(out)]
    for key in ("image_size", "ngf", "n_blocks", "ndf", "d_layers", "n_samples"):
        argv += ["--set", f"{key}={TINY[key]}"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINIGAN_CACHE", str(cache))
        patch.setattr(translation, "LABEL_EPOCHS", 1)
        patch.setattr(translation, "DOMAIN_STEPS", 5)
        assert main(argv) == 0
    return out


def test_train_writes_every_translation_score(tiny_run):
    scores = json.loads((tiny_run / "eval.json").read_text())
    assert scores["n_a"] == scores["n_b"] == 1000  # the held-out images of each domain
    assert "label preservation by a classifier" in scores["metric"]
    for key in ("label_preservation_a2b", "label_preservation_b2a", "classifier_accuracy_a",
                "classifier_accuracy_b", "domain_score_a2b", "domain_score_b2a",
                "domain_classifier_accuracy"):
        assert 0.0 <= scores[key] <= 1.0, key
    for key in ("cycle_l1_a", "cycle_l1_b", "identity_baseline_l1_a", "identity_baseline_l1_b"):
        assert 0.0 < scores[key] <= 2.0, key  # pixels in [-1, 1]


def test_translate_an_image_a_folder_and_an_array(tiny_run, tmp_path, capsys):
    images = ((random_array(4, (3, 1, 8, 8)) > 0) * 2.0 - 1.0).astype(np.float32)
    np.save(tmp_path / "in.npy", images)
    (tmp_path / "folder" / "sub").mkdir(parents=True)
    for i, name in enumerate(["one.png", "two.png", "sub/three.png"]):
        pixels = ((images[i, 0] + 1) * 127.5).astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / "folder" / name)
    trainer = CycleGANTrainer.from_checkpoint(tiny_run, device="numpy")
    expected = trainer.translate(images, "b2a")

    base = ["translate", "--run", str(tiny_run), "--direction", "b2a", "--device", "numpy"]
    assert main([*base, "--input", str(tmp_path / "in.npy"), "--out",
                 str(tmp_path / "out.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)

    assert main([*base, "--input", str(tmp_path / "folder"), "--out",
                 str(tmp_path / "out")]) == 0
    written = sorted(p.relative_to(tmp_path / "out").as_posix()
                     for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["one.png", "sub/three.png", "two.png"]

    assert main([*base, "--input", str(tmp_path / "folder" / "two.png"), "--out",
                 str(tmp_path / "two_b2a.png")]) == 0
    # the PNGs hold the images exactly (0 and 255), so the translation matches the array's
    # up to the output's 8-bit rounding: half a step of 2/255
    result = np.asarray(Image.open(tmp_path / "two_b2a.png"), dtype=np.float32) / 127.5 - 1
    np.testing.assert_allclose(result, expected[1, 0], atol=1.0 / 255 + 1e-6)
    folder_two = np.asarray(Image.open(tmp_path / "out" / "two.png"), dtype=np.float32)
    np.testing.assert_array_equal(folder_two / 127.5 - 1, result)
    assert "translated" in capsys.readouterr().out


def test_translate_reads_inputs_in_the_runs_shape(tmp_path):
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "rgb.png")
    x, names = read_translation_input(tmp_path / "rgb.png", (1, 8, 8))
    assert x.shape == (1, 1, 8, 8) and names == ["rgb"] and x.max() == -1.0
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(mg.data.DataFormatError, match=r"expected images of shape \(N, 1, 8, 8"):
        read_translation_input(tmp_path / "bad.npy", (1, 8, 8))


def test_translate_refuses_a_run_that_is_not_a_cyclegan_run(tmp_path, capsys):
    gan = tmp_path / "gan"
    Trainer(recipe("mlp-ring8", steps=2, batch_size=16, hidden=8, layers=1), device="numpy",
            out=gan, quiet=True).fit()
    status = main(["translate", "--run", str(gan), "--direction", "a2b", "--input", "x.npy",
                   "--out", "y.npy"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert "is not a CycleGAN run" in err[0] and "kind 'gan'" in err[0]


def test_sample_on_a_cyclegan_run_points_to_translate(tiny_run, capsys):
    status = main(["sample", "--run", str(tiny_run), "--out", "x.png", "--device", "numpy"])
    assert status == 2 and "minigan translate" in capsys.readouterr().err


# ----------------------------------------------------------------------------- errors


def test_domains_with_different_channels_are_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "gray.npz", x=rng.integers(0, 256, (20, 8, 8), dtype=np.uint8))
    np.savez(tmp_path / "rgb.npz", x=rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8))
    config = _tiny(data_a=str(tmp_path / "gray.npz"), data_b=str(tmp_path / "rgb.npz"),
                   image_size=0)
    with pytest.raises(ConfigError, match=r"domain A .* has 1 channel\(s\) and domain B .* has "
                                          r"3; set channels"):
        load_domains(config)
    assert load_domains(config.replace(channels=3))[0].train.shape[1:] == (3, 8, 8)
    status = main(["train", "--recipe", "cyclegan-mnist-inverted", "--data-a",
                   str(tmp_path / "gray.npz"), "--data-b", str(tmp_path / "rgb.npz"),
                   "--set", "image_size=0", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "channel" in err[0]


@pytest.mark.parametrize("overrides, message", [
    (dict(data_b=""), "needs both domains"),
    (dict(objective="hinge"), "least-squares"),
    (dict(n_critic=2), "does not use n_critic"),
    (dict(image_size=30), "multiple of 4"),
    (dict(upsample="bilinear"), "upsample must be"),
])
def test_bad_cyclegan_configs_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        _tiny(**overrides)


def test_images_of_a_size_the_generator_cannot_take_are_refused(tmp_path):
    np.savez(tmp_path / "odd.npz", x=np.zeros((20, 10, 10), np.uint8))
    config = _tiny(data_a=str(tmp_path / "odd.npz"), data_b=str(tmp_path / "odd.npz"),
                   image_size=0)
    with pytest.raises(ConfigError, match="multiple of 4"):
        load_domains(config)


# ----------------------------------------------------------------------------- scores


def test_translation_scores_of_a_known_translation():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, -0.5, (20, 1, 8, 8)).astype(np.float32)  # dark images
    labels = rng.integers(0, 10, 20)
    lookup = {x.tobytes(): y for x, y in zip(a, labels)}
    classify_b = lambda x: np.array([lookup.get((-xi).tobytes(), -1) for xi in x])  # noqa: E731
    which = lambda x: (x.mean(axis=(1, 2, 3)) > 0).astype(int)  # noqa: E731
    invert = lambda x: -x  # noqa: E731
    scores = translation.translation_scores(invert, invert, a, -a, labels, labels,
                                            classify_a=None, classify_b=classify_b,
                                            which_domain=which)
    assert scores["cycle_l1_a"] == 0 and scores["cycle_l1_b"] == 0
    assert scores["identity_baseline_l1_a"] == pytest.approx(2 * np.abs(a).mean(), rel=1e-6)
    assert scores["label_preservation_a2b"] == 1.0 and scores["classifier_accuracy_b"] == 1.0
    assert "label_preservation_b2a" not in scores  # no classifier of domain A was given
    assert scores["domain_score_a2b"] == scores["domain_score_b2a"] == 1.0
    keep = lambda x: x  # noqa: E731  (no translation at all: nothing lands in the other domain)
    scores = translation.translation_scores(keep, keep, a, -a, which_domain=which)
    assert scores["domain_score_a2b"] == 0.0 and scores["cycle_l1_a"] == 0.0


def test_trained_classifiers_separate_domains_and_are_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGAN_CACHE", str(tmp_path))
    a, b = load_domains(_tiny(image_size=0))
    which = translation.domain_classifier(a.train[:200], b.train[:200], steps=30)
    assert (which(a.test[:100]) == 0).mean() > 0.95 and (which(b.test[:100]) == 1).mean() > 0.95
    assert len(list(tmp_path.glob("domains-*.npz"))) == 1
    classify = translation.label_classifier(b.labelled_x[:300], b.labelled_y[:300], epochs=1)
    assert classify(b.test[:10]).shape == (10,)
    assert len(list(tmp_path.glob("labels-*.npz"))) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("a cached classifier was trained again")

    monkeypatch.setattr(translation.optim, "Adam", no_training)
    again = translation.label_classifier(b.labelled_x[:300], b.labelled_y[:300], epochs=1)
    np.testing.assert_array_equal(again(b.test[:10]), classify(b.test[:10]))
